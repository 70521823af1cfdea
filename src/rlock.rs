//! `RLock`: Python's `threading.RLock` on the fair handoff mutex.
//!
//! The owner's thread id and the recursion count sit beside the mutex word.
//! Only the owner ever writes them; a thread compares the owner with its own
//! id, which can only match if that thread stored it (ids are never reused),
//! so a relaxed load suffices, as in parking_lot's `RawReentrantMutex`.

use crate::error::ReleaseError;
use crate::fair_mutex::RawFairMutex;
use crate::park::{self, Instant};
use crate::sync::{AtomicU64, Ordering, UnsafeCell, const_fn};
use crate::thread_id;
use crate::wait::{WaitEnd, Waiter};
use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

/// No thread owns the lock.
const NO_OWNER: u64 = 0;

/// A re-entrant lock with the semantics of Python's `threading.RLock`: the
/// thread that holds it may acquire it again, and must release it as many
/// times as it acquired it before another thread can take it.
///
/// Only the owning thread may release it: a release by another thread is
/// [`ReleaseError::NotOwner`], one when no thread holds it
/// [`ReleaseError::NotLocked`], and neither changes anything.
///
/// [`lock`](Self::lock) is re-entrant too (as `parking_lot::ReentrantMutex`):
/// nested guards are fine. Waiting on a [`Condition`](crate::Condition) with
/// an `RLock` held N levels deep releases all N levels and restores exactly
/// N before the wait returns.
///
/// **With the Gil.** [`acquire_with`](Self::acquire_with) and
/// [`acquire_timeout_with`](Self::acquire_timeout_with) take `&mut` the
/// thread's [`GilGuard`](crate::GilGuard)(crate::GilGuard): re-entry and an uncontended
/// acquire never let go of the Gil; a contended one releases it while it
/// waits and can be interrupted.
///
/// # Example
///
/// ```
/// # #[cfg(feature = "std")] {
/// use gilock::{RLock, ReleaseError};
///
/// static LOCK: RLock = RLock::new();
///
/// LOCK.acquire();
/// LOCK.acquire();
/// assert_eq!(LOCK.recursion_count(), 2);
/// let other = std::thread::spawn(|| (LOCK.release(), LOCK.try_acquire(), LOCK.recursion_count()));
/// assert_eq!(other.join().unwrap(), (Err(ReleaseError::NotOwner), false, 0));
/// LOCK.release().unwrap();
/// LOCK.release().unwrap();
/// assert_eq!(LOCK.release(), Err(ReleaseError::NotLocked));
///
/// let outer = LOCK.lock();
/// let inner = LOCK.lock();
/// assert_eq!(LOCK.recursion_count(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!LOCK.is_owned());
/// # }
/// ```
pub struct RLock {
    raw: RawFairMutex,
    /// The owner's thread id, or `NO_OWNER`. Written only by the owner.
    owner: AtomicU64,
    /// Levels held by the owner. Read and written only by the owner.
    count: UnsafeCell<usize>,
}

// SAFETY: `count` is only accessed by the thread whose id is in `owner`, and
// ownership passes between threads only through `raw` (Release on unlock,
// Acquire on lock), which orders one owner's accesses before the next's.
unsafe impl Sync for RLock {}
// SAFETY: no field is tied to the thread that created the lock.
unsafe impl Send for RLock {}

/// Raised by the recursion counter before it could wrap around.
const OVERFLOW: &str = "RLock recursion count overflow: acquired usize::MAX times without release";

impl RLock {
    const_fn! {
        /// An unlocked re-entrant lock.
        ///
        /// `const` except under `--cfg loom`, whose atomics cannot be built
        /// in constants.
        #[must_use]
        pub const fn new() -> Self {
            Self {
                raw: RawFairMutex::new(),
                owner: AtomicU64::new(NO_OWNER),
                count: UnsafeCell::new(0),
            }
        }
    }

    /// Acquires the lock, waiting if another thread holds it; if the calling
    /// thread holds it already, adds one level.
    ///
    /// # Panics
    ///
    /// If the recursion count would overflow `usize`.
    #[doc(alias = "lock")]
    #[inline]
    pub fn acquire(&self) {
        let me = thread_id::current().get();
        if self.try_recurse(me) {
            return;
        }
        self.raw.lock_until(None);
        self.take_ownership(me, 1);
    }

    /// Acquires the lock if it is free or already held by the calling
    /// thread, without waiting.
    ///
    /// # Panics
    ///
    /// If the recursion count would overflow `usize`.
    #[must_use = "if false, nothing was taken"]
    #[doc(alias = "try_lock")]
    #[inline]
    pub fn try_acquire(&self) -> bool {
        let me = thread_id::current().get();
        if self.try_recurse(me) {
            return true;
        }
        if self.raw.try_lock_raw() {
            self.take_ownership(me, 1);
            true
        } else {
            false
        }
    }

    /// Acquires the lock, waiting at most `timeout`; returns whether it was
    /// acquired. Re-entry succeeds at once.
    ///
    /// A zero timeout is [`try_acquire`](Self::try_acquire). A timed-out
    /// call never returns before `timeout` has passed on the monotonic
    /// clock; a timeout too large to represent waits without end.
    ///
    /// # Panics
    ///
    /// If the recursion count would overflow `usize`.
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
        let me = thread_id::current().get();
        if self.raw.lock_until(park::clock::deadline_after(timeout)) {
            self.take_ownership(me, 1);
            true
        } else {
            false
        }
    }

    /// Takes the lock as `waiter` waits (plainly, or releasing the Gil):
    /// re-entry at once, else the mutex's slow path.
    ///
    /// # Panics
    ///
    /// If the recursion count would overflow `usize`.
    pub(crate) fn acquire_waiting<W: Waiter>(
        &self,
        deadline: Option<Instant>,
        waiter: &W,
    ) -> WaitEnd {
        let me = thread_id::current().get();
        if self.try_recurse(me) {
            return WaitEnd::Done;
        }
        let end = self.raw.lock_waiting(deadline, waiter);
        if end == WaitEnd::Done {
            self.take_ownership(me, 1);
        }
        end
    }

    /// Whether the calling thread may wait on the lock (owns it), or the
    /// error a wait would report: checked before the thread lets go of
    /// anything.
    pub(crate) fn check_owned(&self) -> Result<(), ReleaseError> {
        let owner = self.owner.load(Ordering::Relaxed);
        if owner == thread_id::current().get() {
            Ok(())
        } else {
            Err(Self::not_owned_error(owner))
        }
    }

    /// Releases one level; the lock is free once every level is released.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotOwner`] when another thread holds the lock,
    /// [`ReleaseError::NotLocked`] when no thread does. Nothing changes then.
    #[doc(alias = "unlock")]
    #[inline]
    pub fn release(&self) -> Result<(), ReleaseError> {
        let me = thread_id::current().get();
        let owner = self.owner.load(Ordering::Relaxed);
        if owner != me {
            return Err(Self::not_owned_error(owner));
        }
        // SAFETY: we are the owner, the only thread that touches `count`.
        let left = self.count.with_mut(|count| unsafe {
            *count -= 1;
            *count
        });
        if left == 0 {
            self.owner.store(NO_OWNER, Ordering::Relaxed);
            // SAFETY: the owner holds `raw`.
            unsafe { self.raw.unlock_raw() };
        }
        Ok(())
    }

    /// Whether the calling thread holds the lock.
    #[doc(alias = "_is_owned")]
    #[doc(alias = "is_owned_by_current_thread")]
    #[inline]
    pub fn is_owned(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == thread_id::current().get()
    }

    /// How many levels the calling thread holds: 0 when it does not hold
    /// the lock (including when another thread does).
    #[doc(alias = "_recursion_count")]
    #[doc(alias = "depth")]
    #[doc(alias = "level")]
    #[inline]
    pub fn recursion_count(&self) -> usize {
        if self.is_owned() {
            // SAFETY: we are the owner, the only thread that touches `count`.
            self.count.with(|count| unsafe { *count })
        } else {
            0
        }
    }

    /// Whether any thread holds the lock.
    #[doc(alias = "is_locked")]
    #[inline]
    pub fn locked(&self) -> bool {
        lock_api::RawMutex::is_locked(&self.raw)
    }

    /// Acquires the lock (re-entrantly) and returns a guard that releases
    /// one level when dropped.
    ///
    /// # Panics
    ///
    /// If the recursion count would overflow `usize`.
    #[inline]
    pub fn lock(&self) -> RLockGuard<'_> {
        self.acquire();
        RLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Acquires the lock if it is free or already held by the calling
    /// thread, and returns its guard.
    #[must_use = "if unused the RLock level is released at once"]
    #[inline]
    pub fn try_lock(&self) -> Option<RLockGuard<'_>> {
        self.try_acquire().then_some(RLockGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    #[inline]
    fn try_recurse(&self, me: u64) -> bool {
        if self.owner.load(Ordering::Relaxed) != me {
            return false;
        }
        // SAFETY: we are the owner, the only thread that touches `count`.
        self.count.with_mut(|count| unsafe {
            *count = (*count).checked_add(1).expect(OVERFLOW);
        });
        true
    }

    /// Records `me` as the owner with `levels` levels, once `raw` is held.
    #[inline]
    fn take_ownership(&self, me: u64, levels: usize) {
        self.owner.store(me, Ordering::Relaxed);
        // SAFETY: we hold `raw`, so we are the owner now.
        self.count.with_mut(|count| unsafe { *count = levels });
    }

    fn not_owned_error(owner: u64) -> ReleaseError {
        if owner == NO_OWNER {
            ReleaseError::NotLocked
        } else {
            ReleaseError::NotOwner
        }
    }

    /// For a condition wait: checks that the thread `me` (the caller, its
    /// id read before the park: this runs in `validate`, which must not
    /// panic, and reading a thread id may) owns the lock and returns how
    /// many levels it holds, touching nothing.
    pub(crate) fn levels_for_wait(&self, me: u64) -> Result<usize, ReleaseError> {
        let owner = self.owner.load(Ordering::Relaxed);
        if owner != me {
            return Err(Self::not_owned_error(owner));
        }
        // SAFETY: we are the owner, the only thread that touches `count`.
        let levels = self.count.with(|count| unsafe { *count });
        if levels == 0 {
            // Cannot happen while `owner` is ours; kept as a clear error.
            return Err(ReleaseError::NotLocked);
        }
        Ok(levels)
    }

    /// Releases every level at once, for a condition wait.
    ///
    /// # Safety
    /// The calling thread owns the lock (checked by `levels_for_wait`).
    pub(crate) unsafe fn release_all_for_wait(&self) {
        // SAFETY: we are the owner, the only thread that touches `count`.
        self.count.with_mut(|count| unsafe { *count = 0 });
        self.owner.store(NO_OWNER, Ordering::Relaxed);
        // SAFETY: the owner holds `raw`.
        unsafe { self.raw.unlock_raw() };
    }

    /// Takes the lock back after a condition wait with exactly `levels`
    /// levels, for the thread `me`.
    pub(crate) fn reacquire_after_wait(&self, me: u64, levels: usize) {
        self.raw.lock_until(None);
        self.take_ownership(me, levels);
    }

    /// Overwrites the recursion count of the owning thread (unit tests of
    /// the overflow check).
    #[cfg(all(test, feature = "std", not(loom)))]
    fn set_count_for_test(&self, levels: usize) {
        assert!(self.is_owned());
        // SAFETY: we are the owner.
        self.count.with_mut(|count| unsafe { *count = levels });
    }
}

impl Default for RLock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.locked())
            .field("owned_by_current_thread", &self.is_owned())
            .field("recursion_count", &self.recursion_count())
            .finish()
    }
}

/// The scoped guard of an [`RLock`]: releases one level when dropped.
///
/// Neither `Send` nor `Sync`: the lock belongs to the thread that took it,
/// and a condition wait through `&mut` guard releases and restores every
/// level the thread holds — sound only because no other thread can use a
/// guard of this lock meanwhile.
#[must_use = "if unused the RLock level is released at once"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

static_assertions::assert_not_impl_any!(RLockGuard<'static>: Send, Sync);
static_assertions::assert_impl_all!(RLock: Send, Sync);

impl<'a> RLockGuard<'a> {
    /// The lock this guard holds.
    #[must_use]
    pub fn rlock(guard: &Self) -> &'a RLock {
        guard.lock
    }
}

impl Drop for RLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // An Err means the owner released the level by hand meanwhile; a
        // drop cannot report it, and releasing nothing more is safe.
        let _ = self.lock.release();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("lock", self.lock)
            .finish()
    }
}

#[cfg(all(test, feature = "std", not(loom)))]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "RLock recursion count overflow")]
    fn recursion_overflow_panics_instead_of_wrapping() {
        let lock = RLock::new();
        lock.acquire();
        lock.set_count_for_test(usize::MAX);
        lock.acquire();
    }

    #[test]
    fn overflow_panic_leaves_the_count_intact() {
        let lock = RLock::new();
        lock.acquire();
        lock.set_count_for_test(usize::MAX);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lock.acquire()));
        assert!(caught.is_err());
        assert_eq!(lock.recursion_count(), usize::MAX);
        assert!(lock.is_owned());
    }
}
