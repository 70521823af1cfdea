//! `Lock`: Python's `threading.Lock` on the fair handoff mutex.
//!
//! A `Lock` is not owned by a thread: any thread may release it, as in
//! Python. That makes `release` a race between possible releasers, so the
//! lock keeps one more flag besides the mutex word: `held`, set by whoever
//! acquired the mutex and cleared (with a swap) by exactly one releaser.
//! Only the releaser that wins the swap unlocks the mutex, so two racing
//! `release` calls can never unlock it twice, and a `release` of an unlocked
//! lock touches nothing.

use crate::error::ReleaseError;
use crate::fair_mutex::RawFairMutex;
use crate::park::{self, Instant};
use crate::sync::{AtomicBool, Ordering, const_fn};
use crate::wait::{WaitEnd, Waiter};
use core::fmt;
use core::time::Duration;

/// A lock with the semantics of Python's `threading.Lock`: not re-entrant,
/// and not owned by a thread, so any thread may release it.
///
/// Acquiring waits on the crate's fair handoff mutex ([`RawFairMutex`]):
/// uncontended it costs a compare-and-swap; a waiter that has waited longer
/// than the 5 ms switch interval gets the lock handed to it on the next
/// release.
///
/// Use [`lock`](Self::lock) for a scoped guard, or the unscoped
/// [`acquire`](Self::acquire) / [`release`](Self::release) pair where an
/// interpreter exposes them to its users. Releasing a lock that is not
/// locked is an error, never a corruption.
///
/// **With the Gil.** A thread that holds the [`Gil`](crate::Gil) must not
/// block on a `Lock` (the lock's holder may need the Gil to get to its
/// `release`): [`acquire_with`](Self::acquire_with) and
/// [`acquire_timeout_with`](Self::acquire_timeout_with) take `&mut` its
/// [`GilGuard`](crate::GilGuard)(crate::GilGuard), try once without letting go, and release
/// the Gil only while they wait; [`ThreadState::interrupt`](crate::ThreadState::interrupt)
/// ends such a wait.
///
/// # Example
///
/// ```
/// use gilock::{Lock, ReleaseError};
///
/// static LOCK: Lock = Lock::new();
///
/// LOCK.acquire();
/// assert!(LOCK.locked());
/// assert!(!LOCK.try_acquire());
/// // Any thread may release a Lock, as in Python.
/// std::thread::spawn(|| LOCK.release().unwrap()).join().unwrap();
/// assert_eq!(LOCK.release(), Err(ReleaseError::NotLocked));
///
/// {
///     let _guard = LOCK.lock();
///     assert!(LOCK.locked());
/// }
/// assert!(!LOCK.locked());
/// ```
pub struct Lock {
    raw: RawFairMutex,
    /// Set by the acquirer once it holds `raw`; cleared by the one releaser
    /// that may unlock `raw`.
    held: AtomicBool,
}

static_assertions::assert_impl_all!(Lock: Send, Sync);

impl Lock {
    const_fn! {
        /// An unlocked lock.
        ///
        /// `const` except under `--cfg loom`, whose atomics cannot be built
        /// in constants.
        #[must_use]
        pub const fn new() -> Self {
            Self {
                raw: RawFairMutex::new(),
                held: AtomicBool::new(false),
            }
        }
    }

    /// Waits until the lock is free and takes it.
    ///
    /// A `Lock` is not re-entrant: a thread that acquires a lock it already
    /// holds waits until another thread releases it (Python does the same).
    #[doc(alias = "lock")]
    #[inline]
    pub fn acquire(&self) {
        self.raw.lock_until(None);
        self.mark_held();
    }

    /// Takes the lock if it is free, without waiting.
    #[must_use = "if false, nothing was taken"]
    #[doc(alias = "try_lock")]
    #[inline]
    pub fn try_acquire(&self) -> bool {
        if self.raw.try_lock_raw() {
            self.mark_held();
            true
        } else {
            false
        }
    }

    /// Takes the lock, waiting at most `timeout`; returns whether it was
    /// taken.
    ///
    /// A zero timeout is [`try_acquire`](Self::try_acquire). A timed-out
    /// call never returns before `timeout` has passed on the monotonic
    /// clock; a timeout too large to represent waits without end.
    #[must_use = "if false, the wait timed out and nothing was taken"]
    #[doc(alias = "try_lock_for")]
    #[doc(alias = "try_acquire_for")]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        if self.try_acquire() {
            return true;
        }
        if timeout.is_zero() {
            return false;
        }
        if self.raw.lock_until(park::clock::deadline_after(timeout)) {
            self.mark_held();
            true
        } else {
            false
        }
    }

    /// Takes the lock as `waiter` waits (plainly, or releasing the Gil):
    /// the one slow path of every acquire.
    pub(crate) fn acquire_waiting<W: Waiter>(
        &self,
        deadline: Option<Instant>,
        waiter: &W,
    ) -> WaitEnd {
        let end = self.raw.lock_waiting(deadline, waiter);
        if end == WaitEnd::Done {
            self.mark_held();
        }
        end
    }

    /// Releases the lock. Any thread may release it, not only the one that
    /// acquired it.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotLocked`] when the lock is not locked (Python's
    /// "release unlocked lock"); nothing changes then.
    #[doc(alias = "unlock")]
    #[inline]
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.claim_release() {
            // SAFETY: winning the claim proves `raw` is held and that no
            // other releaser will unlock this acquisition.
            unsafe { self.unlock_claimed() };
            Ok(())
        } else {
            Err(ReleaseError::NotLocked)
        }
    }

    /// Whether the lock is held (by any thread).
    #[doc(alias = "is_locked")]
    #[inline]
    pub fn locked(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// Acquires the lock and returns a guard that releases it when dropped.
    ///
    /// ```
    /// use gilock::Lock;
    ///
    /// let lock = Lock::new();
    /// let guard = lock.lock();
    /// assert!(lock.locked());
    /// drop(guard);
    /// assert!(!lock.locked());
    /// ```
    #[inline]
    pub fn lock(&self) -> LockGuard<'_> {
        self.acquire();
        LockGuard { lock: self }
    }

    /// Takes the lock if it is free and returns its guard.
    #[must_use = "if unused the Lock is released at once"]
    #[inline]
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.try_acquire().then_some(LockGuard { lock: self })
    }

    #[inline]
    fn mark_held(&self) {
        // Release: a thread that claims the release through this flag sees
        // what the acquirer did before, as if it had taken the lock itself.
        self.held.store(true, Ordering::Release);
    }

    /// Claims the right to unlock the current acquisition: true for exactly
    /// one caller per acquisition. The caller must then unlock `raw`.
    #[inline]
    pub(crate) fn claim_release(&self) -> bool {
        self.held.swap(false, Ordering::Acquire)
    }

    /// Unlocks `raw` after a successful [`claim_release`](Self::claim_release).
    ///
    /// # Safety
    /// The caller won `claim_release` and has not unlocked since.
    pub(crate) unsafe fn unlock_claimed(&self) {
        // SAFETY: forwarded: the claim proves `raw` is held.
        unsafe { self.raw.unlock_raw() }
    }
}

impl Default for Lock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

/// The scoped guard of a [`Lock`]: the lock is released when it drops.
///
/// A `Lock` is not owned by a thread, so its guard may be sent to another
/// thread, which then releases it. Pass `&mut` guard to the waits of
/// [`Condition`](crate::Condition) to wait with the lock released.
///
/// If the lock was already released through [`Lock::release`] while the
/// guard lived, dropping the guard releases nothing more.
#[must_use = "if unused the Lock is released at once"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl<'a> LockGuard<'a> {
    /// The lock this guard holds.
    #[must_use]
    pub fn lock(guard: &Self) -> &'a Lock {
        guard.lock
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // An Err means someone released the lock by hand meanwhile, which
        // Python's `with lock:` would report at exit; a drop cannot report,
        // and releasing nothing is the only safe reaction.
        let _ = self.lock.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", self.lock)
            .finish()
    }
}
