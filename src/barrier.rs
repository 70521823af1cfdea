//! `Barrier`: Python's `threading.Barrier` on the park layer.
//!
//! The state (arrival count, generation, broken flag) is written only with
//! the barrier's park queue locked, so that lock is the barrier's mutex:
//! - every arrival first runs an unpark with the queue locked: if it
//!   completes the barrier it releases every parked thread of its
//!   generation in that same critical section (starting the next one), and
//!   returns without sleeping;
//! - otherwise it counts itself and parks in one critical section (the
//!   park's `validate`), retrying if another arrival came in between.
//!
//! So every parked thread belongs to the current generation, and each
//! wake-up (release, abort, reset, the break after a timeout or interrupt)
//! is decided with the queue locked and applies to all of them: the token
//! a waiter is woken with is its answer.
//!
//! An interrupt takes its waiter out of the queue without the barrier's
//! knowledge (the interrupter knows only the thread). The last arrival
//! therefore counts the threads it releases: if fewer are parked than have
//! arrived, one left interrupted, and the round breaks instead of
//! completing — whichever of the interrupt and the last arrival came first,
//! the interrupted thread's `Err(Interrupted)` never sits beside a round
//! that passed.

use crate::error::{BrokenBarrierError, Interrupted, ZeroPartiesError};
use crate::park::{self, FilterOp, Instant, ParkResult, ParkToken, UnparkResult, UnparkToken};
use crate::sync::{AtomicBool, AtomicUsize, Ordering, const_fn};
use crate::wait::{self, Plain, WaitEnd, Waiter};
use alloc::boxed::Box;
use core::cell::Cell;
use core::fmt;
use core::time::Duration;

/// The barrier was complete: pass.
const TOKEN_RELEASED: UnparkToken = UnparkToken(1);
/// The barrier was broken, aborted or reset while the thread waited.
const TOKEN_BROKEN: UnparkToken = UnparkToken(2);
/// The round's action finished: an arrival waiting at the door tries again.
const TOKEN_OPEN: UnparkToken = UnparkToken(3);
static_assertions::const_assert!(TOKEN_OPEN.0 != wait::TOKEN_INTERRUPTED.0);
static_assertions::const_assert!(TOKEN_RELEASED.0 != wait::TOKEN_INTERRUPTED.0);
static_assertions::const_assert!(TOKEN_BROKEN.0 != wait::TOKEN_INTERRUPTED.0);

/// What an arrival found, decided with the queue locked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrival {
    Broken,
    Interrupted,
    /// The last of the round: release it.
    Last,
    /// The last of the round, with an action to run first.
    LastWithAction,
    NotLast,
    /// The round's action is running: wait at the door, then try again.
    Busy,
}

/// What the park's `validate` decided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Broken,
    Interrupted,
    /// Another thread arrived since: ours would be the last arrival.
    Retry,
}

/// A barrier for a fixed number of threads: Python's `threading.Barrier`.
///
/// Each of `parties` threads calls [`wait`](Self::wait); all of them block
/// until the last one arrives, then all pass, and the barrier is ready for
/// the next round at once (it is cyclic). `wait` returns the thread's
/// arrival index, `0` for the first to arrive and `parties - 1` for the
/// last, as Python does (so exactly one thread can be picked to do
/// something after each round).
///
/// A barrier is *broken* by [`abort`](Self::abort), by a
/// [`wait_timeout`](Self::wait_timeout) that times out, and by a wait
/// through a [`GilGuard`](crate::GilGuard) that is interrupted: every waiter, and every
/// later `wait`, then gets [`BrokenBarrierError`] until
/// [`reset`](Self::reset). `reset` also breaks the round in progress, for
/// its waiters only.
///
/// **With the Gil.** [`wait_with`](Self::wait_with) and
/// [`wait_timeout_with`](Self::wait_timeout_with) release the Gil held
/// through `&mut` a [`GilGuard`](crate::GilGuard)(crate::GilGuard) while the thread waits and can be
/// interrupted by [`ThreadState::interrupt`](crate::ThreadState::interrupt);
/// they return `Result<_, Interrupted>` around what the plain form returns,
/// as [`Condition`](crate::Condition) waits through a `GilGuard` do. An
/// interrupt that ends the wait of a thread already counted breaks the
/// barrier (in Python the exception raised inside `wait` does the same).
///
/// # Example
///
/// ```
/// use gilock::Barrier;
/// use std::sync::Arc;
///
/// let barrier = Arc::new(Barrier::new(3));
/// let threads: Vec<_> = (0..3)
///     .map(|_| {
///         let barrier = Arc::clone(&barrier);
///         std::thread::spawn(move || barrier.wait().unwrap())
///     })
///     .collect();
/// let mut indices: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]);
/// ```
pub struct Barrier {
    parties: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
    broken: AtomicBool,
    /// The last arrival of the round is running `action` (changed with the
    /// queue locked): later arrivals wait at the door (`door_key`).
    releasing: AtomicBool,
    /// Waiters of the releasing round whose timeout passed while its action
    /// ran: they pass with the round (as a Python waiter would, who needs
    /// the condition's lock that the action holds), and the release counts
    /// them with those it wakes.
    passing: AtomicUsize,
    /// One more than the generation of the last round that passed: how a
    /// waiter that left the queue during the action learns how its round
    /// ended.
    last_passed: AtomicUsize,
    /// Run by the last arrival of each round before the others pass.
    action: Option<Box<dyn Fn() + Send + Sync>>,
}

static_assertions::assert_impl_all!(Barrier: Send, Sync);

impl Barrier {
    const_fn! {
        /// A barrier for `parties` threads.
        ///
        /// `const` except under `--cfg loom`.
        ///
        /// # Panics
        ///
        /// If `parties` is zero: use [`try_new`](Self::try_new) where that
        /// is the user's input (Python's `ValueError`).
        #[must_use]
        pub const fn new(parties: usize) -> Self {
            assert!(
                parties > 0,
                "a Barrier needs at least one party: use Barrier::try_new to get an error instead"
            );
            Self::unchecked(parties)
        }
    }

    const_fn! {
        /// A barrier for `parties` threads, or an error if `parties` is
        /// zero (Python's `ValueError` from `Barrier(0)`).
        ///
        /// ```
        /// use gilock::{Barrier, ZeroPartiesError};
        ///
        /// assert!(Barrier::try_new(0).is_err());
        /// assert_eq!(Barrier::try_new(2).map(|b| b.parties()), Ok(2));
        /// ```
        pub const fn try_new(parties: usize) -> Result<Self, ZeroPartiesError> {
            if parties == 0 {
                return Err(ZeroPartiesError);
            }
            Ok(Self::unchecked(parties))
        }
    }

    const_fn! {
        const fn unchecked(parties: usize) -> Self {
            Self {
                parties,
                count: AtomicUsize::new(0),
                generation: AtomicUsize::new(0),
                broken: AtomicBool::new(false),
                releasing: AtomicBool::new(false),
                passing: AtomicUsize::new(0),
                last_passed: AtomicUsize::new(0),
                action: None,
            }
        }
    }

    /// A barrier for `parties` threads whose last arrival of each round
    /// runs `action` before the others pass (Python's `Barrier(parties,
    /// action)`). If `action` panics, the round breaks: the other waiters
    /// get [`BrokenBarrierError`] and the panic continues in the thread
    /// that ran it, as Python's exception does. The action runs outside
    /// any lock of the barrier (arrivals for the next round wait until it
    /// is done) and, for a `wait_with`, with that thread's Gil held.
    ///
    /// # Errors
    ///
    /// [`ZeroPartiesError`] if `parties` is zero.
    ///
    /// ```
    /// use gilock::Barrier;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let rounds = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&rounds);
    /// let barrier = Arc::new(
    ///     Barrier::with_action(2, move || {
    ///         counter.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .unwrap(),
    /// );
    /// let other = {
    ///     let barrier = Arc::clone(&barrier);
    ///     std::thread::spawn(move || barrier.wait().unwrap())
    /// };
    /// barrier.wait().unwrap();
    /// other.join().unwrap();
    /// assert_eq!(rounds.load(Ordering::Relaxed), 1); // once per round
    /// ```
    pub fn with_action(
        parties: usize,
        action: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self, ZeroPartiesError> {
        let mut barrier = Self::try_new(parties)?;
        barrier.action = Some(Box::new(action));
        Ok(barrier)
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Where arrivals wait while the round's action runs: an address inside
    /// the barrier (it is larger than one byte), so one we own, and not
    /// `key`.
    fn door_key(&self) -> usize {
        self.key() + 1
    }

    /// The number of threads that must call `wait` for them all to pass.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// How many threads are waiting in the current round (0 while the
    /// barrier is broken). A snapshot.
    ///
    /// ```
    /// use gilock::Barrier;
    ///
    /// assert_eq!(Barrier::new(2).n_waiting(), 0);
    /// ```
    #[doc(alias = "waiting")]
    pub fn n_waiting(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken (until [`reset`](Self::reset)).
    #[doc(alias = "is_broken")]
    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Waits until all parties have called `wait`; returns this thread's
    /// arrival index (`0..parties`).
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] when the barrier is broken, or is broken,
    /// aborted or reset while the thread waits.
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        uninterrupted(self.wait_waiting(None, &Plain))
    }

    /// As [`wait`](Self::wait), but if the barrier is not complete within
    /// `timeout` it breaks (as Python's `wait(timeout)`): this thread and
    /// every other waiter get [`BrokenBarrierError`].
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait), and on timeout.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Barrier, BrokenBarrierError};
    /// use std::time::Duration;
    ///
    /// let barrier = Barrier::new(2);
    /// assert_eq!(barrier.wait_timeout(Duration::from_millis(5)), Err(BrokenBarrierError));
    /// assert!(barrier.broken());
    /// barrier.reset();
    /// assert!(!barrier.broken());
    /// # }
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrierError> {
        let deadline = park::clock::deadline_after(timeout);
        uninterrupted(self.wait_waiting(deadline, &Plain))
    }

    /// Breaks the barrier: every waiter and every later `wait` gets
    /// [`BrokenBarrierError`] until [`reset`](Self::reset) (Python's
    /// `abort()`).
    ///
    /// ```
    /// use gilock::{Barrier, BrokenBarrierError};
    ///
    /// let barrier = Barrier::new(2);
    /// barrier.abort();
    /// assert_eq!(barrier.wait(), Err(BrokenBarrierError));
    /// ```
    pub fn abort(&self) {
        self.wake_all(|| {
            self.broken.store(true, Ordering::Relaxed);
            self.count.store(0, Ordering::Relaxed);
            self.passing.store(0, Ordering::Relaxed);
        });
    }

    /// Returns the barrier to its empty, unbroken state (Python's
    /// `reset()`): threads waiting in the current round get
    /// [`BrokenBarrierError`]; later waits start a new round.
    pub fn reset(&self) {
        self.wake_all(|| {
            self.broken.store(false, Ordering::Relaxed);
            self.count.store(0, Ordering::Relaxed);
            self.passing.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// Wakes every parked thread with `TOKEN_BROKEN` after running
    /// `update`, both with the queue locked.
    fn wake_all(&self, update: impl FnOnce()) {
        let callback = |_: UnparkResult| {
            update();
            TOKEN_BROKEN
        };
        // SAFETY: our own key; the callbacks touch only our atomics.
        unsafe { park::unpark_filter(self.key(), |_| FilterOp::Unpark, callback) };
    }

    /// After this thread left a round it had arrived in without being
    /// woken (timeout, interrupt): breaks that round if it is still the
    /// current one, and wakes its waiters.
    fn break_round(&self, generation: usize) {
        let current = Cell::new(None);
        let check = || {
            if current.get().is_none() {
                current.set(Some(self.generation.load(Ordering::Relaxed) == generation));
            }
            current.get() == Some(true)
        };
        let filter = |_| {
            if check() {
                FilterOp::Unpark
            } else {
                FilterOp::Stop
            }
        };
        let callback = |_: UnparkResult| {
            if check() {
                self.broken.store(true, Ordering::Relaxed);
                self.count.store(0, Ordering::Relaxed);
            }
            TOKEN_BROKEN
        };
        // SAFETY: our own key; the callbacks touch only our atomics.
        unsafe { park::unpark_filter(self.key(), filter, callback) };
    }

    /// One arrival as `waiter` waits (see `crate::wait`).
    pub(crate) fn wait_waiting<W: Waiter>(
        &self,
        deadline: Option<Instant>,
        waiter: &W,
    ) -> Result<Result<usize, BrokenBarrierError>, Interrupted> {
        // What `run` reports when a pending interrupt ends the call before
        // the thread arrives.
        let mut result = Err(Interrupted);
        wait::run(waiter, |waiter| {
            result = self.arrive(deadline, waiter);
            if result.is_err() {
                WaitEnd::Interrupted
            } else {
                WaitEnd::Done
            }
        });
        result
    }

    fn arrive<W: Waiter>(
        &self,
        deadline: Option<Instant>,
        waiter: &W,
    ) -> Result<Result<usize, BrokenBarrierError>, Interrupted> {
        let key = self.key();
        loop {
            // First critical section: complete the barrier, or learn that
            // this arrival does not.
            let arrival: Cell<Option<Arrival>> = Cell::new(None);
            let generation = Cell::new(0);
            let decide = || {
                if arrival.get().is_none() {
                    arrival.set(Some(if self.broken.load(Ordering::Relaxed) {
                        Arrival::Broken
                    } else if waiter.interrupt_pending() {
                        Arrival::Interrupted
                    } else if self.releasing.load(Ordering::Relaxed) {
                        Arrival::Busy
                    } else if self.count.load(Ordering::Relaxed) + 1 == self.parties {
                        generation.set(self.generation.load(Ordering::Relaxed));
                        if self.action.is_some() {
                            Arrival::LastWithAction
                        } else {
                            Arrival::Last
                        }
                    } else {
                        Arrival::NotLast
                    }));
                }
                arrival.get().expect("set above")
            };
            let filter = |_: ParkToken| {
                if decide() == Arrival::Last {
                    FilterOp::Unpark
                } else {
                    FilterOp::Stop
                }
            };
            let callback = |result: UnparkResult| match decide() {
                Arrival::Last => self.finish_round(result, &arrival),
                Arrival::LastWithAction => {
                    // The round is this thread's to release once the action
                    // ran; nobody else may arrive meanwhile.
                    self.releasing.store(true, Ordering::Relaxed);
                    TOKEN_RELEASED
                }
                _ => TOKEN_RELEASED,
            };
            // SAFETY:
            // - our own key;
            // - the callbacks touch only our atomics and the waiter's
            //   interrupt flag: they neither park, unpark nor unwind, and
            //   run no user code (the action runs below, outside).
            unsafe { park::unpark_filter(key, filter, callback) };
            match decide() {
                Arrival::Broken => return Ok(Err(BrokenBarrierError)),
                Arrival::Interrupted => return Err(Interrupted),
                Arrival::Last => return Ok(Ok(self.parties - 1)),
                Arrival::LastWithAction => return Ok(self.run_action(generation.get())),
                Arrival::Busy => {
                    if self.wait_at_door(waiter) {
                        return Err(Interrupted);
                    }
                    continue;
                }
                Arrival::NotLast => {}
            }

            // Outside any callback: a waiter holding the Gil lets go of it.
            waiter.detach(key);
            // Second critical section: count ourselves and sleep.
            let refusal: Cell<Option<Refusal>> = Cell::new(None);
            let index = Cell::new(0);
            let generation = Cell::new(0);
            let validate = || {
                let why = if waiter.interrupt_pending() {
                    Refusal::Interrupted
                } else if self.broken.load(Ordering::Relaxed) {
                    Refusal::Broken
                } else {
                    let count = self.count.load(Ordering::Relaxed);
                    if count + 1 == self.parties || self.releasing.load(Ordering::Relaxed) {
                        Refusal::Retry
                    } else {
                        index.set(count);
                        generation.set(self.generation.load(Ordering::Relaxed));
                        self.count.store(count + 1, Ordering::Relaxed);
                        waiter.queued();
                        return true;
                    }
                };
                refusal.set(Some(why));
                false
            };
            // The timeout passed while the round's action ran: the round is
            // being released, and this waiter passes with it.
            let during_action = Cell::new(false);
            let timed_out = |_key, _was_last| {
                if self.releasing.load(Ordering::Relaxed) {
                    during_action.set(true);
                    self.passing.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                // Our round is still on (its end would have woken us).
                self.broken.store(true, Ordering::Relaxed);
                self.count.store(0, Ordering::Relaxed);
            };
            // SAFETY:
            // - our own key;
            // - the callbacks touch only our atomics and the waiter's
            //   interrupt flag: they neither park, unpark nor unwind, and
            //   run no user code.
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
                ParkResult::Invalid => match refusal.get() {
                    Some(Refusal::Retry) => continue,
                    Some(Refusal::Broken) => return Ok(Err(BrokenBarrierError)),
                    Some(Refusal::Interrupted) | None => return Err(Interrupted),
                },
                ParkResult::Unparked(TOKEN_RELEASED) => return Ok(Ok(index.get())),
                ParkResult::Unparked(TOKEN_BROKEN) => return Ok(Err(BrokenBarrierError)),
                ParkResult::Unparked(_) => {
                    self.break_round(generation.get());
                    return Err(Interrupted);
                }
                ParkResult::TimedOut if during_action.get() => {
                    if self.wait_at_door(waiter) {
                        return Err(Interrupted);
                    }
                    let passed = self.locked(|| {
                        self.last_passed.load(Ordering::Relaxed) == generation.get() + 1
                    });
                    return Ok(if passed {
                        Ok(index.get())
                    } else {
                        Err(BrokenBarrierError)
                    });
                }
                ParkResult::TimedOut => {
                    self.break_round(generation.get());
                    return Ok(Err(BrokenBarrierError));
                }
            }
        }
    }

    /// With the queue locked, the round's last arrival has unparked the
    /// round's waiters (`result`): it completes, or breaks if fewer were
    /// parked than had arrived (one left, interrupted). Returns the token
    /// for them and corrects `arrival` to `Broken` for the last one.
    fn finish_round(&self, result: UnparkResult, arrival: &Cell<Option<Arrival>>) -> UnparkToken {
        let arrived = self.count.load(Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        let passing = self.passing.swap(0, Ordering::Relaxed);
        if result.unparked_threads + passing == arrived {
            let generation = self.generation.fetch_add(1, Ordering::Relaxed);
            self.last_passed.store(generation + 1, Ordering::Relaxed);
            TOKEN_RELEASED
        } else {
            self.broken.store(true, Ordering::Relaxed);
            arrival.set(Some(Arrival::Broken));
            TOKEN_BROKEN
        }
    }

    /// The last arrival of the round of `generation`, with an action: runs
    /// it (outside any lock, arrivals of the next round held at the door),
    /// then releases the round — or breaks it if the action panicked (the
    /// panic goes on), or if the round was broken, aborted or reset
    /// meanwhile. Opens the door either way.
    fn run_action(&self, generation: usize) -> Result<usize, BrokenBarrierError> {
        /// Breaks the round if the action unwinds.
        struct Release<'b> {
            barrier: &'b Barrier,
            generation: usize,
            done: bool,
        }
        impl Release<'_> {
            fn finish(&mut self, completed: bool) -> Result<usize, BrokenBarrierError> {
                self.done = true;
                let barrier = self.barrier;
                let current = || {
                    barrier.generation.load(Ordering::Relaxed) == self.generation
                        && !barrier.broken.load(Ordering::Relaxed)
                };
                let arrival = Cell::new(Some(Arrival::Last));
                let filter = |_: ParkToken| {
                    if current() {
                        FilterOp::Unpark
                    } else {
                        FilterOp::Stop
                    }
                };
                let callback = |result: UnparkResult| {
                    barrier.releasing.store(false, Ordering::Relaxed);
                    if !current() {
                        // Broken, aborted or reset while the action ran: its
                        // waiters were woken then.
                        arrival.set(Some(Arrival::Broken));
                        return TOKEN_BROKEN;
                    }
                    if completed {
                        barrier.finish_round(result, &arrival)
                    } else {
                        barrier.broken.store(true, Ordering::Relaxed);
                        barrier.count.store(0, Ordering::Relaxed);
                        barrier.passing.store(0, Ordering::Relaxed);
                        arrival.set(Some(Arrival::Broken));
                        TOKEN_BROKEN
                    }
                };
                // SAFETY:
                // - our own key;
                // - the callbacks touch only the barrier's atomics: they
                //   neither park, unpark nor unwind.
                unsafe { park::unpark_filter(barrier.key(), filter, callback) };
                barrier.open_door();
                match arrival.get() {
                    Some(Arrival::Last) => Ok(barrier.parties - 1),
                    _ => Err(BrokenBarrierError),
                }
            }
        }
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if !self.done {
                    let _ = self.finish(false);
                }
            }
        }
        let mut release = Release {
            barrier: self,
            generation,
            done: false,
        };
        if let Some(action) = &self.action {
            action();
        }
        release.finish(true)
    }

    /// Waits until the round's action is done (or the waiter is
    /// interrupted: returns true).
    fn wait_at_door<W: Waiter>(&self, waiter: &W) -> bool {
        let door = self.door_key();
        waiter.detach(door);
        let interrupted = Cell::new(false);
        let validate = || {
            if waiter.interrupt_pending() {
                interrupted.set(true);
                return false;
            }
            // With the door's queue locked; `open_door` clears the flag
            // before it takes that lock, so no arrival sleeps through it.
            let closed = self.releasing.load(Ordering::Relaxed);
            if closed {
                waiter.queued();
            }
            closed
        };
        // SAFETY:
        // - the door key is an address inside the barrier;
        // - the callbacks read our flag and the waiter's interrupt flag:
        //   they neither park, unpark nor unwind.
        let result = unsafe {
            park::park(
                door,
                validate,
                || {},
                |_, _| {},
                wait::park_token(waiter, 0),
                None,
            )
        };
        interrupted.get() || result == ParkResult::Unparked(wait::TOKEN_INTERRUPTED)
    }

    /// Runs `f` with the barrier's queue locked (the lock its state is
    /// written under).
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut f = Some(f);
        let mut result = None;
        let callback = |_: UnparkResult| {
            result = f.take().map(|f| f());
            TOKEN_RELEASED
        };
        // SAFETY:
        // - our own key;
        // - the filter stops at once (nobody is woken); the callback reads
        //   our atomics: neither parks, unparks nor unwinds.
        unsafe { park::unpark_filter(self.key(), |_| FilterOp::Stop, callback) };
        result.expect("the callback runs")
    }

    /// Lets the arrivals that waited for the action try again.
    fn open_door(&self) {
        // SAFETY:
        // - the door key is an address inside the barrier;
        // - the callbacks do nothing that parks or unwinds.
        unsafe { park::unpark_filter(self.door_key(), |_| FilterOp::Unpark, |_| TOKEN_OPEN) };
    }
}

fn uninterrupted<R>(result: Result<R, Interrupted>) -> R {
    match result {
        Ok(value) => value,
        Err(Interrupted) => unreachable!("only waits through a GilGuard are interrupted"),
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .field("has_action", &self.action.is_some())
            .finish()
    }
}
