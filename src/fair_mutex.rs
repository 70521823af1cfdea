//! `RawFairMutex`: a mutex that is as fast as an unfair one until a waiter
//! has waited a whole switch interval, and strictly fair from then on.
//!
//! # The state word
//!
//! - `LOCKED`: someone holds the lock. During a handoff it stays set, so
//!   no running thread can barge in between the unlocker and the heir.
//! - `PARKED`: threads may be parked on the mutex; unlock must look.
//! - `DROP_REQUESTED`: a parked waiter is *overdue* (it has waited longer than
//!   the switch interval). The next unlock hands the lock to the oldest
//!   overdue waiter. The bit changes only with the park queue locked, so it
//!   always agrees with the tokens of the parked threads.
//!
//! A waiter parks with a timeout of one switch interval. When it fires, the
//! waiter re-parks untimed with the `OVERDUE` token and sets `DROP_REQUESTED`
//! in the same critical section of the queue. Re-parking puts it at the tail
//! of the queue, which is why the handoff picks the first *overdue* waiter
//! and not simply the first one: overdue waiters are ordered by when their
//! interval ran out, which is the order in which they came.
//!
//! Without a drop request, unlock releases the lock first and only then
//! wakes the oldest waiter to compete for it (parking_lot's way), so running
//! threads keep the lock busy while the wake-up goes through the queue. If
//! that waiter turns out to be overdue (its request came up after the
//! unlocker looked) and the lock is still free, it is taken for the waiter
//! and handed over.

use crate::interval::{self, earliest};
use crate::park::{self, FilterOp, Instant, ParkResult, ParkToken, UnparkResult, UnparkToken};
use crate::sync::{AtomicU8, Ordering, SpinWait, StaticAtomicU8, UnmodeledAtomicU32, const_fn};
use crate::wait::{self, Plain, TOKEN_BITS, WaitEnd, Waiter};
use core::cell::Cell;
use core::time::Duration;

const LOCKED: u8 = 0b001;
const PARKED: u8 = 0b010;
const DROP_REQUESTED: u8 = 0b100;

/// Token bits of a waiter still within its switch interval.
const PATIENT: usize = 0;
/// Token bits of a waiter whose switch interval ran out.
const OVERDUE: usize = 1;

fn is_overdue(token: ParkToken) -> bool {
    token.0 & TOKEN_BITS == OVERDUE
}

/// The lock was released; compete for it again.
const TOKEN_RETRY: UnparkToken = UnparkToken(0);
/// The lock is yours: the unlocker left `LOCKED` set for you. (A condition
/// waiter requeued onto the mutex gets it too: see `RawCondition`.)
pub(crate) const TOKEN_HANDOFF: UnparkToken = UnparkToken(1);

/// The switch interval of a mutex that was not given one: 5 ms, CPython's
/// default `sys.getswitchinterval()`.
pub const DEFAULT_SWITCH_INTERVAL: Duration = interval::from_micros(interval::DEFAULT_MICROS);

/// The raw fair handoff mutex behind [`FairMutex`].
///
/// Uncontended, it costs one compare-and-swap to lock and one to unlock.
/// Under contention it lets a running thread re-take the lock (which keeps
/// throughput high) until some waiter has waited longer than the mutex's
/// switch interval (default [`DEFAULT_SWITCH_INTERVAL`]); that waiter sets a
/// drop request, and from then on every unlock hands the lock directly to
/// the oldest waiter. A waiter therefore waits at most about
/// (threads ahead of it + 1) × interval.
///
/// Besides [`lock_api::RawMutex`], it implements [`lock_api::RawMutexFair`]
/// (`unlock_fair` always hands off; `bump` hands off only when someone
/// waits) and, with `std`, [`lock_api::RawMutexTimed`].
///
/// The holder can poll [`is_drop_requested`](Self::is_drop_requested) (one
/// relaxed load) at safe points and `bump` when it returns true, which is
/// what an interpreter loop does at its checkpoints.
///
/// # Example
///
/// ```
/// use gilock::{FairMutex, RawFairMutex};
/// use lock_api::RawMutexFair;
/// use std::time::Duration;
///
/// // A mutex whose waiters ask for it after 1 ms.
/// let m = FairMutex::from_raw(RawFairMutex::with_switch_interval(Duration::from_millis(1)), 0);
/// let mut guard = m.lock();
/// for _ in 0..1000 {
///     *guard += 1;
///     if unsafe { FairMutex::raw(&m) }.is_drop_requested() {
///         gilock::FairMutexGuard::bump(&mut guard);
///     }
/// }
/// assert_eq!(*guard, 1000);
/// ```
pub struct RawFairMutex {
    /// Under loom the state word must be created inside the model, but
    /// `lock_api::RawMutex::INIT` must be a constant: `INIT` (and so
    /// `FairMutex::new`) leaves the word to be created at first use in each
    /// execution, and [`RawFairMutex::new`] creates it at once (see
    /// `sync::StaticAtomicU8`).
    state: StaticAtomicU8,
    /// Configuration, not synchronisation: kept off the loom model.
    interval_micros: UnmodeledAtomicU32,
}

#[cfg(not(loom))]
static_assertions::const_assert!(core::mem::size_of::<RawFairMutex>() <= 8);
static_assertions::assert_impl_all!(RawFairMutex: Send, Sync);

impl RawFairMutex {
    const_fn! {
        /// An unlocked mutex with the default 5 ms switch interval.
        ///
        /// `const` except under `--cfg loom`, whose atomics cannot be built
        /// in constants.
        #[must_use]
        pub const fn new() -> Self {
            Self::with_switch_interval(DEFAULT_SWITCH_INTERVAL)
        }
    }

    const_fn! {
        /// An unlocked mutex whose waiters set a drop request after
        /// `interval`. Intervals are kept in whole microseconds: zero becomes
        /// 1 µs and anything over 71 minutes becomes 71 minutes.
        #[must_use]
        pub const fn with_switch_interval(interval: Duration) -> Self {
            Self {
                state: StaticAtomicU8::new(0),
                interval_micros: UnmodeledAtomicU32::new(interval::to_micros(interval)),
            }
        }
    }

    /// Changes the switch interval; waits that start later use the new one.
    /// Rounded as in [`with_switch_interval`](Self::with_switch_interval).
    pub fn set_switch_interval(&self, interval: Duration) {
        self.interval_micros
            .store(interval::to_micros(interval), Ordering::Relaxed);
    }

    /// The current switch interval.
    pub fn switch_interval(&self) -> Duration {
        interval::from_micros(self.interval_micros.load(Ordering::Relaxed))
    }

    /// Whether a waiter has waited longer than the switch interval, so the
    /// next unlock will hand the lock over. One relaxed load: cheap enough
    /// for a holder to poll in its inner loop.
    #[inline]
    pub fn is_drop_requested(&self) -> bool {
        self.word().load(Ordering::Relaxed) & DROP_REQUESTED != 0
    }

    #[inline]
    fn word(&self) -> &AtomicU8 {
        self.state.get()
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Takes the lock if it is free, without queueing.
    #[inline]
    pub(crate) fn try_lock_raw(&self) -> bool {
        let word = self.word();
        let mut state = word.load(Ordering::Relaxed);
        loop {
            if state & LOCKED != 0 {
                return false;
            }
            match word.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }

    /// Takes the lock, waiting until `deadline` at most (`None`: forever).
    /// Returns whether it was taken.
    #[inline]
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> bool {
        self.lock_waiting(deadline, &Plain) == WaitEnd::Done
    }

    /// Takes the lock as `waiter` waits (see `crate::wait`): at once if it
    /// is free, else on the slow path, which lets go of the waiter's Gil
    /// first. Returns how the wait ended; an interrupted waiter has left
    /// the lock's state as if it had never come.
    #[inline]
    pub(crate) fn lock_waiting<W: Waiter>(&self, deadline: Option<Instant>, waiter: &W) -> WaitEnd {
        wait::run(waiter, |waiter| {
            if self
                .word()
                .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return WaitEnd::Done;
            }
            self.lock_slow(deadline, waiter)
        })
    }

    #[cold]
    fn lock_slow<W: Waiter>(&self, deadline: Option<Instant>, waiter: &W) -> WaitEnd {
        let word = self.word();
        // Nobody holding the Gil sleeps (or spins) on the mutex: its holder
        // may need the Gil to get to its unlock.
        if waiter.is_attached() {
            if self.try_lock_raw() {
                return WaitEnd::Done;
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                // A zero timeout: no reason to let go of the Gil.
                return WaitEnd::TimedOut;
            }
            waiter.detach(self.key());
        }
        // The interval starts when the thread first parks: reading the clock
        // costs about as much as the rest of a contended lock, and most
        // contended locks are won while spinning, before any park.
        let mut interval_ends: Option<Option<Instant>> = None;
        let mut overdue = false;
        let mut spin = SpinWait::new();
        let mut state = word.load(Ordering::Relaxed);
        loop {
            if state & LOCKED == 0 {
                match word.compare_exchange_weak(
                    state,
                    state | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return WaitEnd::Done,
                    Err(actual) => state = actual,
                }
                continue;
            }

            // Spinning only helps while nobody is queued: with a queue, the
            // lock goes to the queue first once a drop request is up.
            // An overdue waiter does not spin: it should be queued (and its
            // drop request up) at once, and a yield inside the spin can cost
            // a whole scheduler slice on a loaded machine.
            if !overdue && state & PARKED == 0 && spin.spin() {
                state = word.load(Ordering::Relaxed);
                continue;
            }

            if state & PARKED == 0
                && let Err(actual) = word.compare_exchange_weak(
                    state,
                    state | PARKED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
            {
                state = actual;
                continue;
            }

            let interrupted = Cell::new(false);
            let validate = || {
                if waiter.interrupt_pending() {
                    interrupted.set(true);
                    return false;
                }
                let state = word.load(Ordering::Relaxed);
                if state & (LOCKED | PARKED) != LOCKED | PARKED {
                    return false;
                }
                if overdue && state & DROP_REQUESTED == 0 {
                    word.fetch_or(DROP_REQUESTED, Ordering::Relaxed);
                }
                waiter.queued();
                true
            };
            let timed_out = |_key, was_last: bool| {
                // With nobody left in the queue no drop request can stand.
                if was_last {
                    word.fetch_and(!(PARKED | DROP_REQUESTED), Ordering::Relaxed);
                }
            };
            let (bits, park_deadline) = if overdue {
                (OVERDUE, deadline)
            } else {
                let interval_ends = *interval_ends
                    .get_or_insert_with(|| Instant::now().checked_add(self.switch_interval()));
                (PATIENT, earliest(deadline, interval_ends))
            };
            // SAFETY:
            // - the key is our own address;
            // - the callbacks only touch our state word and the waiter's
            //   interrupt flag: they neither park, unpark nor unwind, and
            //   run no user code.
            let result = unsafe {
                park::park(
                    self.key(),
                    validate,
                    || {},
                    timed_out,
                    wait::park_token(waiter, bits),
                    park_deadline,
                )
            };
            match result {
                ParkResult::Unparked(TOKEN_HANDOFF) => return WaitEnd::Done,
                ParkResult::Unparked(wait::TOKEN_INTERRUPTED) => {
                    // The interrupter took us out of the queue without
                    // looking at our bits.
                    self.tidy_after_leaving();
                    return WaitEnd::Interrupted;
                }
                ParkResult::Invalid if interrupted.get() => return WaitEnd::Interrupted,
                ParkResult::TimedOut => {
                    if deadline.is_some_and(|d| d.has_passed()) {
                        if overdue {
                            // The drop request may have been ours alone;
                            // `timed_out` cannot tell (it does not see the
                            // queue's tokens), and a request left up with
                            // nobody overdue makes the next unlock hand the
                            // lock to a waiter it is not owed to.
                            self.tidy_after_leaving();
                        }
                        return WaitEnd::TimedOut;
                    }
                    overdue = true;
                }
                ParkResult::Unparked(_) | ParkResult::Invalid => {}
            }
            spin.reset();
            state = word.load(Ordering::Relaxed);
        }
    }

    /// After a waiter left the queue behind the mutex's back (an
    /// interrupt, or the timeout of an overdue waiter): clears the `PARKED`
    /// and `DROP_REQUESTED` bits that the queue no longer justifies, with
    /// the queue locked.
    #[cold]
    fn tidy_after_leaving(&self) {
        let word = self.word();
        let any_overdue = Cell::new(false);
        let filter = |token: ParkToken| {
            any_overdue.set(any_overdue.get() || is_overdue(token));
            FilterOp::Skip
        };
        let callback = |result: UnparkResult| {
            let mut stale = 0;
            if !result.have_more_threads {
                stale |= PARKED | DROP_REQUESTED;
            } else if !any_overdue.get() {
                stale |= DROP_REQUESTED;
            }
            // A waiter about to park re-raises PARKED itself (its
            // `validate` refuses while the bit is clear).
            word.fetch_and(!stale, Ordering::Relaxed);
            TOKEN_RETRY
        };
        // SAFETY:
        // - our own key;
        // - the callbacks only touch our state word: they neither park nor
        //   unwind, and unpark nobody (the filter skips every waiter).
        unsafe { park::unpark_filter(self.key(), filter, callback) };
    }

    /// Releases the lock, letting a running thread take it unless a waiter
    /// is overdue.
    ///
    /// # Safety
    /// The lock must be held (by anyone: ownership is not tracked here).
    #[inline]
    pub(crate) unsafe fn unlock_raw(&self) {
        self.unlock_with(false);
    }

    /// Releases the lock, handing it to the oldest waiter if there is one.
    ///
    /// # Safety
    /// The lock must be held.
    #[inline]
    pub(crate) unsafe fn unlock_fair_raw(&self) {
        self.unlock_with(true);
    }

    /// Nobody waits: one compare-and-swap; otherwise the slow path decides
    /// between a release and a handoff.
    #[inline]
    fn unlock_with(&self, fair: bool) {
        if self
            .word()
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow(fair);
        }
    }

    #[cold]
    fn unlock_slow(&self, fair: bool) {
        let word = self.word();
        if fair || word.load(Ordering::Relaxed) & DROP_REQUESTED != 0 {
            if !self.hand_off(true) {
                self.hand_off(false);
            }
            return;
        }
        // Nobody is owed the lock: release it before waking anyone, as
        // parking_lot does, so that a running thread can take it while the
        // wake-up goes through the park queue. (Holding it over the queue
        // made every thread that came by meanwhile park: 0.7x parking_lot's
        // contended throughput.)
        let state = word.fetch_and(!LOCKED, Ordering::Release);
        if state & PARKED != 0 {
            self.wake_to_retry();
        }
    }

    /// Hands the still-locked mutex to the heir: the first overdue waiter,
    /// or with `only_overdue` unset the first waiter of all (and with no
    /// waiter at all, releases it).
    ///
    /// Returns whether a thread was woken; when `only_overdue` finds nobody,
    /// nothing changes and the caller still holds the lock.
    fn hand_off(&self, only_overdue: bool) -> bool {
        let word = self.word();
        let heir = Heir::new(only_overdue);
        let callback = |result: UnparkResult| {
            // Swaps, not stores: a waiter may be raising PARKED right now
            // (outside the queue lock); its `validate` then sees the new
            // word and retries. A plain store would do on hardware (it is
            // ordered after that read-modify-write), but loom does not
            // order a plain store after a concurrent read-modify-write: it
            // let the waiter read back its own PARKED, park, and sleep for
            // ever (`fair_mutex::a_retaken_handoff_carries_a_newcomers_critical_section`
            // at preemption bound 3).
            if result.unparked_threads == 0 {
                if !only_overdue {
                    word.swap(0, Ordering::Release);
                }
                return TOKEN_RETRY;
            }
            word.swap(LOCKED | heir.bits_left(result), Ordering::Relaxed);
            TOKEN_HANDOFF
        };
        // SAFETY: our own key; the callbacks only touch our state word and
        // cannot unwind.
        let result = unsafe { park::unpark_filter(self.key(), |t| heir.filter(t), callback) };
        result.unparked_threads != 0
    }

    /// After a release: wakes the first waiter to compete for the lock, or,
    /// if it is overdue (its drop request came up after the unlocker looked)
    /// and the lock is still free, takes the lock for it and hands it over.
    fn wake_to_retry(&self) {
        let word = self.word();
        let heir = Heir::new(false);
        let callback = |result: UnparkResult| {
            // Another thread may hold the lock by now: only our bits change.
            let stale = (PARKED | DROP_REQUESTED) & !heir.bits_left(result);
            if result.unparked_threads != 0
                && heir.overdue.get()
                && word.fetch_or(LOCKED, Ordering::Acquire) & LOCKED == 0
            {
                word.fetch_and(!stale, Ordering::Relaxed);
                return TOKEN_HANDOFF;
            }
            word.fetch_and(!stale, Ordering::Relaxed);
            TOKEN_RETRY
        };
        // SAFETY: our own key; the callbacks only touch our state word and
        // cannot unwind.
        unsafe { park::unpark_filter(self.key(), |t| heir.filter(t), callback) };
    }

    /// The mutex's park key: where a condition variable requeues its
    /// waiters.
    pub(crate) fn park_key(&self) -> usize {
        self.key()
    }

    /// For a condition variable about to requeue waiters onto this mutex,
    /// with both queues locked: raises `PARKED` if the mutex is locked (so
    /// its unlock will look at the queue) and says whether it did.
    pub(crate) fn mark_parked_if_locked(&self) -> bool {
        self.word()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |state| {
                (state & LOCKED != 0).then_some(state | PARKED)
            })
            .is_ok()
    }

    /// For a condition variable that requeued waiters onto this mutex, with
    /// both queues locked: raises `PARKED`.
    pub(crate) fn mark_parked(&self) {
        self.word().fetch_or(PARKED, Ordering::Relaxed);
    }

    /// Whether any thread is parked waiting for the lock.
    #[inline]
    pub(crate) fn has_waiters(&self) -> bool {
        self.word().load(Ordering::Relaxed) & PARKED != 0
    }

    /// `unlock_fair` + `lock`, but only when someone waits.
    ///
    /// # Safety
    /// The lock must be held.
    pub(crate) unsafe fn bump_raw(&self) {
        if self.has_waiters() {
            // SAFETY: forwarded.
            unsafe { self.unlock_fair_raw() };
            self.lock_until(None);
        }
    }
}

impl Default for RawFairMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for RawFairMutex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.word().load(Ordering::Relaxed);
        f.debug_struct("RawFairMutex")
            .field("locked", &(state & LOCKED != 0))
            .field("waiters", &(state & PARKED != 0))
            .field("drop_requested", &(state & DROP_REQUESTED != 0))
            .field("switch_interval", &self.switch_interval())
            .finish()
    }
}

/// The choice of one heir in a scan of the park queue, oldest first.
struct Heir {
    only_overdue: bool,
    chosen: Cell<bool>,
    overdue: Cell<bool>,
    more_overdue: Cell<bool>,
}

impl Heir {
    fn new(only_overdue: bool) -> Self {
        Self {
            only_overdue,
            chosen: Cell::new(false),
            overdue: Cell::new(false),
            more_overdue: Cell::new(false),
        }
    }

    /// Picks the first (overdue) waiter. Scanning on past it keeps
    /// DROP_REQUESTED exact: it stays up only while an overdue waiter
    /// remains parked.
    fn filter(&self, token: ParkToken) -> FilterOp {
        if self.chosen.get() {
            if is_overdue(token) {
                self.more_overdue.set(true);
                return FilterOp::Stop;
            }
            return FilterOp::Skip;
        }
        if self.only_overdue && !is_overdue(token) {
            return FilterOp::Skip;
        }
        self.chosen.set(true);
        self.overdue.set(is_overdue(token));
        FilterOp::Unpark
    }

    /// The PARKED and DROP_REQUESTED bits that the queue still justifies.
    fn bits_left(&self, result: UnparkResult) -> u8 {
        let parked = if result.have_more_threads { PARKED } else { 0 };
        let drop = if self.more_overdue.get() {
            DROP_REQUESTED
        } else {
            0
        };
        parked | drop
    }
}

// SAFETY: `lock`/`try_lock` return only after setting LOCKED with Acquire
// ordering, and only one thread can set it (CAS) or receive it (a handoff
// keeps it set and wakes exactly one thread); unlock clears it with Release
// or hands it to one thread. So at most one guard state exists at a time.
unsafe impl lock_api::RawMutex for RawFairMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self {
        state: StaticAtomicU8::zero(),
        interval_micros: UnmodeledAtomicU32::new(interval::DEFAULT_MICROS),
    };

    /// Ownership is not tied to a thread, so guards may be sent.
    type Guard = lock_api::GuardSend;

    #[inline]
    fn lock(&self) -> Self::Guard {
        self.lock_until(None);
        lock_api::GuardSend::new()
    }

    #[inline]
    fn try_lock(&self) -> Option<Self::Guard> {
        self.try_lock_raw().then(lock_api::GuardSend::new)
    }

    #[inline]
    unsafe fn unlock(&self, _guard: Self::Guard) {
        // SAFETY: the guard proves the lock is held.
        unsafe { self.unlock_raw() }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.word().load(Ordering::Relaxed) & LOCKED != 0
    }
}

// SAFETY: `unlock_fair` and `bump` keep the exclusion argument of `RawMutex`:
// a handoff leaves LOCKED set and wakes exactly one thread to own it.
unsafe impl lock_api::RawMutexFair for RawFairMutex {
    #[inline]
    unsafe fn unlock_fair(&self, _guard: Self::Guard) {
        // SAFETY: the guard proves the lock is held.
        unsafe { self.unlock_fair_raw() }
    }

    /// Hands the lock to the oldest waiter and queues for it again; does
    /// nothing when nobody waits. The guard state is stateless, so an unwind
    /// cannot leave it invalid, and neither step can panic.
    #[inline]
    unsafe fn bump(&self, _guard: &mut Self::Guard) {
        // SAFETY: the guard proves the lock is held.
        unsafe { self.bump_raw() }
    }
}

#[cfg(feature = "std")]
// SAFETY: timed locking only adds a way to give up while waiting, which
// leaves the state as if the thread had never come (see `lock_slow`).
unsafe impl lock_api::RawMutexTimed for RawFairMutex {
    type Duration = Duration;
    type Instant = std::time::Instant;

    fn try_lock_for(&self, timeout: Duration) -> Option<Self::Guard> {
        let taken = if self.try_lock_raw() {
            true
        } else {
            // An unrepresentable deadline means "wait forever", never a panic.
            match park::clock::deadline_after(timeout) {
                Some(deadline) => self.lock_until(Some(deadline)),
                None => self.lock_until(None),
            }
        };
        taken.then(lock_api::GuardSend::new)
    }

    fn try_lock_until(&self, timeout: std::time::Instant) -> Option<Self::Guard> {
        let taken = self.try_lock_raw() || self.lock_until(Some(Instant::from_std(timeout)));
        taken.then(lock_api::GuardSend::new)
    }
}

/// A fair handoff mutex protecting a `T`: `lock_api`'s `Mutex` over
/// [`RawFairMutex`], so every `lock_api` method (`lock`, `try_lock`,
/// `try_lock_for`, `MutexGuard::bump`, `unlock_fair`, `map`, …) is there.
///
/// # Example
///
/// ```
/// use gilock::FairMutex;
/// use std::sync::Arc;
///
/// let counter = Arc::new(FairMutex::new(0u64));
/// let threads: Vec<_> = (0..4)
///     .map(|_| {
///         let counter = Arc::clone(&counter);
///         std::thread::spawn(move || {
///             for _ in 0..1000 {
///                 *counter.lock() += 1;
///             }
///         })
///     })
///     .collect();
/// for t in threads {
///     t.join().unwrap();
/// }
/// assert_eq!(*counter.lock(), 4000);
/// ```
pub type FairMutex<T> = lock_api::Mutex<RawFairMutex, T>;

/// The guard of a [`FairMutex`]; the lock is released when it drops.
pub type FairMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawFairMutex, T>;
