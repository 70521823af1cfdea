//! The `_with` forms: every blocking call of the crate's primitives, made
//! for a thread that holds the Gil.
//!
//! They all follow the protocol of `crate::wait` (the Gil's side is
//! `attached.rs`), so they share five rules:
//!
//! 1. They first try without letting go of the Gil: an uncontended call
//!    costs no switch.
//! 2. If they must block, they release the Gil (its heir runs), sleep, take
//!    the primitive and only then the Gil: a thread never sleeps on a
//!    primitive while it holds the Gil, so no thread that holds the
//!    primitive and needs the Gil can deadlock against it.
//! 3. [`ThreadState::interrupt`](crate::ThreadState::interrupt) ends the
//!    wait promptly with [`Interrupted`] (the Gil held again, the primitive
//!    not taken); an interrupt pending when the call starts ends it at
//!    once, before the first try. The call that reports an interrupt
//!    consumes it. An interrupted Condition wait takes its lock back (every
//!    level of an `RLock`) before it returns the error, as Python's
//!    `Condition.wait` does in its `finally`.
//! 4. No user code runs inside a park callback: event hooks fire before
//!    the thread parks or after it wakes.
//! 5. Timed forms never return early; a timeout is `Ok(false)` (or
//!    `Ok(None)`).
//!
//! They live here, with the Gil, rather than beside each primitive, so
//! that the primitives depend only on `crate::wait` and never on the Gil.

use super::attached::{Attached, may_take_at_once};
use super::guard::GilGuard;
use crate::barrier::Barrier;
use crate::condition::sealed::{LockTarget, RLockTarget, Sealed, With};
use crate::condition::{Condition, Private, WaitGuard, WaitTarget};
use crate::error::{BrokenBarrierError, Interrupted, ReleaseError, WaitError};
use crate::event::Event;
use crate::fair_mutex::{FairMutex, FairMutexGuard, RawFairMutex};
use crate::lock::Lock;
use crate::park::{Instant, clock::deadline_after};
use crate::rlock::RLock;
use crate::semaphore::{BoundedSemaphore, Semaphore};
use crate::wait::WaitEnd;
use core::time::Duration;

/// The answer of an untimed wait: it ends taken, or interrupted.
fn untimed(end: WaitEnd) -> Result<(), Interrupted> {
    match end {
        WaitEnd::Done => Ok(()),
        WaitEnd::Interrupted => Err(Interrupted),
        WaitEnd::TimedOut => unreachable!("an untimed wait does not time out"),
    }
}

/// The answer of a timed wait: taken, timed out, or interrupted.
fn timed(end: WaitEnd) -> Result<bool, Interrupted> {
    match end {
        WaitEnd::Done => Ok(true),
        WaitEnd::TimedOut => Ok(false),
        WaitEnd::Interrupted => Err(Interrupted),
    }
}

/// A deadline `timeout` from now; `None` (no deadline) when it cannot be
/// represented.
fn deadline(timeout: Duration) -> Option<Instant> {
    deadline_after(timeout)
}

impl Lock {
    /// [`acquire`](Self::acquire) for a thread that holds the Gil through
    /// `guard`: takes the lock at once if it is free (the Gil never let
    /// go), else releases the Gil while it waits and takes it back once it
    /// has the lock (see [`Lock`]'s "With the Gil").
    ///
    /// # Errors
    ///
    /// [`Interrupted`] when [`ThreadState::interrupt`](crate::ThreadState::interrupt)
    /// ended the wait, or was pending when the call began (consumed); the
    /// lock is not taken then, and the Gil is held again.
    ///
    /// # Panics
    ///
    /// If the thread does not hold the Gil through `guard` right now (a
    /// guard smuggled into its own `detach` closure).
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Gil, Lock};
    ///
    /// let gil = Gil::new();
    /// let lock = Lock::new();
    /// lock.acquire(); // "held by another interpreter thread"
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         // That thread needs the Gil to get to its release: it gets
    ///         // it, because the waiter below let go of it.
    ///         let _g = gil.acquire();
    ///         lock.release().unwrap();
    ///     });
    ///     let mut guard = gil.acquire();
    ///     lock.acquire_with(&mut guard).unwrap();
    ///     assert!(lock.locked() && gil.is_held_by_current_thread());
    /// });
    /// # }
    /// ```
    pub fn acquire_with(&self, guard: &mut GilGuard<'_>) -> Result<(), Interrupted> {
        if may_take_at_once(guard) && self.try_acquire() {
            return Ok(());
        }
        let waiter = Attached::around(guard, "Lock::acquire_with");
        untimed(self.acquire_waiting(None, &waiter))
    }

    /// [`acquire_timeout`](Self::acquire_timeout) for a thread that holds
    /// the Gil through `guard`: `Ok(true)` when it took the lock,
    /// `Ok(false)` when `timeout` passed first (never earlier).
    ///
    /// # Errors
    ///
    /// As [`acquire_with`](Self::acquire_with).
    ///
    /// # Panics
    ///
    /// As [`acquire_with`](Self::acquire_with).
    pub fn acquire_timeout_with(
        &self,
        guard: &mut GilGuard<'_>,
        timeout: Duration,
    ) -> Result<bool, Interrupted> {
        let waiter = Attached::around(guard, "Lock::acquire_timeout_with");
        timed(self.acquire_waiting(deadline(timeout), &waiter))
    }
}

impl RLock {
    /// [`acquire`](Self::acquire) for a thread that holds the Gil through
    /// `guard`: re-entry, and taking a free lock, never let go of the Gil;
    /// a contended acquire releases it while it waits and takes it back
    /// once it owns the lock.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] when [`ThreadState::interrupt`](crate::ThreadState::interrupt)
    /// ended the wait, or was pending when the call began (consumed); the
    /// lock is not taken then, and the Gil is held again.
    ///
    /// # Panics
    ///
    /// If the thread does not hold the Gil through `guard` right now, or if
    /// the recursion count would overflow `usize`.
    pub fn acquire_with(&self, guard: &mut GilGuard<'_>) -> Result<(), Interrupted> {
        if may_take_at_once(guard) && self.try_acquire() {
            return Ok(());
        }
        let waiter = Attached::around(guard, "RLock::acquire_with");
        untimed(self.acquire_waiting(None, &waiter))
    }

    /// [`acquire_timeout`](Self::acquire_timeout) for a thread that holds
    /// the Gil through `guard`: `Ok(true)` when it took the lock (at once
    /// on re-entry), `Ok(false)` when `timeout` passed first (never
    /// earlier).
    ///
    /// # Errors
    ///
    /// As [`acquire_with`](Self::acquire_with).
    ///
    /// # Panics
    ///
    /// As [`acquire_with`](Self::acquire_with).
    pub fn acquire_timeout_with(
        &self,
        guard: &mut GilGuard<'_>,
        timeout: Duration,
    ) -> Result<bool, Interrupted> {
        let waiter = Attached::around(guard, "RLock::acquire_timeout_with");
        timed(self.acquire_waiting(deadline(timeout), &waiter))
    }
}

/// The Gil-releasing forms of [`FairMutex`]'s blocking calls (`lock_api`'s
/// `Mutex` is not this crate's type, so they come as an extension trait).
///
/// ```
/// # #[cfg(feature = "std")] {
/// use gilock::{FairMutex, Gil, MutexExt};
///
/// let gil = Gil::new();
/// let counter = FairMutex::new(0);
/// let mut guard = gil.acquire();
/// *counter.lock_with(&mut guard).unwrap() += 1;
/// assert_eq!(*counter.lock(), 1);
/// # }
/// ```
pub trait MutexExt<T: ?Sized> {
    /// `lock` for a thread that holds the Gil through `guard`: at once if
    /// the mutex is free (the Gil never let go), else the Gil is released
    /// while the thread waits and taken back once it has the mutex.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] when [`ThreadState::interrupt`](crate::ThreadState::interrupt)
    /// ended the wait (or was pending when the call began); the mutex is
    /// not taken then, and the Gil is held again.
    ///
    /// # Panics
    ///
    /// If the thread does not hold the Gil through `guard` right now.
    fn lock_with(&self, guard: &mut GilGuard<'_>) -> Result<FairMutexGuard<'_, T>, Interrupted>;

    /// `try_lock_for` for a thread that holds the Gil through `guard`:
    /// `Ok(None)` when `timeout` passed first (never earlier).
    ///
    /// # Errors
    ///
    /// As [`lock_with`](Self::lock_with).
    ///
    /// # Panics
    ///
    /// As [`lock_with`](Self::lock_with).
    fn try_lock_for_with(
        &self,
        guard: &mut GilGuard<'_>,
        timeout: Duration,
    ) -> Result<Option<FairMutexGuard<'_, T>>, Interrupted>;
}

impl<T: ?Sized> MutexExt<T> for FairMutex<T> {
    fn lock_with(&self, guard: &mut GilGuard<'_>) -> Result<FairMutexGuard<'_, T>, Interrupted> {
        if may_take_at_once(guard)
            && let Some(taken) = self.try_lock()
        {
            return Ok(taken);
        }
        let waiter = Attached::around(guard, "MutexExt::lock_with");
        // SAFETY:
        // - `raw` is unsafe because locking or unlocking behind the Mutex's
        //   back breaks its guards' promise;
        // - we only lock it, and on success hand the lock to a guard made
        //   with `make_guard_unchecked`, which unlocks it on drop.
        let raw: &RawFairMutex = unsafe { self.raw() };
        untimed(raw.lock_waiting(None, &waiter))?;
        // SAFETY: the mutex is locked by this thread, and no guard owns it.
        Ok(unsafe { self.make_guard_unchecked(lock_api::GuardSend::new()) })
    }

    fn try_lock_for_with(
        &self,
        guard: &mut GilGuard<'_>,
        timeout: Duration,
    ) -> Result<Option<FairMutexGuard<'_, T>>, Interrupted> {
        let waiter = Attached::around(guard, "MutexExt::try_lock_for_with");
        // SAFETY: as in `lock_with`.
        let raw: &RawFairMutex = unsafe { self.raw() };
        if !timed(raw.lock_waiting(deadline(timeout), &waiter))? {
            return Ok(None);
        }
        // SAFETY: the mutex is locked by this thread, and no guard owns it.
        Ok(Some(unsafe {
            self.make_guard_unchecked(lock_api::GuardSend::new())
        }))
    }
}

/// The answer of a Condition wait with an unscoped lock and the Gil.
fn cond_end(result: Result<WaitEnd, ReleaseError>) -> Result<bool, WaitError> {
    match result {
        Ok(WaitEnd::Done) => Ok(true),
        Ok(WaitEnd::TimedOut) => Ok(false),
        Ok(WaitEnd::Interrupted) => Err(WaitError::Interrupted),
        Err(error) => Err(error.into()),
    }
}

impl Condition {
    /// [`wait_on_lock`](Self::wait_on_lock) for a thread that holds the Gil
    /// through `guard`: the thread queues on the condition, releases `lock`
    /// and the Gil, sleeps, and takes `lock` and then the Gil back.
    ///
    /// # Errors
    ///
    /// [`WaitError::NotLocked`] when `lock` is not locked (nothing is
    /// released then); [`WaitError::Interrupted`] when
    /// [`ThreadState::interrupt`](crate::ThreadState::interrupt) ended the
    /// wait, or was pending when it began — the lock and the Gil are held
    /// again then, as after a notification.
    ///
    /// # Panics
    ///
    /// If the thread does not hold the Gil through `guard` right now.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Condition, Gil, Lock};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let gil = Gil::new();
    /// let (lock, cond, ready) = (Lock::new(), Condition::new(), AtomicBool::new(false));
    /// std::thread::scope(|s| {
    ///     let mut guard = gil.acquire();
    ///     lock.acquire();
    ///     s.spawn(|| {
    ///         let mut g = gil.acquire(); // the waiter let go of the Gil
    ///         lock.acquire_with(&mut g).unwrap(); // and of the lock
    ///         ready.store(true, Ordering::Relaxed);
    ///         cond.notify_on_lock(&lock, 1).unwrap();
    ///         lock.release().unwrap();
    ///     });
    ///     while !ready.load(Ordering::Relaxed) {
    ///         cond.wait_on_lock_with(&lock, &mut guard).unwrap();
    ///     }
    ///     lock.release().unwrap();
    /// });
    /// # }
    /// ```
    pub fn wait_on_lock_with(
        &self,
        lock: &Lock,
        guard: &mut GilGuard<'_>,
    ) -> Result<(), WaitError> {
        let target = With {
            target: LockTarget(lock),
            waiter: Attached::around(guard, "Condition::wait_on_lock_with"),
        };
        cond_end(self.raw().wait_on(&target, None)).map(drop)
    }

    /// As [`wait_on_lock_with`](Self::wait_on_lock_with), giving up after
    /// `timeout`: `Ok(true)` when notified, `Ok(false)` when the timeout
    /// passed (never earlier). The lock and the Gil are held again in both
    /// cases.
    ///
    /// # Errors
    ///
    /// As [`wait_on_lock_with`](Self::wait_on_lock_with).
    ///
    /// # Panics
    ///
    /// As [`wait_on_lock_with`](Self::wait_on_lock_with).
    pub fn wait_on_lock_timeout_with(
        &self,
        lock: &Lock,
        guard: &mut GilGuard<'_>,
        timeout: Duration,
    ) -> Result<bool, WaitError> {
        let target = With {
            target: LockTarget(lock),
            waiter: Attached::around(guard, "Condition::wait_on_lock_timeout_with"),
        };
        cond_end(self.raw().wait_on(&target, deadline(timeout)))
    }

    /// [`wait_on_rlock`](Self::wait_on_rlock) for a thread that holds the
    /// Gil through `guard`: releases every level of `lock` and the Gil,
    /// sleeps, and restores exactly those levels and then the Gil.
    ///
    /// # Errors
    ///
    /// [`WaitError::NotLocked`] / [`WaitError::NotOwner`] when the calling
    /// thread does not own `lock` (nothing is released then);
    /// [`WaitError::Interrupted`] as for
    /// [`wait_on_lock_with`](Self::wait_on_lock_with), with every level
    /// restored.
    ///
    /// # Panics
    ///
    /// If the thread does not hold the Gil through `guard` right now.
    pub fn wait_on_rlock_with(
        &self,
        lock: &RLock,
        guard: &mut GilGuard<'_>,
    ) -> Result<(), WaitError> {
        let target = With {
            target: RLockTarget::new(lock),
            waiter: Attached::around(guard, "Condition::wait_on_rlock_with"),
        };
        cond_end(self.raw().wait_on(&target, None)).map(drop)
    }

    /// As [`wait_on_rlock_with`](Self::wait_on_rlock_with), giving up
    /// after `timeout`: `Ok(true)` when notified, `Ok(false)` when the
    /// timeout passed (never earlier). Every level and the Gil are held
    /// again in both cases.
    ///
    /// # Errors
    ///
    /// As [`wait_on_rlock_with`](Self::wait_on_rlock_with).
    ///
    /// # Panics
    ///
    /// As [`wait_on_rlock_with`](Self::wait_on_rlock_with).
    pub fn wait_on_rlock_timeout_with(
        &self,
        lock: &RLock,
        guard: &mut GilGuard<'_>,
        timeout: Duration,
    ) -> Result<bool, WaitError> {
        let target = With {
            target: RLockTarget::new(lock),
            waiter: Attached::around(guard, "Condition::wait_on_rlock_timeout_with"),
        };
        cond_end(self.raw().wait_on(&target, deadline(timeout)))
    }
}

/// The Gil as the lock of a `Condition` wait (a wait through `&mut
/// GilGuard`): it goes once the thread is queued, and comes back after.
pub struct GilTarget<'a, 'g>(Attached<'a, 'g>);

impl<'a, 'g> WaitTarget for GilTarget<'a, 'g> {
    type Saved = ();
    type Waiter = Attached<'a, 'g>;

    fn waiter(&self) -> &Attached<'a, 'g> {
        &self.0
    }

    fn check(&self) -> Result<(), ReleaseError> {
        if self.0.holds_gil() {
            Ok(())
        } else {
            Err(ReleaseError::NotOwner)
        }
    }

    fn claim(&self) -> Result<(), ReleaseError> {
        // Checked in `check`; only this thread could have let go since.
        Ok(())
    }

    fn release(&self, _: &()) {
        self.0.release_in_park();
    }

    fn reacquire(&self, _: ()) {
        // The waiter's `reattach` takes the Gil back.
    }
}

impl<'g> Sealed for GilGuard<'g> {
    type Target<'a>
        = GilTarget<'a, 'g>
    where
        Self: 'a;

    fn target(&mut self, _: Private) -> GilTarget<'_, 'g> {
        GilTarget(Attached::on_gil(self))
    }
}

/// Waits through a `GilGuard` release the Gil, so other interpreter threads
/// run meanwhile, and take it back before returning — also when
/// [`ThreadState::interrupt`](crate::ThreadState::interrupt) ends the wait
/// with `Err(Interrupted)`. An interrupt already pending when the wait
/// starts ends it at once (consumed, the Gil never released).
impl WaitGuard for GilGuard<'_> {
    type Data = ();
    type Output<R> = Result<R, Interrupted>;

    fn data_for_wait(&mut self, _: Private) -> &mut () {
        crate::condition::sealed::unit()
    }

    fn finish_wait<R>(result: Result<R, Interrupted>, _: Private) -> Result<R, Interrupted> {
        result
    }
}

/// The `_with` forms both semaphores share, written once.
macro_rules! semaphore_with_forms {
    ($($semaphore:ident),*) => {$(
        impl $semaphore {
            /// [`acquire`](Self::acquire) for a thread that holds the Gil
            /// through `guard`: takes a permit at once if one is free and
            /// nobody waits (the Gil never let go), else releases the Gil
            /// while it waits in line and takes it back once it has the
            /// permit.
            ///
            /// # Errors
            ///
            /// [`Interrupted`] when
            /// [`ThreadState::interrupt`](crate::ThreadState::interrupt)
            /// ended the wait (or was pending when it began); no permit was
            /// taken then.
            ///
            /// # Panics
            ///
            /// If the thread does not hold the Gil through `guard` right now.
            pub fn acquire_with(&self, guard: &mut GilGuard<'_>) -> Result<(), Interrupted> {
                if may_take_at_once(guard) && self.try_acquire() {
                    return Ok(());
                }
                let waiter = Attached::around(guard, concat!(stringify!($semaphore), "::acquire_with"));
                untimed(self.acquire_waiting(None, &waiter))
            }

            /// As [`acquire_with`](Self::acquire_with), giving up after
            /// `timeout`: `Ok(true)` when it took a permit, `Ok(false)` when
            /// the timeout passed (never earlier).
            ///
            /// # Errors
            ///
            /// As [`acquire_with`](Self::acquire_with).
            ///
            /// # Panics
            ///
            /// As [`acquire_with`](Self::acquire_with).
            pub fn acquire_timeout_with(
                &self,
                guard: &mut GilGuard<'_>,
                timeout: Duration,
            ) -> Result<bool, Interrupted> {
                let waiter = Attached::around(
                    guard,
                    concat!(stringify!($semaphore), "::acquire_timeout_with"),
                );
                timed(self.acquire_waiting(deadline(timeout), &waiter))
            }
        }
    )*};
}

semaphore_with_forms!(Semaphore, BoundedSemaphore);

impl Event {
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
    /// If the thread does not hold the Gil through `guard` right now.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
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
    /// # }
    /// ```
    pub fn wait_with(&self, guard: &mut GilGuard<'_>) -> Result<(), Interrupted> {
        let waiter = Attached::around(guard, "Event::wait_with");
        untimed(self.wait_waiting(None, &waiter))
    }

    /// As [`wait_timeout`](Self::wait_timeout), holding the Gil through
    /// `guard`, released while waiting: `Ok(true)` when the flag was or
    /// became set, `Ok(false)` when the timeout passed (never earlier).
    ///
    /// # Errors
    ///
    /// As [`wait_with`](Self::wait_with).
    ///
    /// # Panics
    ///
    /// As [`wait_with`](Self::wait_with).
    pub fn wait_timeout_with(
        &self,
        guard: &mut GilGuard<'_>,
        timeout: Duration,
    ) -> Result<bool, Interrupted> {
        let waiter = Attached::around(guard, "Event::wait_timeout_with");
        timed(self.wait_waiting(deadline(timeout), &waiter))
    }
}

impl Barrier {
    /// As [`wait`](Self::wait), holding the Gil through `guard`: the Gil is
    /// released while the thread waits and held again when the call
    /// returns, however it ends.
    ///
    /// # Errors
    ///
    /// `Err(`[`Interrupted`]`)` when
    /// [`ThreadState::interrupt`](crate::ThreadState::interrupt) ended the
    /// wait (which breaks the barrier for everyone, as an exception inside
    /// Python's `wait` does), or was pending when it began (consumed, and
    /// the thread did not arrive); otherwise what [`wait`](Self::wait)
    /// returns.
    ///
    /// # Panics
    ///
    /// If the thread does not hold the Gil through `guard` right now.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use gilock::{Barrier, Gil};
    ///
    /// let gil = Gil::new();
    /// let barrier = Barrier::new(2);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let mut g = gil.acquire();
    ///         barrier.wait_with(&mut g).unwrap().unwrap()
    ///     });
    ///     let mut g = gil.acquire();
    ///     // The other thread can take the Gil while this one waits.
    ///     let index = barrier.wait_with(&mut g).unwrap().unwrap();
    ///     assert!(index < 2);
    /// });
    /// # }
    /// ```
    pub fn wait_with(
        &self,
        guard: &mut GilGuard<'_>,
    ) -> Result<Result<usize, BrokenBarrierError>, Interrupted> {
        let waiter = Attached::around(guard, "Barrier::wait_with");
        self.wait_waiting(None, &waiter)
    }

    /// As [`wait_timeout`](Self::wait_timeout), holding the Gil through
    /// `guard`, released while waiting.
    ///
    /// # Errors
    ///
    /// As [`wait_with`](Self::wait_with) and
    /// [`wait_timeout`](Self::wait_timeout).
    ///
    /// # Panics
    ///
    /// As [`wait_with`](Self::wait_with).
    pub fn wait_timeout_with(
        &self,
        guard: &mut GilGuard<'_>,
        timeout: Duration,
    ) -> Result<Result<usize, BrokenBarrierError>, Interrupted> {
        let waiter = Attached::around(guard, "Barrier::wait_timeout_with");
        self.wait_waiting(deadline(timeout), &waiter)
    }
}
