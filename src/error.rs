//! The crate's error types.

use core::fmt;

/// Releasing a lock that the caller may not release: what Python reports as
/// `RuntimeError`.
///
/// ```
/// use gilock::{Lock, ReleaseError};
///
/// let lock = Lock::new();
/// assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReleaseError {
    /// The lock is not held by any thread, so it cannot be released or
    /// waited on (Python's "release unlocked lock" and "cannot wait on
    /// un-acquired lock").
    NotLocked,
    /// The lock is held by another thread, so the calling thread cannot
    /// release it or wait on it (Python's "cannot release un-acquired lock"
    /// and "cannot wait on un-acquired lock").
    NotOwner,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReleaseError::NotLocked => {
                "release unlocked lock (or cannot wait on un-acquired lock): no thread holds it"
            }
            ReleaseError::NotOwner => {
                "cannot release un-acquired lock (or wait on it): another thread holds it"
            }
        })
    }
}

impl core::error::Error for ReleaseError {}

/// A wait ended because [`ThreadState::interrupt`](crate::ThreadState::interrupt)
/// was called for the waiting thread; the lock it waited for is not held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wait interrupted")
    }
}

impl core::error::Error for Interrupted {}

/// Why a [`Condition`](crate::Condition) wait on an unscoped lock by a
/// thread holding the Gil (`wait_on_lock_with`, `wait_on_rlock_with` and
/// their timeout forms) failed: Python's `RuntimeError` when the caller may
/// not wait on the lock, or the interrupt that ended the wait.
///
/// ```
/// # #[cfg(feature = "std")] {
/// use gilock::{Condition, Gil, Lock, WaitError};
///
/// let gil = Gil::new();
/// let mut guard = gil.acquire();
/// let cond = Condition::new();
/// let unlocked = Lock::new();
/// assert_eq!(cond.wait_on_lock_with(&unlocked, &mut guard), Err(WaitError::NotLocked));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitError {
    /// The lock is not held by any thread (Python's "cannot wait on
    /// un-acquired lock"); nothing was released.
    NotLocked,
    /// Another thread holds the lock; nothing was released.
    NotOwner,
    /// [`ThreadState::interrupt`](crate::ThreadState::interrupt) ended the
    /// wait or was pending when it began. The lock (every level of an
    /// `RLock`) and the Gil are held again, as after a notification.
    Interrupted,
}

impl From<ReleaseError> for WaitError {
    fn from(error: ReleaseError) -> Self {
        match error {
            ReleaseError::NotLocked => WaitError::NotLocked,
            ReleaseError::NotOwner => WaitError::NotOwner,
        }
    }
}

impl From<Interrupted> for WaitError {
    fn from(_: Interrupted) -> Self {
        WaitError::Interrupted
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitError::NotLocked => "cannot wait on un-acquired lock: no thread holds it",
            WaitError::NotOwner => "cannot wait on un-acquired lock: another thread holds it",
            WaitError::Interrupted => "wait interrupted",
        })
    }
}

impl core::error::Error for WaitError {}

/// A [`Barrier`](crate::Barrier) wait failed because the barrier is broken:
/// it was aborted, a waiter timed out or was interrupted, or it was reset
/// while the thread waited. Python's `threading.BrokenBarrierError`.
///
/// ```
/// use gilock::{Barrier, BrokenBarrierError};
///
/// let barrier = Barrier::new(2);
/// barrier.abort();
/// assert_eq!(barrier.wait(), Err(BrokenBarrierError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct BrokenBarrierError;

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("barrier is broken (aborted, reset, or a waiter timed out)")
    }
}

impl core::error::Error for BrokenBarrierError {}

/// [`BoundedSemaphore::release`](crate::BoundedSemaphore::release) would
/// have raised the free permits above the initial count; nothing was
/// released. Python's `ValueError: Semaphore released too many times`.
///
/// ```
/// use gilock::{BoundedSemaphore, SemaphoreReleaseError};
///
/// let sem = BoundedSemaphore::new(1);
/// assert_eq!(sem.release_one(), Err(SemaphoreReleaseError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SemaphoreReleaseError;

impl fmt::Display for SemaphoreReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Semaphore released too many times")
    }
}

impl core::error::Error for SemaphoreReleaseError {}

/// A [`GilCell`](crate::GilCell) borrow that `RefCell`'s rules refuse:
/// what [`try_borrow`](crate::GilCell::try_borrow) and
/// [`try_borrow_mut`](crate::GilCell::try_borrow_mut) return where
/// `borrow` and `borrow_mut` panic.
///
/// ```
/// # #[cfg(feature = "std")] {
/// use gilock::{BorrowError, Gil, GilCell};
///
/// let gil = Gil::new();
/// let cell = GilCell::new(0);
/// let guard = gil.acquire();
/// let reader = cell.borrow(&guard);
/// assert_eq!(cell.try_borrow_mut(&guard).err(), Some(BorrowError::Borrowed));
/// drop(reader);
/// let writer = cell.borrow_mut(&guard);
/// assert_eq!(cell.try_borrow(&guard).err(), Some(BorrowError::MutablyBorrowed));
/// # drop(writer);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BorrowError {
    /// The value is mutably borrowed (a `GilRefMut` is alive).
    MutablyBorrowed,
    /// The value is borrowed (`GilRef`s are alive), so it cannot be
    /// borrowed mutably.
    Borrowed,
}

impl fmt::Display for BorrowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BorrowError::MutablyBorrowed => "already mutably borrowed",
            BorrowError::Borrowed => "already borrowed",
        })
    }
}

impl core::error::Error for BorrowError {}
/// [`Barrier::try_new`](crate::Barrier::try_new) or
/// [`Barrier::with_action`](crate::Barrier::with_action) was asked for a
/// barrier of zero parties. Python's `ValueError` from `Barrier(0)`.
///
/// ```
/// use gilock::{Barrier, ZeroPartiesError};
///
/// assert_eq!(Barrier::try_new(0).err(), Some(ZeroPartiesError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ZeroPartiesError;

impl fmt::Display for ZeroPartiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a barrier needs at least one party")
    }
}

impl core::error::Error for ZeroPartiesError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// The messages users see, word for word (each `Display` is a contract:
    /// an interpreter may show it as the Python exception's text).
    #[test]
    fn every_error_says_what_happened() {
        assert_eq!(Interrupted.to_string(), "wait interrupted");
        assert_eq!(WaitError::Interrupted.to_string(), "wait interrupted");
        assert_eq!(
            WaitError::NotLocked.to_string(),
            "cannot wait on un-acquired lock: no thread holds it"
        );
        assert_eq!(
            WaitError::NotOwner.to_string(),
            "cannot wait on un-acquired lock: another thread holds it"
        );
        assert_eq!(
            BorrowError::MutablyBorrowed.to_string(),
            "already mutably borrowed"
        );
        assert_eq!(BorrowError::Borrowed.to_string(), "already borrowed");
    }
}
