//! `Condition` (Python's `threading.Condition`, and a condition variable for
//! every guard of the crate) and `RawCondition` (`lock_api::RawCondvar`).
//!
//! # The algorithm (one implementation for every lock and guard)
//!
//! Waiters park in the park layer's FIFO queue keyed by the condition's own
//! address. A wait:
//! 1. in `validate` (queue locked): checks that the lock is held and may be
//!    released by this wait (for a `Lock`, which any thread may release,
//!    it *claims* the release there, atomically), and counts itself in
//!    `waiters`;
//! 2. in `before_sleep` (queued, queue unlocked): releases the lock — every
//!    level of an `RLock`. A notifier that saw any change made after this
//!    release therefore finds the waiter in the queue: no lost wakeup;
//! 3. leaves the queue only by a notify (which hands it `TOKEN_NOTIFIED`),
//!    an interrupt (`TOKEN_INTERRUPTED`, `GilGuard` waits) or its deadline
//!    (`timed_out` runs, queue locked). The park layer guarantees exactly
//!    one of these, so a timed-out waiter is never counted as notified and
//!    nothing wakes spuriously;
//! 4. re-acquires the lock the ordinary way and restores every level.
//!
//! `lock_api`'s `notify_all` (the `parking_lot::Condvar` drop-in) does one
//! thing more when every queued waiter came through `RawCondvar` with the
//! same `RawFairMutex` (recorded in `mutex`, with the queue locked): it
//! wakes the oldest and *requeues* the rest onto the mutex's queue (all of
//! them if the mutex is locked), as parking_lot does, so they wake one by
//! one as the mutex is released instead of all at once to queue on it. A
//! requeued waiter handed the mutex by its unlock (`TOKEN_HANDOFF`) owns
//! it; one whose deadline passes on the mutex's queue was notified all the
//! same. A `RawCondvar` wait with a second mutex panics (parking_lot's
//! promise), while `Condition` waits may use any guards at once (`MIXED`:
//! no requeueing then).
//!
//! `waiters` is an upper bound of the threads in the queue, changed only
//! with the queue locked (or by an interrupted waiter itself, after it left
//! the queue). `notify*` read it first and skip the queue when it is zero:
//! a waiter counted itself before releasing the lock, so any notifier
//! ordered after that release sees the count.

use crate::error::{Interrupted, ReleaseError};
use crate::fair_mutex::{self, FairMutexGuard, RawFairMutex};
use crate::lock::{Lock, LockGuard};
use crate::park::{
    self, FilterOp, Instant, ParkResult, ParkToken, RequeueOp, UnparkResult, UnparkToken,
};
use crate::rlock::{RLock, RLockGuard};
use crate::sync::{AtomicUsize, Ordering, StaticAtomicUsize, const_fn};
use crate::wait::{self, WaitEnd, Waiter};
use core::cell::Cell;
use core::fmt;
use core::time::Duration;

/// What a notify hands to the threads it wakes.
const TOKEN_NOTIFIED: UnparkToken = UnparkToken(0);
static_assertions::const_assert!(TOKEN_NOTIFIED.0 != wait::TOKEN_INTERRUPTED.0);

static_assertions::const_assert!(TOKEN_NOTIFIED.0 != fair_mutex::TOKEN_HANDOFF.0);

/// `RawCondition::mutex` when no waiter is queued.
const NO_MUTEX: usize = 0;
/// `RawCondition::mutex` when a waiter that is not a `lock_api` condvar
/// wait (a `Condition` wait with any guard) may be queued: no requeueing,
/// no check of the mutex.
const MIXED: usize = 1;

/// Why `validate` refused to queue the waiter.
#[derive(Clone, Copy)]
enum Refusal {
    Interrupted,
    NotHeld(ReleaseError),
    /// A `lock_api` condvar wait with a mutex other than the one the queued
    /// waiters use.
    SecondMutex,
}

/// The raw condition variable behind [`Condition`]: implements
/// [`lock_api::RawCondvar`] (and, with `std`, [`lock_api::RawCondvarTimed`])
/// for [`RawFairMutex`], so `lock_api::Condvar<RawCondition>` is a drop-in
/// for `parking_lot::Condvar` with a [`FairMutex`](crate::FairMutex).
///
/// It guarantees no spurious wakeups, so the notify methods return exact
/// counts; a waiter that timed out is never counted. As with parking_lot:
/// `notify_all` moves the waiters onto the mutex's queue instead of waking
/// them all (a requeued waiter counts as notified), and waiting with two
/// different mutexes at the same time panics; one after the other is fine.
/// (`Condition`, built on it, waits with any guards at once.)
///
/// # Example
///
/// ```
/// # #[cfg(feature = "std")] {
/// use gilock::{FairMutex, RawCondition};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// type Condvar = lock_api::Condvar<RawCondition>;
///
/// let pair = Arc::new((FairMutex::new(false), Condvar::new()));
/// let pair2 = Arc::clone(&pair);
/// let t = std::thread::spawn(move || {
///     let (ready, cond) = &*pair2;
///     *ready.lock() = true;
///     cond.notify_one();
/// });
/// let (ready, cond) = &*pair;
/// let mut guard = ready.lock();
/// cond.wait_while(&mut guard, |ready| !*ready);
/// assert!(*guard);
/// // Nobody notifies now: the wait times out.
/// assert!(cond.wait_for(&mut guard, Duration::from_millis(5)).timed_out());
/// drop(guard);
/// t.join().unwrap();
/// # }
/// ```
pub struct RawCondition {
    /// Under loom the counter must be created inside the model, but
    /// `RawCondvar::INIT` is a constant: `INIT` creates it at first use in
    /// each execution, [`RawCondition::new`] (and so [`Condition::new`]) at
    /// once (see `sync::StaticAtomicUsize`).
    waiters: StaticAtomicUsize,
    /// The `RawFairMutex` (its address) that every queued waiter waits with
    /// when they all came through `lock_api`'s `Condvar` (`RawCondvar`):
    /// then `notify_all` requeues them onto it, and a wait with another
    /// mutex panics, as `parking_lot::Condvar` does. `NO_MUTEX` when the
    /// queue is empty, `MIXED` once a `Condition` wait (any guard) may be
    /// in it. Changed with the queue locked.
    mutex: StaticAtomicUsize,
}

static_assertions::assert_impl_all!(RawCondition: Send, Sync);

impl RawCondition {
    const_fn! {
        /// A condition variable with no waiters.
        ///
        /// `const` except under `--cfg loom`, whose atomics cannot be built
        /// in constants.
        #[must_use]
        pub const fn new() -> Self {
            Self {
                waiters: StaticAtomicUsize::new(0),
                mutex: StaticAtomicUsize::new(NO_MUTEX),
            }
        }
    }

    #[inline]
    fn waiters(&self) -> &AtomicUsize {
        self.waiters.get()
    }

    #[inline]
    fn mutex(&self) -> &AtomicUsize {
        self.mutex.get()
    }

    #[inline]
    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// The one wait algorithm (see the module docs), run through the
    /// attached-wait protocol of `crate::wait`: `Done` means notified.
    /// Unless it returns an error, or `Interrupted` before queueing, the
    /// lock was released and is held again (and so is the Gil of an
    /// attached waiter).
    ///
    /// # Errors
    /// The lock was not the caller's to wait on; nothing was released.
    pub(crate) fn wait_on<T: WaitTarget>(
        &self,
        target: &T,
        deadline: Option<Instant>,
    ) -> Result<WaitEnd, ReleaseError> {
        // Checked before the thread lets go of anything (a Gil), and again
        // with the queue locked, where it counts.
        target.check()?;
        let waiter = target.waiter();
        if waiter.interrupted_before() {
            waiter.reattach(WaitEnd::Interrupted);
            return Ok(WaitEnd::Interrupted);
        }
        let key = self.key();
        // Outside any park callback: an attached waiter lets go of its Gil
        // here (or, when the Gil is the lock, tells its hook it will).
        waiter.detach(key);
        let waiters = self.waiters();
        let mutex = self.mutex();
        let saved: Cell<Option<T::Saved>> = Cell::new(None);
        let refusal: Cell<Option<Refusal>> = Cell::new(None);
        // Moved onto the mutex's queue by `notify_all` (then a timeout is
        // not one: the waiter was notified).
        let requeued = Cell::new(false);
        let validate = || {
            if waiter.interrupt_pending() {
                refusal.set(Some(Refusal::Interrupted));
                return false;
            }
            let recorded = mutex.load(Ordering::Relaxed);
            let record = match target.tracked_mutex() {
                Some(mine) if recorded == NO_MUTEX => mine,
                Some(mine) if recorded == mine || recorded == MIXED => recorded,
                Some(_) => {
                    refusal.set(Some(Refusal::SecondMutex));
                    return false;
                }
                None => MIXED,
            };
            match target.claim() {
                Ok(state) => {
                    saved.set(Some(state));
                    waiters.fetch_add(1, Ordering::Relaxed);
                    if record != recorded {
                        mutex.store(record, Ordering::Relaxed);
                    }
                    waiter.queued();
                    true
                }
                Err(error) => {
                    refusal.set(Some(Refusal::NotHeld(error)));
                    false
                }
            }
        };
        let before_sleep = || {
            let state = saved.take();
            if let Some(state) = &state {
                target.release(state);
            }
            saved.set(state);
        };
        let timed_out = |left: usize, was_last: bool| {
            if left != key {
                // Timed out on the mutex's queue after `notify_all` moved it
                // there: it was notified (and counted then).
                requeued.set(true);
                return;
            }
            waiters.fetch_sub(1, Ordering::Relaxed);
            if was_last {
                mutex.store(NO_MUTEX, Ordering::Relaxed);
            }
        };
        // SAFETY:
        // - the key is this condition's own address;
        // - `validate` and `timed_out` only touch atomics and the lock's
        //   state, and neither park, unpark nor unwind;
        // - `before_sleep` releases the lock (or the Gil, when it is the
        //   lock), which may unpark but never parks, unwinds or runs user
        //   code (event hooks were told in `detach`, above).
        let result = unsafe {
            park::park(
                key,
                validate,
                before_sleep,
                timed_out,
                wait::park_token(waiter, 0),
                deadline,
            )
        };
        let end = match result {
            ParkResult::Unparked(wait::TOKEN_INTERRUPTED) => {
                // The interrupter does not know our counter.
                waiters.fetch_sub(1, Ordering::Relaxed);
                WaitEnd::Interrupted
            }
            ParkResult::Unparked(fair_mutex::TOKEN_HANDOFF) => {
                // Requeued onto the mutex by `notify_all`, and then handed
                // the mutex by its unlock: it is ours already.
                let state = saved.take().expect("a queued waiter has claimed the lock");
                drop(state);
                waiter.reattach(WaitEnd::Done);
                return Ok(WaitEnd::Done);
            }
            ParkResult::Unparked(_) => WaitEnd::Done,
            ParkResult::TimedOut if requeued.get() => WaitEnd::Done,
            ParkResult::TimedOut => WaitEnd::TimedOut,
            ParkResult::Invalid => {
                let refused = refusal.get().expect("validate refused without a reason");
                let end = match refused {
                    Refusal::Interrupted => WaitEnd::Interrupted,
                    Refusal::NotHeld(_) | Refusal::SecondMutex => WaitEnd::Done,
                };
                waiter.reattach(end);
                return match refused {
                    Refusal::Interrupted => Ok(WaitEnd::Interrupted),
                    Refusal::NotHeld(error) => Err(error),
                    // Outside the park, with the mutex still held (the
                    // guard's unwinding unlocks it), as parking_lot does.
                    // parking_lot's words first: code may look for them.
                    Refusal::SecondMutex => panic!(
                        "attempted to use a condition variable with more than one mutex \
                         (gilock::Condvar, lock_api::Condvar<RawCondition>: two different \
                         mutexes at once); use one mutex per condition variable, or \
                         gilock::Condition, which waits with any guard"
                    ),
                };
            }
        };
        // The lock first, while the Gil is still let go of (its holder may
        // need the Gil), then the Gil.
        let state = saved.take().expect("a queued waiter has claimed the lock");
        target.reacquire(state);
        waiter.reattach(end);
        Ok(end)
    }

    /// Wakes up to `n` of the oldest waiters; returns how many.
    fn notify_n(&self, n: usize) -> usize {
        let waiters = self.waiters();
        if n == 0 || waiters.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut left = n;
        let filter = |_token: ParkToken| {
            if left == 0 {
                FilterOp::Stop
            } else {
                left -= 1;
                FilterOp::Unpark
            }
        };
        let callback = |result: UnparkResult| self.notified(result);
        // SAFETY:
        // - our own key;
        // - the callbacks only touch our counters: they neither park,
        //   unpark nor unwind.
        unsafe { park::unpark_filter(self.key(), filter, callback) }.unparked_threads
    }

    /// With the queue locked, after an unpark: counts the woken out, and
    /// forgets the mutex once nobody waits.
    fn notified(&self, result: UnparkResult) -> UnparkToken {
        let gone = result.unparked_threads + result.requeued_threads;
        if gone != 0 {
            self.waiters().fetch_sub(gone, Ordering::Relaxed);
        }
        if !result.have_more_threads {
            self.mutex().store(NO_MUTEX, Ordering::Relaxed);
        }
        TOKEN_NOTIFIED
    }

    /// `lock_api`'s `notify_all`: when every waiter waits with one
    /// `RawFairMutex` (they all came through `RawCondvar`), wakes the oldest
    /// and moves the rest onto the mutex's queue (all of them if the mutex
    /// is locked), as `parking_lot::Condvar` does, instead of waking a herd
    /// that would only queue on the mutex. Otherwise wakes them all.
    fn notify_all_requeue(&self) -> usize {
        if self.waiters().load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let recorded = self.mutex().load(Ordering::Relaxed);
        if recorded == NO_MUTEX || recorded == MIXED {
            return self.notify_n(usize::MAX);
        }
        let aborted = Cell::new(false);
        let validate = || {
            if self.mutex().load(Ordering::Relaxed) != recorded {
                // Everyone left since, or other waits joined: start over.
                aborted.set(true);
                return RequeueOp::Abort;
            }
            // SAFETY:
            // - `recorded` is the address of the `RawFairMutex` that the
            //   queued waiters wait with (it is reset, with the queue locked,
            //   once the queue is empty, and the queue is locked now);
            // - each of those waiters borrows that mutex for its whole wait,
            //   so the mutex is alive.
            let target = unsafe { &*(recorded as *const RawFairMutex) };
            if target.mark_parked_if_locked() {
                RequeueOp::RequeueAll
            } else {
                RequeueOp::UnparkOneRequeueRest
            }
        };
        let callback = |op: RequeueOp, result: UnparkResult| {
            if op == RequeueOp::UnparkOneRequeueRest && result.requeued_threads != 0 {
                // SAFETY: as in `validate` (both queues are still locked).
                unsafe { &*(recorded as *const RawFairMutex) }.mark_parked();
            }
            self.notified(result)
        };
        // SAFETY: as in `validate`, the mutex key belongs to a live
        // `RawFairMutex`, whose queue holds its own waiters and, from now
        // on, ours: they park with `TOKEN_NOTIFIED`-compatible tokens (plain
        // waiters' 0, "patient") and read its handoff token; the callbacks
        // touch only the two primitives' words and neither park, unpark nor
        // unwind.
        let result = unsafe {
            let to = (*(recorded as *const RawFairMutex)).park_key();
            park::unpark_requeue(self.key(), to, validate, callback)
        };
        if aborted.get() {
            return self.notify_n(usize::MAX);
        }
        result.unparked_threads + result.requeued_threads
    }

    #[inline]
    fn notify_one_inner(&self) -> bool {
        let waiters = self.waiters();
        if waiters.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let callback = |result: UnparkResult| self.notified(result);
        // SAFETY:
        // - our own key;
        // - the callback only touches our counters: it neither parks,
        //   unparks nor unwinds.
        unsafe { park::unpark_one(self.key(), callback) }.unparked_threads != 0
    }
}

impl Default for RawCondition {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RawCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawCondition")
            .field("waiters", &self.waiters().load(Ordering::Relaxed))
            .finish()
    }
}

// SAFETY: `wait` queues the thread (in `validate`, queue locked) before it
// unlocks the mutex (in `before_sleep`), so a notify ordered after the
// unlock finds it; it re-locks before returning. Nothing between the unlock
// and the re-lock can unwind, and the guard state (`GuardSend`) carries no
// data, so it stays valid. Wakeups are never spurious, so the counts of the
// notify methods are exact.
unsafe impl lock_api::RawCondvar for RawCondition {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self {
        waiters: StaticAtomicUsize::zero(),
        mutex: StaticAtomicUsize::zero(),
    };

    type RawMutex = RawFairMutex;

    #[inline]
    unsafe fn wait(&self, mutex: &RawFairMutex, _guard: &mut lock_api::GuardSend) {
        // A held mutex cannot be refused, and a plain waiter is never
        // interrupted: the result says only "notified".
        let target = sealed::RawTarget {
            mutex,
            tracked: true,
        };
        let _ = self.wait_on(&target, None);
    }

    #[inline]
    fn notify_one(&self) -> bool {
        self.notify_one_inner()
    }

    #[inline]
    fn notify_all(&self) -> usize {
        self.notify_all_requeue()
    }
}

#[cfg(feature = "std")]
// SAFETY: as `RawCondvar`; a timed wait only adds a way to leave the queue
// (the deadline), after which the mutex is re-locked the same way.
unsafe impl lock_api::RawCondvarTimed for RawCondition {
    fn checked_duration_to_instant(timeout: &Duration) -> Option<std::time::Instant> {
        // On the model clock under loom (`from_std` in `wait_until` reads it
        // back), on the real one otherwise.
        Instant::std_deadline_after(*timeout)
    }

    unsafe fn wait_until(
        &self,
        mutex: &RawFairMutex,
        _guard: &mut lock_api::GuardSend,
        timeout: &std::time::Instant,
    ) -> bool {
        let deadline = Instant::from_std(*timeout);
        let target = sealed::RawTarget {
            mutex,
            tracked: true,
        };
        self.wait_on(&target, Some(deadline)) == Ok(WaitEnd::TimedOut)
    }
}

/// A condition variable with the semantics of Python's
/// `threading.Condition`, that waits with any lock of this crate held
/// through its guard.
///
/// - Scoped: [`wait`](Self::wait), [`wait_timeout`](Self::wait_timeout),
///   [`wait_while`](Self::wait_while) and
///   [`wait_timeout_while`](Self::wait_timeout_while) take `&mut` a
///   [`FairMutexGuard`], [`LockGuard`], [`RLockGuard`] or [`GilGuard`](crate::GilGuard)
///   (any [`WaitGuard`]); waits through a `GilGuard` release the Gil and
///   can be interrupted (they return `Result<_, Interrupted>`). The lock is released while the thread waits and held
///   again when the call returns, however it ends.
/// - Unscoped, for interpreters that implement `threading.Condition` over
///   acquire/release: [`wait_on_lock`](Self::wait_on_lock),
///   [`wait_on_rlock`](Self::wait_on_rlock) and their `_timeout` forms,
///   which return an error, as Python's `RuntimeError`, when the calling
///   thread does not hold the lock.
///
/// Waiting with an [`RLock`] held N levels deep releases all N levels and
/// restores exactly N. Notifications wake the oldest waiters first, return
/// exact counts, and need no lock held (as std's `Condvar`). There are no
/// spurious wakeups: a wait returns early only because it was notified.
///
/// # A condition over a lock that is not this crate's
///
/// Python's `threading.Condition(lock)` takes any lock: one the user
/// wrote, or one from another library. `Condition` waits only with this
/// crate's locks, and the crate offers no trait through which a foreign
/// lock could join in: a `Condition` releases its lock inside the park
/// layer's `before_sleep` callback, with the park queue locked (so that no
/// notify can fall between the release and the sleep), and no user code
/// may run there. A user's `release` may park, take locks, run an
/// interpreter's bytecode or unwind, each of which would deadlock or
/// corrupt the queue from inside the callback.
///
/// An interpreter implements `threading.Condition(other_lock)` as CPython
/// does, with nothing but [`Lock`]: the condition keeps a queue of
/// per-waiter `Lock`s. To wait, a thread that holds `other_lock` creates a
/// `Lock`, takes it, appends it to the queue, releases `other_lock` with
/// the lock's own `release` (any code may run now), and then takes its own
/// `Lock` a second time with [`Lock::acquire_with`] (or
/// [`Lock::acquire_timeout_with`]), which lets go of the Gil and ends on
/// an interrupt; whatever happened, it takes `other_lock` back with the
/// lock's own `acquire`, and removes its `Lock` from the queue if it is
/// still there. `notify(n)` pops the `n` oldest `Lock`s and releases them.
/// No wake-up is lost: a waiter is queued before `other_lock` is released,
/// and a `Lock` released before its waiter sleeps stays released.
/// `tests/foreign_lock_condition.rs` in the crate's package is that
/// implementation, with a lock built on `std::sync`, and tests of
/// notify, timeout and interrupt.
///
/// # Example
///
/// ```
/// use gilock::{Condition, FairMutex};
/// use std::sync::Arc;
///
/// let state = Arc::new((FairMutex::new(0u32), Condition::new()));
/// let worker = {
///     let state = Arc::clone(&state);
///     std::thread::spawn(move || {
///         let (count, cond) = &*state;
///         for _ in 0..3 {
///             *count.lock() += 1;
///             cond.notify_all();
///         }
///     })
/// };
/// let (count, cond) = &*state;
/// let mut guard = count.lock();
/// cond.wait_while(&mut guard, |count| *count < 3);
/// assert_eq!(*guard, 3);
/// drop(guard);
/// worker.join().unwrap();
/// ```
pub struct Condition {
    raw: RawCondition,
}

static_assertions::assert_impl_all!(Condition: Send, Sync);

impl Condition {
    const_fn! {
        /// A condition with no waiters.
        ///
        /// `const` except under `--cfg loom`, whose atomics cannot be built
        /// in constants.
        #[must_use]
        pub const fn new() -> Self {
            Self {
                raw: RawCondition::new(),
            }
        }
    }

    /// Releases the lock held through `guard`, waits until notified, and
    /// takes the lock back.
    ///
    /// Returns `()`, or for a `GilGuard` `Result<(), Interrupted>`.
    ///
    /// # Panics
    ///
    /// If the lock behind the guard is not held any more because it was
    /// released by hand ([`Lock::release`] or [`RLock::release`]) while the
    /// guard lived; nothing is released then.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Condition, RLock};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let shared = Arc::new((RLock::new(), Condition::new(), AtomicBool::new(false)));
    /// let shared2 = Arc::clone(&shared);
    /// let t = std::thread::spawn(move || {
    ///     let (lock, cond, flag) = &*shared2;
    ///     let _guard = lock.lock();
    ///     flag.store(true, Ordering::Relaxed);
    ///     cond.notify_one();
    /// });
    /// let (lock, cond, flag) = &*shared;
    /// let _outer = lock.lock();
    /// let mut inner = lock.lock();
    /// while !flag.load(Ordering::Relaxed) {
    ///     cond.wait(&mut inner); // releases both levels while waiting
    /// }
    /// assert_eq!(lock.recursion_count(), 2);
    /// # drop(inner); drop(_outer);
    /// # t.join().unwrap();
    /// # }
    /// ```
    pub fn wait<G: WaitGuard>(&self, guard: &mut G) -> G::Output<()> {
        G::finish_wait(self.guard_wait(guard, None).map(|_| ()), Private(()))
    }

    /// As [`wait`](Self::wait), but gives up after `timeout`; returns true
    /// when notified, false when the timeout passed (never earlier). The
    /// lock is held again in both cases. A zero timeout still releases the
    /// lock and takes it back, letting waiting threads in; a timeout too
    /// large to represent waits without end.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Condition, Lock};
    /// use std::time::{Duration, Instant};
    ///
    /// let lock = Lock::new();
    /// let cond = Condition::new();
    /// let mut guard = lock.lock();
    /// let start = Instant::now();
    /// assert!(!cond.wait_timeout(&mut guard, Duration::from_millis(10)));
    /// assert!(start.elapsed() >= Duration::from_millis(10));
    /// assert!(lock.locked());
    /// # }
    /// ```
    #[must_use = "if false, the wait timed out"]
    #[doc(alias = "wait_for")]
    pub fn wait_timeout<G: WaitGuard>(&self, guard: &mut G, timeout: Duration) -> G::Output<bool> {
        G::finish_wait(
            self.guard_wait(guard, park::clock::deadline_after(timeout)),
            Private(()),
        )
    }

    /// Waits *while* `condition` returns true, as std's
    /// `Condvar::wait_while`: checks it first with the lock held, then
    /// after every wakeup. `condition` gets the guarded data (`&mut ()` for
    /// data-less locks).
    ///
    /// ```
    /// use gilock::{Condition, FairMutex};
    ///
    /// let queue = FairMutex::new(vec![1]);
    /// let cond = Condition::new();
    /// let mut guard = queue.lock();
    /// // Returns at once: the queue is not empty.
    /// cond.wait_while(&mut guard, |queue| queue.is_empty());
    /// assert_eq!(guard.pop(), Some(1));
    /// ```
    pub fn wait_while<G, F>(&self, guard: &mut G, mut condition: F) -> G::Output<()>
    where
        G: WaitGuard,
        F: FnMut(&mut G::Data) -> bool,
    {
        loop {
            if !condition(guard.data_for_wait(Private(()))) {
                return G::finish_wait(Ok(()), Private(()));
            }
            if let Err(interrupted) = self.guard_wait(guard, None) {
                return G::finish_wait(Err(interrupted), Private(()));
            }
        }
    }

    /// As [`wait_while`](Self::wait_while), but gives up after `timeout`:
    /// returns true when `condition` turned false, false when the timeout
    /// passed with it still true. Even after a zero or past timeout the
    /// thread waits once (releasing the lock and taking it back) and checks
    /// `condition` once more.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Condition, RLock};
    /// use std::time::Duration;
    ///
    /// let lock = RLock::new();
    /// let cond = Condition::new();
    /// let mut guard = lock.lock();
    /// let mut checks = 0;
    /// let ok = cond.wait_timeout_while(&mut guard, |_| { checks += 1; true }, Duration::from_millis(5));
    /// assert!(!ok);
    /// assert!(checks >= 2);
    /// # }
    /// ```
    #[must_use = "if false, the wait timed out with the condition still true"]
    pub fn wait_timeout_while<G, F>(
        &self,
        guard: &mut G,
        mut condition: F,
        timeout: Duration,
    ) -> G::Output<bool>
    where
        G: WaitGuard,
        F: FnMut(&mut G::Data) -> bool,
    {
        let deadline = park::clock::deadline_after(timeout);
        let mut timed_out = false;
        loop {
            if !condition(guard.data_for_wait(Private(()))) {
                return G::finish_wait(Ok(true), Private(()));
            }
            if timed_out {
                return G::finish_wait(Ok(false), Private(()));
            }
            // Even a deadline that has passed waits once (releasing the lock
            // and taking it back), so the condition gets one more look
            // after the timeout, as parking_lot's `wait_while_until` does.
            match self.guard_wait(guard, deadline) {
                Ok(notified) => timed_out = !notified,
                Err(interrupted) => return G::finish_wait(Err(interrupted), Private(())),
            }
        }
    }

    /// The unscoped form of [`wait`](Self::wait) for a [`Lock`] held
    /// through [`Lock::acquire`]: releases it, waits until notified, and
    /// acquires it again.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotLocked`] when the lock is not locked (Python's
    /// "cannot wait on un-acquired lock"); nothing happens then.
    ///
    /// ```
    /// use gilock::{Condition, Lock, ReleaseError};
    ///
    /// let cond = Condition::new();
    /// assert_eq!(cond.wait_on_lock(&Lock::new()), Err(ReleaseError::NotLocked));
    /// ```
    pub fn wait_on_lock(&self, lock: &Lock) -> Result<(), ReleaseError> {
        self.wait_unscoped(&sealed::LockTarget(lock), None)
            .map(drop)
    }

    /// As [`wait_on_lock`](Self::wait_on_lock), giving up after `timeout`:
    /// `Ok(true)` when notified, `Ok(false)` when the timeout passed. The
    /// lock is held again in both cases.
    ///
    /// # Errors
    ///
    /// As [`wait_on_lock`](Self::wait_on_lock).
    pub fn wait_on_lock_timeout(
        &self,
        lock: &Lock,
        timeout: Duration,
    ) -> Result<bool, ReleaseError> {
        let deadline = park::clock::deadline_after(timeout);
        self.wait_unscoped(&sealed::LockTarget(lock), deadline)
    }

    /// The unscoped form of [`wait`](Self::wait) for an [`RLock`] held
    /// through [`RLock::acquire`]: releases every level the calling thread
    /// holds, waits until notified, and restores exactly that many levels.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotOwner`] when another thread holds the lock,
    /// [`ReleaseError::NotLocked`] when no thread does (Python's "cannot
    /// wait on un-acquired lock"); nothing happens then.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Condition, RLock};
    /// use std::time::Duration;
    ///
    /// let lock = RLock::new();
    /// let cond = Condition::new();
    /// lock.acquire();
    /// lock.acquire();
    /// assert_eq!(cond.wait_on_rlock_timeout(&lock, Duration::from_millis(1)), Ok(false));
    /// assert_eq!(lock.recursion_count(), 2);
    /// # }
    /// ```
    pub fn wait_on_rlock(&self, lock: &RLock) -> Result<(), ReleaseError> {
        self.wait_unscoped(&sealed::RLockTarget::new(lock), None)
            .map(drop)
    }

    /// As [`wait_on_rlock`](Self::wait_on_rlock), giving up after
    /// `timeout`: `Ok(true)` when notified, `Ok(false)` when the timeout
    /// passed. Every level is restored in both cases.
    ///
    /// # Errors
    ///
    /// As [`wait_on_rlock`](Self::wait_on_rlock).
    pub fn wait_on_rlock_timeout(
        &self,
        lock: &RLock,
        timeout: Duration,
    ) -> Result<bool, ReleaseError> {
        let deadline = park::clock::deadline_after(timeout);
        self.wait_unscoped(&sealed::RLockTarget::new(lock), deadline)
    }

    /// The unscoped waits: `Ok(notified)`, or the lock was not the caller's
    /// to wait on.
    fn wait_unscoped<T: WaitTarget>(
        &self,
        target: &T,
        deadline: Option<Instant>,
    ) -> Result<bool, ReleaseError> {
        self.raw
            .wait_on(target, deadline)
            .map(|end| end == WaitEnd::Done)
    }

    /// Wakes the `n` oldest waiters, as [`notify`](Self::notify), but only
    /// if the calling thread may: Python's `notify(n)` on a condition over
    /// `lock`, which raises `RuntimeError` ("cannot notify on un-acquired
    /// lock") unless the lock is held. A [`Lock`] has no owner, so "held"
    /// means locked, by any thread. `n == usize::MAX` is `notify_all`.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotLocked`] when `lock` is not locked; nobody is
    /// woken then.
    ///
    /// ```
    /// use gilock::{Condition, Lock, ReleaseError};
    ///
    /// let lock = Lock::new();
    /// let cond = Condition::new();
    /// assert_eq!(cond.notify_on_lock(&lock, 1), Err(ReleaseError::NotLocked));
    /// lock.acquire();
    /// assert_eq!(cond.notify_on_lock(&lock, usize::MAX), Ok(0));
    /// ```
    pub fn notify_on_lock(&self, lock: &Lock, n: usize) -> Result<usize, ReleaseError> {
        if !lock.locked() {
            return Err(ReleaseError::NotLocked);
        }
        Ok(self.notify(n))
    }

    /// As [`notify_on_lock`](Self::notify_on_lock) for a condition over an
    /// [`RLock`]: the calling thread must own it.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotLocked`] when no thread holds `lock`,
    /// [`ReleaseError::NotOwner`] when another thread does; nobody is woken
    /// then.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Condition, RLock, ReleaseError};
    ///
    /// let lock = RLock::new();
    /// let cond = Condition::new();
    /// assert_eq!(cond.notify_on_rlock(&lock, 1), Err(ReleaseError::NotLocked));
    /// let _guard = lock.lock();
    /// assert_eq!(cond.notify_on_rlock(&lock, 1), Ok(0));
    /// # }
    /// ```
    pub fn notify_on_rlock(&self, lock: &RLock, n: usize) -> Result<usize, ReleaseError> {
        lock.check_owned()?;
        Ok(self.notify(n))
    }

    /// Wakes the oldest waiter; returns whether there was one.
    ///
    /// ```
    /// use gilock::Condition;
    ///
    /// assert!(!Condition::new().notify_one());
    /// ```
    #[inline]
    pub fn notify_one(&self) -> bool {
        self.raw.notify_one_inner()
    }

    /// Wakes the `n` oldest waiters (all of them if fewer wait); returns
    /// how many were woken.
    #[inline]
    pub fn notify(&self, n: usize) -> usize {
        self.raw.notify_n(n)
    }

    /// Wakes every waiter; returns how many were woken.
    #[doc(alias = "notifyAll")]
    #[inline]
    pub fn notify_all(&self) -> usize {
        self.raw.notify_n(usize::MAX)
    }

    /// The raw condition variable, for use with `lock_api`'s API.
    pub fn raw(&self) -> &RawCondition {
        &self.raw
    }

    /// One wait through a guard: true when notified, false on timeout.
    fn guard_wait<G: WaitGuard>(
        &self,
        guard: &mut G,
        deadline: Option<Instant>,
    ) -> Result<bool, Interrupted> {
        let target = guard.target(Private(()));
        match self.raw.wait_on(&target, deadline) {
            Ok(WaitEnd::Done) => Ok(true),
            Ok(WaitEnd::TimedOut) => Ok(false),
            Ok(WaitEnd::Interrupted) => Err(Interrupted),
            Err(error) => panic!(
                "Condition wait through a guard whose lock the calling thread no longer holds \
                 ({error}): it was released by hand while the guard was alive"
            ),
        }
    }
}

impl Default for Condition {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("waiters", &self.raw.waiters().load(Ordering::Relaxed))
            .finish()
    }
}

/// A guard that [`Condition`] can wait with: [`FairMutexGuard`],
/// [`LockGuard`], [`RLockGuard`] and [`GilGuard`](crate::GilGuard). Sealed: the crate
/// implements it for its own guards only.
pub trait WaitGuard: sealed::Sealed {
    /// What the predicate of [`Condition::wait_while`] sees: the guarded
    /// data for a [`FairMutexGuard`], `()` for data-less locks.
    type Data: ?Sized;
    /// What a wait returns: `R`, or `Result<R, Interrupted>` for guards
    /// whose waits can be interrupted.
    type Output<R>;

    /// The data the predicate of `wait_while` sees (crate-internal).
    #[doc(hidden)]
    fn data_for_wait(&mut self, _: Private) -> &mut Self::Data;

    /// Turns a wait's result into [`Output`](Self::Output) (crate-internal).
    #[doc(hidden)]
    fn finish_wait<R>(result: Result<R, Interrupted>, _: Private) -> Self::Output<R>;
}

pub(crate) use sealed::{Private, WaitTarget};

pub(crate) mod sealed {
    use super::*;
    use crate::thread_id;
    use crate::wait::Plain;

    /// Proof that a call comes from inside the crate.
    pub struct Private(pub(crate) ());

    /// The crate-internal side of [`WaitGuard`](super::WaitGuard).
    pub trait Sealed {
        /// The lock behind the guard, as a wait sees it.
        type Target<'a>: WaitTarget
        where
            Self: 'a;

        /// The lock behind the guard.
        fn target(&mut self, _: Private) -> Self::Target<'_>;
    }

    /// What a condition wait needs from a lock, and from the thread that
    /// waits (see `crate::wait`).
    pub trait WaitTarget {
        /// What the wait must restore (an `RLock`'s recursion count).
        type Saved;
        /// How the thread waits: plainly, or holding the Gil.
        type Waiter: Waiter;

        /// The thread's side of the wait.
        fn waiter(&self) -> &Self::Waiter;

        /// Before anything else, outside any park callback: whether the
        /// calling thread may wait on the lock, so that a misuse lets go of
        /// nothing (not even a Gil). `claim` checks again where it counts.
        fn check(&self) -> Result<(), ReleaseError> {
            Ok(())
        }

        /// For `lock_api`'s condvar waits: the address of the one mutex all
        /// such waiters must share (which `notify_all` may requeue them
        /// onto). `None` for every other wait.
        fn tracked_mutex(&self) -> Option<usize> {
            None
        }

        /// Runs with the condition's queue locked: checks that the calling
        /// thread may release the lock for the wait, and for a lock that
        /// any thread may release, claims that release. Must not park,
        /// unpark or unwind.
        fn claim(&self) -> Result<Self::Saved, ReleaseError>;

        /// Releases the lock completely once the waiter is queued (in
        /// `before_sleep`). May unpark; must not park, unwind or run user
        /// code.
        fn release(&self, saved: &Self::Saved);

        /// Takes the lock back after the wait, restoring `saved`
        /// (uninterruptibly, and before the waiter takes back its Gil).
        fn reacquire(&self, saved: Self::Saved);
    }

    /// A `RawFairMutex` held by the caller; `tracked` for `lock_api`'s
    /// condvar waits (see `RawCondition::mutex`).
    pub struct RawTarget<'a> {
        pub(crate) mutex: &'a RawFairMutex,
        pub(crate) tracked: bool,
    }

    impl WaitTarget for RawTarget<'_> {
        type Saved = ();
        type Waiter = Plain;

        fn waiter(&self) -> &Plain {
            &Plain
        }

        fn tracked_mutex(&self) -> Option<usize> {
            self.tracked.then(|| self.mutex.park_key())
        }

        fn claim(&self) -> Result<(), ReleaseError> {
            Ok(())
        }

        fn release(&self, _: &()) {
            // SAFETY:
            // - whoever built this target holds the mutex (a guard or the
            //   caller of `RawCondvar::wait`);
            // - it gives up its use until `reacquire` returns.
            unsafe { self.mutex.unlock_raw() }
        }

        fn reacquire(&self, _: ()) {
            self.mutex.lock_until(None);
        }
    }

    /// A `Lock` that should be locked.
    pub struct LockTarget<'a>(pub(crate) &'a Lock);

    impl WaitTarget for LockTarget<'_> {
        type Saved = ();
        type Waiter = Plain;

        fn waiter(&self) -> &Plain {
            &Plain
        }

        fn check(&self) -> Result<(), ReleaseError> {
            if self.0.locked() {
                Ok(())
            } else {
                Err(ReleaseError::NotLocked)
            }
        }

        fn claim(&self) -> Result<(), ReleaseError> {
            if self.0.claim_release() {
                Ok(())
            } else {
                Err(ReleaseError::NotLocked)
            }
        }

        fn release(&self, _: &()) {
            // SAFETY: `claim` won the release of this acquisition.
            unsafe { self.0.unlock_claimed() }
        }

        fn reacquire(&self, _: ()) {
            self.0.acquire();
        }
    }

    /// An `RLock` the calling thread (`me`) should own.
    pub struct RLockTarget<'a> {
        lock: &'a RLock,
        /// The caller's thread id, read here and not in `claim`, which runs
        /// in `validate` and must not panic (a no-std build without a
        /// thread identity panics when asked for one).
        me: u64,
    }

    impl<'a> RLockTarget<'a> {
        pub(crate) fn new(lock: &'a RLock) -> Self {
            Self {
                lock,
                me: thread_id::current().get(),
            }
        }
    }

    impl WaitTarget for RLockTarget<'_> {
        type Saved = usize;
        type Waiter = Plain;

        fn waiter(&self) -> &Plain {
            &Plain
        }

        fn check(&self) -> Result<(), ReleaseError> {
            self.lock.check_owned()
        }

        fn claim(&self) -> Result<usize, ReleaseError> {
            self.lock.levels_for_wait(self.me)
        }

        fn release(&self, _: &usize) {
            // SAFETY: `claim` checked that the calling thread owns the lock.
            unsafe { self.lock.release_all_for_wait() }
        }

        fn reacquire(&self, levels: usize) {
            self.lock.reacquire_after_wait(self.me, levels);
        }
    }

    /// A lock's target waited on by `waiter`, a thread that lets go of
    /// something else around the wait (its Gil).
    pub struct With<T, W> {
        pub(crate) target: T,
        pub(crate) waiter: W,
    }

    impl<T: WaitTarget<Waiter = Plain>, W: Waiter> WaitTarget for With<T, W> {
        type Saved = T::Saved;
        type Waiter = W;

        fn waiter(&self) -> &W {
            &self.waiter
        }

        fn check(&self) -> Result<(), ReleaseError> {
            self.target.check()
        }

        fn claim(&self) -> Result<T::Saved, ReleaseError> {
            self.target.claim()
        }

        fn release(&self, saved: &T::Saved) {
            self.target.release(saved);
        }

        fn reacquire(&self, saved: T::Saved) {
            self.target.reacquire(saved);
        }
    }

    impl<'g, T: ?Sized> Sealed for FairMutexGuard<'g, T> {
        type Target<'a>
            = RawTarget<'g>
        where
            Self: 'a;

        fn target(&mut self, _: Private) -> RawTarget<'g> {
            // SAFETY:
            // - `raw` is unsafe because unlocking through it behind a
            //   guard's back is unsound;
            // - the wait unlocks only while it holds `&mut` the guard, and
            //   locks again before giving it back.
            RawTarget {
                mutex: unsafe { lock_api::MutexGuard::mutex(self).raw() },
                tracked: false,
            }
        }
    }

    impl<'g> Sealed for LockGuard<'g> {
        type Target<'a>
            = LockTarget<'g>
        where
            Self: 'a;

        fn target(&mut self, _: Private) -> LockTarget<'g> {
            LockTarget(LockGuard::lock(self))
        }
    }

    impl<'g> Sealed for RLockGuard<'g> {
        type Target<'a>
            = RLockTarget<'g>
        where
            Self: 'a;

        fn target(&mut self, _: Private) -> RLockTarget<'g> {
            RLockTarget::new(RLockGuard::rlock(self))
        }
    }

    pub(crate) fn uninterruptible<R>(result: Result<R, Interrupted>) -> R {
        match result {
            Ok(value) => value,
            Err(Interrupted) => unreachable!("only interruptible guards are interrupted"),
        }
    }

    /// A fresh `&mut ()` for the predicates of data-less locks.
    pub(crate) fn unit() -> &'static mut () {
        // SAFETY:
        // - a dangling, well-aligned, non-null pointer is valid for reads
        //   and writes of a zero-sized type;
        // - no two such references can overlap in any byte.
        unsafe { core::ptr::NonNull::<()>::dangling().as_mut() }
    }
}

impl<T: ?Sized> WaitGuard for FairMutexGuard<'_, T> {
    type Data = T;
    type Output<R> = R;

    fn data_for_wait(&mut self, _: Private) -> &mut T {
        self
    }

    fn finish_wait<R>(result: Result<R, Interrupted>, _: Private) -> R {
        sealed::uninterruptible(result)
    }
}

/// The guards of data-less locks that no interrupt can end: predicates get
/// `&mut ()`, waits return their plain result.
macro_rules! dataless_wait_guard {
    ($($guard:ident),*) => {$(
        impl WaitGuard for $guard<'_> {
            type Data = ();
            type Output<R> = R;

            fn data_for_wait(&mut self, _: Private) -> &mut () {
                sealed::unit()
            }

            fn finish_wait<R>(result: Result<R, Interrupted>, _: Private) -> R {
                sealed::uninterruptible(result)
            }
        }
    )*};
}

dataless_wait_guard!(LockGuard, RLockGuard);
