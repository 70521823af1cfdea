//! `Semaphore` and `BoundedSemaphore`: Python's `threading.Semaphore` and
//! `threading.BoundedSemaphore`, FIFO-fair, on the park layer.
//!
//! # The algorithm
//!
//! One word: the available permits shifted left by one, and `WAITERS` in
//! bit 0, set while threads may be parked on the semaphore's address.
//!
//! - While `WAITERS` is clear, acquire and release are one compare-and-swap.
//! - While it is set, the word changes only with the park queue of the
//!   semaphore locked (in `validate`, `timed_out` or an unpark callback), so
//!   the queue lock is the semaphore's mutex on the slow path.
//! - A waiter parks with its request in its token (`n << 6`, the low bits
//!   clear; a waiter holding the Gil parks with its interruptible token,
//!   which carries `wait::ATTACHED`, and asks for one permit). A release hands permits to the parked
//!   waiters oldest first, as long as the oldest one's request fits, and
//!   wakes them with the permits already taken for them (direct handoff,
//!   so no thread can barge past them); what is left goes into the word.
//! - A waiter that leaves the queue by itself (timeout, interrupt) may
//!   unblock the one behind it; it runs the same hand-out with zero new
//!   permits afterwards, which also clears a stale `WAITERS` bit.

use crate::error::SemaphoreReleaseError;
use crate::park::{self, FilterOp, Instant, ParkResult, ParkToken, UnparkResult, UnparkToken};
use crate::sync::{AtomicUsize, Ordering, SpinWait, const_fn};
use crate::wait::{self, ATTACHED, Plain, WaitEnd, Waiter};
use core::cell::Cell;
use core::fmt;
use core::time::Duration;

const WAITERS: usize = 1;
/// The largest number of permits a semaphore can hold.
const MAX_PERMITS: usize = usize::MAX >> 1;
/// The largest request a plain waiter's park token can carry (`n << 6`).
const MAX_REQUEST: usize = usize::MAX >> 6;

/// The permits asked for were taken for the woken waiter.
const TOKEN_GRANTED: UnparkToken = UnparkToken(1);
static_assertions::const_assert!(TOKEN_GRANTED.0 != wait::TOKEN_INTERRUPTED.0);

/// The common core of [`Semaphore`] and [`BoundedSemaphore`].
struct RawSemaphore {
    state: AtomicUsize,
}

impl RawSemaphore {
    const_fn! {
        const fn new(permits: usize) -> Self {
            assert!(permits <= MAX_PERMITS, "too many permits for a semaphore");
            Self {
                state: AtomicUsize::new(permits << 1),
            }
        }
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Whether threads may be waiting (true for a moment after the last
    /// one was interrupted, until it tidies up).
    fn has_waiters(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WAITERS != 0
    }

    fn permits(&self) -> usize {
        self.state.load(Ordering::Relaxed) >> 1
    }

    #[inline]
    fn try_acquire(&self, n: usize) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & WAITERS != 0 || state >> 1 < n {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state - (n << 1),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }

    /// The slow path: queue behind earlier waiters and wait for a handoff.
    fn acquire_slow<W: Waiter>(&self, n: usize, deadline: Option<Instant>, waiter: &W) -> WaitEnd {
        let key = self.key();
        loop {
            let acquired = Cell::new(false);
            let interrupted = Cell::new(false);
            let repair = Cell::new(false);
            let validate = || {
                if waiter.interrupt_pending() {
                    interrupted.set(true);
                    return false;
                }
                let mut state = self.state.load(Ordering::Relaxed);
                loop {
                    let (new, take) = if state & WAITERS == 0 && state >> 1 >= n {
                        (state - (n << 1), true)
                    } else {
                        (state | WAITERS, false)
                    };
                    if new == state {
                        waiter.queued();
                        return true;
                    }
                    match self.state.compare_exchange_weak(
                        state,
                        new,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            acquired.set(take);
                            if !take {
                                waiter.queued();
                            }
                            return !take;
                        }
                        Err(actual) => state = actual,
                    }
                }
            };
            let timed_out = |_key, was_last: bool| {
                if was_last {
                    self.state.fetch_and(!WAITERS, Ordering::Relaxed);
                } else {
                    // The waiter behind us may fit now.
                    repair.set(true);
                }
            };
            // A waiter holding the Gil (its token carries ATTACHED) asks for
            // one permit, which its token implies; a plain one carries its
            // request.
            let token = match wait::park_token(waiter, 0) {
                attached if attached.0 & ATTACHED != 0 => {
                    debug_assert_eq!(n, 1);
                    attached
                }
                _ => ParkToken(n << 6),
            };
            // SAFETY:
            // - the key is this semaphore's own address;
            // - the callbacks touch only its word and the waiter's interrupt
            //   flag: they neither park, unpark nor unwind, and run no user
            //   code.
            let result = unsafe { park::park(key, validate, || {}, timed_out, token, deadline) };
            match result {
                ParkResult::Invalid if acquired.get() => return WaitEnd::Done,
                ParkResult::Invalid if interrupted.get() => return WaitEnd::Interrupted,
                ParkResult::Invalid => {}
                ParkResult::Unparked(TOKEN_GRANTED) => return WaitEnd::Done,
                ParkResult::Unparked(_) => {
                    // An interrupt took us out of the queue without telling
                    // the semaphore: hand out what our leaving freed and fix
                    // `WAITERS`. (Only interruptible tokens are taken out
                    // this way.)
                    let _ = self.dispatch(0, None);
                    return WaitEnd::Interrupted;
                }
                ParkResult::TimedOut => {
                    if repair.get() {
                        let _ = self.dispatch(0, None);
                    }
                    return WaitEnd::TimedOut;
                }
            }
        }
    }

    /// Takes `n` permits as `waiter` waits (see `crate::wait`).
    fn acquire<W: Waiter>(&self, n: usize, deadline: Option<Instant>, waiter: &W) -> WaitEnd {
        assert!(
            n <= MAX_REQUEST,
            "more permits asked for at once than a semaphore request can carry (usize::MAX >> 6)"
        );
        wait::run(waiter, |waiter| {
            if self.try_acquire(n) {
                return WaitEnd::Done;
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return WaitEnd::TimedOut;
            }
            // Nobody holding the Gil spins or sleeps here (a releaser may
            // need the Gil): let go of it first. Then a release on another
            // core may be a moment away (a handoff between two threads).
            waiter.detach(self.key());
            let mut spin = SpinWait::new();
            while spin.spin() {
                if self.try_acquire(n) {
                    return WaitEnd::Done;
                }
            }
            self.acquire_slow(n, deadline, waiter)
        })
    }

    /// Adds `n` permits, or fails if that would take the count above
    /// `bound`; nothing changes then.
    #[inline]
    fn release(&self, n: usize, bound: Option<usize>) -> Result<(), SemaphoreReleaseError> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let permits = state >> 1;
            let Some(total) = permits.checked_add(n).filter(|&t| t <= MAX_PERMITS) else {
                if bound.is_some() {
                    return Err(SemaphoreReleaseError);
                }
                panic!("Semaphore::release: the permit count would overflow");
            };
            if bound.is_some_and(|b| total > b) {
                return Err(SemaphoreReleaseError);
            }
            if state & WAITERS != 0 {
                return self.dispatch(n, bound);
            }
            match self.state.compare_exchange_weak(
                state,
                total << 1,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
        }
    }

    /// With the queue locked: adds `add` permits and hands them to the
    /// parked waiters oldest first while the oldest one's request fits.
    fn dispatch(&self, add: usize, bound: Option<usize>) -> Result<(), SemaphoreReleaseError> {
        let available: Cell<Option<usize>> = Cell::new(None);
        let refused = Cell::new(false);
        let filter = |token: ParkToken| {
            let avail = match available.get() {
                Some(avail) => avail,
                None => {
                    // Threads are parked, so `WAITERS` is set and the word
                    // changes only under the queue lock we hold.
                    let permits = self.state.load(Ordering::Relaxed) >> 1;
                    let total = permits.saturating_add(add).min(MAX_PERMITS);
                    if bound.is_some_and(|b| total > b) {
                        refused.set(true);
                        return FilterOp::Stop;
                    }
                    total
                }
            };
            // A waiter holding the Gil asks for one permit; a plain one
            // carries its request in the high bits.
            let need = if token.0 & ATTACHED != 0 {
                1
            } else {
                token.0 >> 6
            };
            if need <= avail {
                available.set(Some(avail - need));
                FilterOp::Unpark
            } else {
                available.set(Some(avail));
                FilterOp::Stop
            }
        };
        let callback = |result: UnparkResult| {
            if refused.get() {
                return TOKEN_GRANTED;
            }
            match available.get() {
                Some(avail) => {
                    let waiters = if result.have_more_threads { WAITERS } else { 0 };
                    self.state.store(avail << 1 | waiters, Ordering::Release);
                }
                None => {
                    // Nobody is parked: a stale `WAITERS` goes, and fast
                    // paths may race with us.
                    let update =
                        self.state
                            .fetch_update(Ordering::Release, Ordering::Relaxed, |s| {
                                let total = (s >> 1).saturating_add(add).min(MAX_PERMITS);
                                if bound.is_some_and(|b| total > b) {
                                    None
                                } else {
                                    Some(total << 1)
                                }
                            });
                    refused.set(update.is_err());
                }
            }
            TOKEN_GRANTED
        };
        // SAFETY: our own key; the callbacks touch only our word and never
        // park, unpark or unwind.
        unsafe { park::unpark_filter(self.key(), filter, callback) };
        if refused.get() {
            Err(SemaphoreReleaseError)
        } else {
            Ok(())
        }
    }
}

/// The methods both semaphores share, written once.
macro_rules! acquire_methods {
    () => {
        /// Takes one permit, waiting until one is free and every thread
        /// that asked earlier has been served (Python's `acquire()`).
        #[inline]
        pub fn acquire(&self) {
            self.acquire_n(1);
        }

        /// Takes `n` permits at once, waiting until they are free and every
        /// thread that asked earlier has been served. A large request at the
        /// head of the queue is not bypassed by later small ones: they wait
        /// behind it. `acquire_n(0)` returns at once unless others wait.
        ///
        /// # Panics
        ///
        /// If `n` exceeds `usize::MAX >> 6`, the most one request can ask
        /// for.
        #[doc(alias = "acquire_many")]
        pub fn acquire_n(&self, n: usize) {
            let _ = self.raw.acquire(n, None, &Plain);
        }

        /// Takes one permit if one is free and nobody waits, without
        /// waiting (Python's `acquire(blocking=False)`). Returns whether it
        /// took one.
        #[must_use = "if false, nothing was taken"]
        #[inline]
        pub fn try_acquire(&self) -> bool {
            self.raw.try_acquire(1)
        }

        /// Takes `n` permits if they are free and nobody waits, without
        /// waiting.
        #[must_use = "if false, nothing was taken"]
        #[doc(alias = "try_acquire_many")]
        #[inline]
        pub fn try_acquire_n(&self, n: usize) -> bool {
            self.raw.try_acquire(n)
        }

        /// Takes one permit, waiting at most `timeout` (Python's
        /// `acquire(timeout=...)`); returns whether it took one. A zero
        /// timeout is [`try_acquire`](Self::try_acquire); a timeout too
        /// large to represent waits without end.
        #[must_use = "if false, the wait timed out and nothing was taken"]
        pub fn acquire_timeout(&self, timeout: Duration) -> bool {
            self.acquire_n_timeout(1, timeout)
        }

        /// Takes `n` permits, waiting at most `timeout`; returns whether it
        /// took them (all or none).
        #[must_use = "if false, the wait timed out and nothing was taken"]
        pub fn acquire_n_timeout(&self, n: usize, timeout: Duration) -> bool {
            let deadline = park::clock::deadline_after(timeout);
            self.raw.acquire(n, deadline, &Plain) == WaitEnd::Done
        }

        /// Takes one permit as `waiter` waits: the one slow path of the
        /// plain and the Gil-releasing (`_with`) forms.
        pub(crate) fn acquire_waiting<W: Waiter>(
            &self,
            deadline: Option<Instant>,
            waiter: &W,
        ) -> WaitEnd {
            self.raw.acquire(1, deadline, waiter)
        }

        /// The permits free right now (Python's `_value`). A snapshot: it
        /// may change as soon as it is read. Permits handed to a woken
        /// waiter are not counted.
        #[doc(alias = "_value")]
        #[inline]
        pub fn available_permits(&self) -> usize {
            self.raw.permits()
        }
    };
}

/// A counting semaphore with the semantics of Python's
/// `threading.Semaphore`, served in FIFO order.
///
/// It holds a number of permits. [`acquire`](Self::acquire) takes one,
/// waiting while none is free; [`release`](Self::release) puts permits back,
/// from any thread. [`acquire_n`](Self::acquire_n) takes several at once.
///
/// **Fairness.** Waiters are served strictly in arrival order, and a
/// release hands permits directly to them (a running thread cannot barge
/// past a woken one). A request that does not fit blocks every later
/// request, even small ones that would: `acquire_n(5)` at the head of the
/// queue is not starved by a stream of `acquire()`s. While anyone waits,
/// [`try_acquire`](Self::try_acquire) fails.
///
/// **With the Gil.** An interpreter thread must not block on a semaphore
/// while it holds the Gil: [`acquire_with`](Self::acquire_with) and
/// [`acquire_timeout_with`](Self::acquire_timeout_with) take `&mut` a
/// [`GilGuard`](crate::GilGuard)(crate::GilGuard), release the Gil while waiting, and can be interrupted by
/// [`ThreadState::interrupt`](crate::ThreadState::interrupt), as
/// [`Condition`](crate::Condition) waits through a `GilGuard` are: they
/// return `Result<_, Interrupted>` around what the plain form returns.
///
/// # Example
///
/// ```
/// use gilock::Semaphore;
/// use std::sync::Arc;
///
/// // At most two workers in the section at a time.
/// let sem = Arc::new(Semaphore::new(2));
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let sem = Arc::clone(&sem);
///         std::thread::spawn(move || {
///             sem.acquire();
///             // ... at most one other thread is here ...
///             sem.release_one();
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct Semaphore {
    raw: RawSemaphore,
}

static_assertions::assert_impl_all!(Semaphore: Send, Sync);

impl Semaphore {
    const_fn! {
        /// A semaphore holding `permits` permits (Python's
        /// `Semaphore(value)`).
        ///
        /// `const` except under `--cfg loom`, whose atomics cannot be built
        /// in constants.
        ///
        /// # Panics
        ///
        /// If `permits` exceeds `usize::MAX / 2`.
        ///
        /// ```
        /// use gilock::Semaphore;
        ///
        /// static POOL: Semaphore = Semaphore::new(3);
        /// assert!(POOL.try_acquire());
        /// assert_eq!(POOL.available_permits(), 2);
        /// ```
        #[must_use]
        pub const fn new(permits: usize) -> Self {
            Self {
                raw: RawSemaphore::new(permits),
            }
        }
    }

    acquire_methods!();

    /// Puts `n` permits back (Python 3.9's `release(n)`), waking as many
    /// waiters, oldest first, as they satisfy. Any thread may release, and
    /// releasing more than was ever acquired simply adds permits.
    ///
    /// ```
    /// use gilock::Semaphore;
    ///
    /// let sem = Semaphore::new(0);
    /// sem.release(3);
    /// assert!(sem.try_acquire_n(3));
    /// assert!(!sem.try_acquire());
    /// ```
    ///
    /// # Panics
    ///
    /// If the count would exceed `usize::MAX / 2`.
    #[doc(alias = "add_permits")]
    #[inline]
    pub fn release(&self, n: usize) {
        let _ = self.raw.release(n, None);
    }

    /// Puts one permit back: `release(1)`.
    #[inline]
    pub fn release_one(&self) {
        self.release(1);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .field("has_waiters", &self.raw.has_waiters())
            .finish()
    }
}

/// A semaphore that refuses to hold more permits than it started with:
/// Python's `threading.BoundedSemaphore`, whose `release` raises
/// `ValueError` ("Semaphore released too many times") — here an
/// `Err(`[`SemaphoreReleaseError`]`)`, with nothing changed.
///
/// Otherwise it is a [`Semaphore`]: the same FIFO fairness, the same ways
/// to acquire, with or without the Gil.
///
/// # Example
///
/// ```
/// use gilock::{BoundedSemaphore, SemaphoreReleaseError};
///
/// let sem = BoundedSemaphore::new(2);
/// sem.acquire();
/// assert_eq!(sem.release(2), Err(SemaphoreReleaseError)); // would make 3
/// assert_eq!(sem.available_permits(), 1);
/// assert_eq!(sem.release_one(), Ok(()));
/// assert_eq!(sem.release_one(), Err(SemaphoreReleaseError));
/// ```
pub struct BoundedSemaphore {
    raw: RawSemaphore,
    initial: usize,
}

static_assertions::assert_impl_all!(BoundedSemaphore: Send, Sync);

impl BoundedSemaphore {
    const_fn! {
        /// A bounded semaphore holding `permits` permits, which is also
        /// the most it will ever hold.
        ///
        /// `const` except under `--cfg loom`.
        ///
        /// # Panics
        ///
        /// If `permits` exceeds `usize::MAX / 2`.
        #[must_use]
        pub const fn new(permits: usize) -> Self {
            Self {
                raw: RawSemaphore::new(permits),
                initial: permits,
            }
        }
    }

    acquire_methods!();

    /// Puts `n` permits back, waking waiters oldest first as they are
    /// satisfied.
    ///
    /// # Errors
    ///
    /// [`SemaphoreReleaseError`] when the free permits would exceed the
    /// initial count; no permit is added then.
    #[doc(alias = "add_permits")]
    #[inline]
    pub fn release(&self, n: usize) -> Result<(), SemaphoreReleaseError> {
        self.raw.release(n, Some(self.initial))
    }

    /// Puts one permit back: `release(1)`.
    ///
    /// # Errors
    ///
    /// As [`release`](Self::release).
    #[inline]
    pub fn release_one(&self) -> Result<(), SemaphoreReleaseError> {
        self.release(1)
    }

    /// The permit count it was created with, and the most it may hold.
    pub fn initial_permits(&self) -> usize {
        self.initial
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available_permits", &self.available_permits())
            .field("initial_permits", &self.initial)
            .field("has_waiters", &self.raw.has_waiters())
            .finish()
    }
}
