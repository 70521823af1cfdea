//! `Event`: Python's `threading.Event` on the park layer.
//!
//! One word: `SET` (the flag) and `PARKED` (threads may be parked on the
//! event's address). A waiter sets `PARKED` with the queue locked, in the
//! same compare-and-swap that checks `SET`; `set` turns `SET` on with one
//! read-modify-write and, if it saw `PARKED`, wakes every parked thread. So
//! either the waiter sees the flag, or `set` sees the waiter: no lost
//! wakeup. `PARKED` may stay on after an interrupted waiter left; that only
//! costs one look at an empty queue.

use crate::error::Interrupted;
use crate::gil::GilGuard;
use crate::park::{self, FilterOp, Instant, ParkResult, UnparkResult, UnparkToken};
use crate::sync::{AtomicUsize, Ordering, SpinWait, const_fn};
use crate::waiter::Waiter;
use core::fmt;
use core::time::Duration;

const SET: usize = 1;
const PARKED: usize = 2;

/// What `set` hands to the threads it wakes.
const TOKEN_SET: UnparkToken = UnparkToken(1);
static_assertions::const_assert!(TOKEN_SET.0 != park::TOKEN_INTERRUPTED.0);

/// How a wait ended.
enum Woken {
    Set,
    TimedOut,
    Interrupted,
}

/// A flag that threads can wait for: Python's `threading.Event`.
///
/// [`set`](Self::set) turns the flag on and wakes every waiter (oldest
/// first); [`clear`](Self::clear) turns it off; [`wait`](Self::wait) returns
/// once the flag is on. A waiter woken by `set` returns true even if the
/// flag was cleared again before it ran (as in Python since 3.3).
///
/// **With the Gil.** [`wait_with`](Self::wait_with) and
/// [`wait_timeout_with`](Self::wait_timeout_with) take `&mut` a
/// [`GilGuard`]: the Gil is released while the thread waits, and the wait
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
        let prev = self.state.fetch_or(SET, Ordering::AcqRel);
        if prev & PARKED != 0 {
            let callback = |_: UnparkResult| {
                // Every parked thread is being woken.
                self.state.fetch_and(!PARKED, Ordering::Relaxed);
                TOKEN_SET
            };
            // SAFETY: our own key; the callbacks touch only our word.
            unsafe { park::unpark_filter(self.key(), |_| FilterOp::Unpark, callback) };
        }
    }

    /// Turns the flag off; later waits block until [`set`](Self::set).
    ///
    /// ```
    /// use gilock::Event;
    /// use std::time::Duration;
    ///
    /// let event = Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.wait_timeout(Duration::from_millis(1)));
    /// ```
    pub fn clear(&self) {
        self.state.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Waits until the flag is on (at once if it is).
    pub fn wait(&self) {
        let _ = self.wait_inner(None, &Waiter::plain());
    }

    /// Waits until the flag is on, at most `timeout`. Returns the flag as
    /// Python's `wait(timeout)` does: true when it was on or was set during
    /// the wait (even if cleared again since), false when the timeout
    /// passed with it off. A timeout too large to represent waits without
    /// end.
    ///
    /// ```
    /// use gilock::Event;
    /// use std::time::Duration;
    ///
    /// let event = Event::new();
    /// assert!(!event.wait_timeout(Duration::from_millis(1)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = park::clock::deadline_after(timeout);
        matches!(self.wait_inner(deadline, &Waiter::plain()), Woken::Set)
    }

    /// As [`wait`](Self::wait), holding the Gil through `guard`: the Gil is
    /// released while the thread waits and held again when the call
    /// returns, however it ends.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] when [`ThreadState::interrupt`](crate::ThreadState::interrupt)
    /// ended the wait, or was pending when it began (consumed; the Gil was
    /// then never released).
    ///
    /// # Panics
    ///
    /// If the calling thread does not hold the Gil through `guard`.
    ///
    /// ```
    /// use gilock::{Event, Gil};
    ///
    /// let gil = Gil::new();
    /// let event = Event::new();
    /// let mut guard = gil.acquire();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         // Runs Python code: needs the Gil, which the waiter released.
    ///         let _g = gil.acquire();
    ///         event.set();
    ///     });
    ///     event.wait_with(&mut guard).unwrap();
    /// });
    /// assert!(gil.is_held_by_current_thread());
    /// ```
    pub fn wait_with(&self, guard: &mut GilGuard<'_>) -> Result<(), Interrupted> {
        match self.wait_inner(None, &Waiter::gil(guard)) {
            Woken::Interrupted => Err(Interrupted),
            _ => Ok(()),
        }
    }

    /// As [`wait_timeout`](Self::wait_timeout), holding the Gil through
    /// `guard`, released while waiting.
    ///
    /// # Errors
    ///
    /// As [`wait_with`](Self::wait_with).
    pub fn wait_timeout_with(
        &self,
        guard: &mut GilGuard<'_>,
        timeout: Duration,
    ) -> Result<bool, Interrupted> {
        let deadline = park::clock::deadline_after(timeout);
        match self.wait_inner(deadline, &Waiter::gil(guard)) {
            Woken::Set => Ok(true),
            Woken::TimedOut => Ok(false),
            Woken::Interrupted => Err(Interrupted),
        }
    }

    fn wait_inner(&self, deadline: Option<Instant>, waiter: &Waiter) -> Woken {
        if waiter.interrupt_pending() {
            waiter.end(true);
            return Woken::Interrupted;
        }
        if self.is_set() {
            return Woken::Set;
        }
        if deadline.is_some_and(|d| d.has_passed()) {
            return Woken::TimedOut;
        }
        if !waiter.is_gil() {
            // As `Semaphore`: the `set` may be a moment away; a Gil holder
            // does not spin.
            let mut spin = SpinWait::new();
            while spin.spin() {
                if self.is_set() {
                    return Woken::Set;
                }
            }
        }
        let key = self.key();
        waiter.begin(key);
        let interrupted = core::cell::Cell::new(false);
        let validate = || {
            if waiter.interrupt_pending() {
                interrupted.set(true);
                return false;
            }
            // A read-modify-write that both checks the flag and announces
            // us, so `set`'s `fetch_or` and this cannot miss each other.
            let prev = self.state.fetch_or(PARKED, Ordering::Acquire);
            if prev & SET != 0 {
                if prev & PARKED == 0 {
                    // Nobody is parked: take our announcement back.
                    self.state.fetch_and(!PARKED, Ordering::Relaxed);
                }
                return false;
            }
            true
        };
        let timed_out = |_key, was_last: bool| {
            if was_last {
                self.state.fetch_and(!PARKED, Ordering::Relaxed);
            }
        };
        let token = waiter.token(park::DEFAULT_PARK_TOKEN.0);
        // SAFETY: our own key; the callbacks touch only our word, and
        // `before_sleep` releases the caller's Gil, which may unpark but
        // never parks or unwinds (`Waiter::gil` checked that it is held).
        let result = unsafe {
            park::park(
                key,
                validate,
                || waiter.release(),
                timed_out,
                token,
                deadline,
            )
        };
        let woken = match result {
            ParkResult::Invalid if interrupted.get() => Woken::Interrupted,
            ParkResult::Invalid => Woken::Set,
            ParkResult::Unparked(TOKEN_SET) => Woken::Set,
            ParkResult::Unparked(_) => Woken::Interrupted,
            ParkResult::TimedOut => {
                if self.is_set() {
                    Woken::Set
                } else {
                    Woken::TimedOut
                }
            }
        };
        if matches!(result, ParkResult::Unparked(_) | ParkResult::TimedOut) {
            waiter.reacquire();
        }
        waiter.end(matches!(woken, Woken::Interrupted));
        woken
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
