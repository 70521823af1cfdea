//! `Event`: Python's `threading.Event` on the park layer.
//!
//! One word: `SET` (the flag) and `PARKED` (threads may be parked on the
//! event's address). A waiter sets `PARKED` with the queue locked, in the
//! same read-modify-write that checks `SET`. `set` with nobody parked is
//! one compare-and-swap; with `PARKED` on, it turns `SET` on *inside* the
//! unpark that wakes every parked thread, with the queue locked. So the
//! flag and the wake-up are one step: a waiter either queued before it
//! (and is woken with `true`) or sees the flag; and a `clear` after `set`
//! returned cannot be followed by a wait that still returns `true` (with
//! the flag raised first and the wake-up second, a wait that began after
//! the `clear` could be caught by the late wake-up). `PARKED` may stay on
//! after an interrupted waiter left; that only costs one look at an empty
//! queue.

use crate::park::{self, FilterOp, Instant, ParkResult, UnparkResult, UnparkToken};
use crate::sync::{AtomicUsize, Ordering, SpinWait, const_fn};
use crate::wait::{self, Plain, WaitEnd, Waiter};
use core::fmt;
use core::time::Duration;

const SET: usize = 1;
const PARKED: usize = 2;

/// What `set` hands to the threads it wakes.
const TOKEN_SET: UnparkToken = UnparkToken(1);
static_assertions::const_assert!(TOKEN_SET.0 != wait::TOKEN_INTERRUPTED.0);

/// A flag that threads can wait for: Python's `threading.Event`.
///
/// [`set`](Self::set) turns the flag on and wakes every waiter (oldest
/// first); [`clear`](Self::clear) turns it off; [`wait`](Self::wait) returns
/// once the flag is on. A waiter woken by `set` returns true even if the
/// flag was cleared again before it ran (as in Python since 3.3).
///
/// **With the Gil.** [`wait_with`](Self::wait_with) and
/// [`wait_timeout_with`](Self::wait_timeout_with) take `&mut` a
/// [`GilGuard`](crate::GilGuard)(crate::GilGuard): the Gil is released while the thread waits, and the wait
/// can be interrupted by
/// [`ThreadState::interrupt`](crate::ThreadState::interrupt); they return
/// `Result<_, Interrupted>` around what the plain form returns, as
/// [`Condition`](crate::Condition) waits through a `GilGuard` do.
///
/// # Example
///
/// ```
/// use gilock::Event;
/// use std::sync::Arc;
///
/// let ready = Arc::new(Event::new());
/// let worker = {
///     let ready = Arc::clone(&ready);
///     std::thread::spawn(move || {
///         ready.wait();
///         assert!(ready.is_set());
///     })
/// };
/// ready.set();
/// worker.join().unwrap();
/// ```
pub struct Event {
    state: AtomicUsize,
}

static_assertions::assert_impl_all!(Event: Send, Sync);

impl Event {
    const_fn! {
        /// An event whose flag is off.
        ///
        /// `const` except under `--cfg loom`, whose atomics cannot be built
        /// in constants.
        ///
        /// ```
        /// use gilock::Event;
        ///
        /// static SHUTDOWN: Event = Event::new();
        /// assert!(!SHUTDOWN.is_set());
        /// ```
        #[must_use]
        pub const fn new() -> Self {
            Self {
                state: AtomicUsize::new(0),
            }
        }
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Whether the flag is on (Python's `is_set()`).
    #[doc(alias = "isSet")]
    #[inline]
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Turns the flag on and wakes every thread waiting for it.
    ///
    /// ```
    /// use gilock::Event;
    ///
    /// let event = Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// event.wait(); // returns at once
    /// ```
    pub fn set(&self) {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & PARKED == 0 {
            match self.state.compare_exchange_weak(
                state,
                state | SET,
                // Release publishes; it acts on nothing it reads (a
                // `PARKED` seen sends it to the slow path, under the lock).
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
        let callback = |_: UnparkResult| {
            // With the queue locked: the flag goes up and every parked
            // thread is being woken, in one step.
            self.state.store(SET, Ordering::Release);
            TOKEN_SET
        };
        // SAFETY:
        // - our own key;
        // - the callbacks touch only our word: they neither park, unpark
        //   nor unwind.
        unsafe { park::unpark_filter(self.key(), |_| FilterOp::Unpark, callback) };
    }

    /// Turns the flag off; later waits block until [`set`](Self::set).
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::Event;
    /// use std::time::Duration;
    ///
    /// let event = Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.wait_timeout(Duration::from_millis(1)));
    /// # }
    /// ```
    #[doc(alias = "reset")]
    pub fn clear(&self) {
        self.state.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Waits until the flag is on (at once if it is).
    pub fn wait(&self) {
        let _ = self.wait_waiting(None, &Plain);
    }

    /// Waits until the flag is on, at most `timeout`. Returns the flag as
    /// Python's `wait(timeout)` does: true when it was on or was set during
    /// the wait (even if cleared again since), false when the timeout
    /// passed with it off. A timeout too large to represent waits without
    /// end.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::Event;
    /// use std::time::Duration;
    ///
    /// let event = Event::new();
    /// assert!(!event.wait_timeout(Duration::from_millis(1)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_millis(1)));
    /// # }
    /// ```
    #[must_use = "if false, the wait timed out with the flag still clear"]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = park::clock::deadline_after(timeout);
        self.wait_waiting(deadline, &Plain) == WaitEnd::Done
    }

    /// Waits for the flag as `waiter` waits (see `crate::wait`): `Done`
    /// when it was or became set.
    pub(crate) fn wait_waiting<W: Waiter>(&self, deadline: Option<Instant>, waiter: &W) -> WaitEnd {
        wait::run(waiter, |waiter| {
            if self.is_set() {
                return WaitEnd::Done;
            }
            if deadline.is_some_and(|d| d.has_passed()) {
                return WaitEnd::TimedOut;
            }
            let key = self.key();
            // Outside any callback: a waiter holding the Gil lets go of it
            // before it spins or parks; then the `set` may be a moment away.
            waiter.detach(key);
            let mut spin = SpinWait::new();
            while spin.spin() {
                if self.is_set() {
                    return WaitEnd::Done;
                }
            }
            self.park_until_set(key, deadline, waiter)
        })
    }

    fn park_until_set<W: Waiter>(
        &self,
        key: usize,
        deadline: Option<Instant>,
        waiter: &W,
    ) -> WaitEnd {
        let interrupted = core::cell::Cell::new(false);
        let validate = || {
            if waiter.interrupt_pending() {
                interrupted.set(true);
                return false;
            }
            // A read-modify-write that both checks the flag and announces
            // us, so `set`'s compare-and-swap and this cannot miss each
            // other.
            let prev = self.state.fetch_or(PARKED, Ordering::Acquire);
            if prev & SET != 0 {
                if prev & PARKED == 0 {
                    // Nobody is parked: take our announcement back.
                    self.state.fetch_and(!PARKED, Ordering::Relaxed);
                }
                return false;
            }
            waiter.queued();
            true
        };
        let timed_out = |_key, was_last: bool| {
            if was_last {
                self.state.fetch_and(!PARKED, Ordering::Relaxed);
            }
        };
        // SAFETY:
        // - our own key;
        // - the callbacks touch only our word and the waiter's interrupt
        //   flag: they neither park, unpark nor unwind, and run no user
        //   code.
        let result = unsafe {
            park::park(
                key,
                validate,
                || {},
                timed_out,
                wait::park_token(waiter, 0),
                deadline,
            )
        };
        match result {
            ParkResult::Invalid if interrupted.get() => WaitEnd::Interrupted,
            ParkResult::Invalid | ParkResult::Unparked(TOKEN_SET) => WaitEnd::Done,
            ParkResult::Unparked(_) => WaitEnd::Interrupted,
            ParkResult::TimedOut => {
                if self.is_set() {
                    WaitEnd::Done
                } else {
                    WaitEnd::TimedOut
                }
            }
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}
