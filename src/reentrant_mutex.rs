//! `ReentrantMutex<T>`: `lock_api`'s re-entrant mutex over [`RawFairMutex`],
//! with the crate's own thread identity, so that it is a drop-in for
//! `parking_lot::ReentrantMutex<T>`.
//!
//! `lock_api::RawReentrantMutex` does the bookkeeping (owner and recursion
//! count beside the raw mutex); all this file adds is [`RawThreadId`], the
//! `GetThreadId` that tells it which thread is asking. It takes the id from
//! the crate's thread identity, which is a thread-local counter with `std`,
//! loom's per-model-thread locals under `--cfg loom` (a `std` thread-local
//! would be shared by every model thread), and the user's source without
//! `std` (`set_thread_id_source`).

use crate::fair_mutex::RawFairMutex;
use core::num::NonZeroUsize;

/// The [`lock_api::GetThreadId`] of [`ReentrantMutex`]: the calling thread's
/// id in the crate's thread identity.
///
/// Ids are never reused while the process runs: with `std` they come from
/// a counter, under loom from the model thread, and without `std` from the
/// function installed with `set_thread_id_source` (which must return a
/// number unique to the calling thread, as that function's contract says).
///
/// # Panics
///
/// `nonzero_thread_id` panics when an id does not fit in a `usize` (only
/// possible on targets whose `usize` is narrower than 64 bits, after 2³²
/// threads or with a user source that returns such ids), since truncating
/// it could give two threads one id. Without `std` it panics if no thread
/// identity was installed.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawThreadId;

static_assertions::assert_impl_all!(RawThreadId: Send, Sync);

// SAFETY:
// - no two live threads share an id: `thread_id::current` hands out ids
//   unique for the life of the process (std, loom), or the user's source
//   promises uniqueness per thread (no std);
// - one thread always gets the same id: it is read from a thread-local
//   (std, loom) or from the user's per-thread source;
// - the conversion to `usize` is exact or panics, so it cannot merge ids.
unsafe impl lock_api::GetThreadId for RawThreadId {
    const INIT: Self = RawThreadId;

    #[inline]
    fn nonzero_thread_id(&self) -> NonZeroUsize {
        let id = crate::thread_id::current();
        match NonZeroUsize::try_from(id) {
            Ok(id) => id,
            Err(_) => panic!("gilock thread id {id} does not fit in a usize on this target"),
        }
    }
}

/// A re-entrant mutex protecting a `T`: `lock_api::ReentrantMutex` over
/// [`RawFairMutex`] and [`RawThreadId`], a drop-in for
/// `parking_lot::ReentrantMutex<T>`.
///
/// The thread that holds it may lock it again; every guard releases one
/// level, and the mutex is free once all of the owner's guards are gone.
/// Since several guards of one thread can coexist, a guard gives only `&T`:
/// mutate through interior mutability ([`RefCell`](core::cell::RefCell),
/// [`Cell`](core::cell::Cell)). Between threads it behaves as a
/// [`FairMutex`](crate::FairMutex): running threads may re-take it until a
/// waiter has waited one switch interval, and then it is handed to the
/// oldest waiter. Every `lock_api` method is there: `try_lock`,
/// `try_lock_for` (with `std`), `ReentrantMutexGuard::map`, `bump`,
/// `unlock_fair`, `is_owned_by_current_thread`.
///
/// # Relation to [`RLock`](crate::RLock)
///
/// Both are re-entrant and owned by a thread. `RLock` is Python's
/// `threading.RLock`: it holds no data, has unscoped `acquire` / `release`
/// checked at run time (what an interpreter exposes), reports its
/// `recursion_count`, and a [`Condition`](crate::Condition) can wait on it
/// (releasing every level and restoring them). `ReentrantMutex<T>` is the
/// Rust form: it owns the data it protects and is reached only through
/// scoped guards. `lock_api` keeps its recursion count private, so a
/// condition variable cannot release it; use `RLock` with a `Condition`
/// when you need to wait while holding a re-entrant lock.
///
/// The guards are not `Send`: a level must be released by the thread that
/// took it. They are `Sync` exactly when `T` is (as `parking_lot`'s): a
/// `&guard` on another thread only reaches `&T`, and with a `T` that is not
/// `Sync`, such as the usual `RefCell`, they are not.
///
/// # Example
///
/// ```
/// use gilock::ReentrantMutex;
/// use std::cell::RefCell;
/// # #[cfg(not(feature = "std"))] // the thread identity that no-std builds need
/// # gilock::set_thread_id_source(|| core::num::NonZeroU64::new(1).unwrap());
///
/// let log = ReentrantMutex::new(RefCell::new(Vec::new()));
///
/// fn write(log: &ReentrantMutex<RefCell<Vec<String>>>, line: &str) {
///     log.lock().borrow_mut().push(line.to_string());
/// }
///
/// let outer = log.lock(); // the caller holds the lock ...
/// write(&log, "nested"); // ... and a function it calls locks it again.
/// outer.borrow_mut().push("outer".to_string());
/// drop(outer);
/// assert!(!log.is_locked());
/// assert_eq!(*log.lock().borrow(), ["nested", "outer"]);
/// ```
pub type ReentrantMutex<T> = lock_api::ReentrantMutex<RawFairMutex, RawThreadId, T>;

/// The guard of a [`ReentrantMutex`]: releases one level when it drops.
/// Gives `&T` (several guards of one thread may coexist).
pub type ReentrantMutexGuard<'a, T> =
    lock_api::ReentrantMutexGuard<'a, RawFairMutex, RawThreadId, T>;

/// A [`ReentrantMutexGuard`] narrowed to a part of the data by
/// `ReentrantMutexGuard::map`; it cannot be unlocked temporarily
/// (`unlocked`, `bump`), since the part might move meanwhile.
pub type MappedReentrantMutexGuard<'a, T> =
    lock_api::MappedReentrantMutexGuard<'a, RawFairMutex, RawThreadId, T>;

// The mutex is shared between threads with any `Send` data; a guard never
// leaves its thread, and is shared only when the data may be.
static_assertions::assert_impl_all!(ReentrantMutex<core::cell::RefCell<u32>>: Send, Sync);
static_assertions::assert_not_impl_any!(ReentrantMutexGuard<'static, u32>: Send);
static_assertions::assert_not_impl_any!(MappedReentrantMutexGuard<'static, u32>: Send);
static_assertions::assert_not_impl_any!(ReentrantMutexGuard<'static, core::cell::RefCell<u32>>: Send, Sync);
static_assertions::assert_not_impl_any!(MappedReentrantMutexGuard<'static, core::cell::RefCell<u32>>: Send, Sync);

#[cfg(all(test, feature = "std", not(loom)))]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use lock_api::GetThreadId;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;
    use std::vec::Vec;

    /// A thread's id is stable, and differs from every other live thread's.
    #[test]
    fn thread_ids_are_stable_and_distinct() {
        let mine = RawThreadId.nonzero_thread_id();
        assert_eq!(RawThreadId.nonzero_thread_id(), mine);
        let (tx, rx) = mpsc::channel();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let id = RawThreadId.nonzero_thread_id();
                    tx.send((id, RawThreadId.nonzero_thread_id())).unwrap();
                })
            })
            .collect();
        drop(tx);
        let mut ids = std::vec![mine];
        for _ in 0..4 {
            let (first, second) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(first, second, "one thread, two ids");
            ids.push(first);
        }
        for t in threads {
            t.join().unwrap();
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 5, "two threads share an id");
    }

    /// The owner re-enters; another thread is kept out until every level is
    /// released.
    #[test]
    fn reentry_by_the_owner_only() {
        let m = Arc::new(ReentrantMutex::new(RefCell::new(0)));
        let a = m.lock();
        let b = m.lock();
        *b.borrow_mut() += 1;
        assert!(m.is_owned_by_current_thread());
        let m2 = Arc::clone(&m);
        let try_other = move || {
            let m2 = Arc::clone(&m2);
            std::thread::spawn(move || {
                let guard = m2.try_lock();
                (guard.is_some(), m2.is_owned_by_current_thread())
            })
            .join()
            .unwrap()
        };
        assert_eq!(try_other(), (false, false));
        drop(b);
        assert_eq!(try_other(), (false, false), "one level still held");
        drop(a);
        assert!(!m.is_locked());
        assert_eq!(try_other(), (true, true));
        assert!(!m.is_locked(), "the other thread's guard released it");
        assert_eq!(*m.lock().borrow(), 1);
    }

    /// A timed lock by another thread gives up while the owner holds it, and
    /// succeeds once it is free; the owner's timed lock re-enters at once.
    #[test]
    fn try_lock_for_waits_for_the_owner() {
        let m = Arc::new(ReentrantMutex::new(()));
        let g = m.lock();
        assert!(m.try_lock_for(Duration::ZERO).is_some(), "owner re-enters");
        let m2 = Arc::clone(&m);
        let other = std::thread::spawn(move || m2.try_lock_for(Duration::from_millis(1)).is_some());
        assert!(!other.join().unwrap());
        drop(g);
        let m2 = Arc::clone(&m);
        let other = std::thread::spawn(move || m2.try_lock_for(Duration::from_secs(10)).is_some());
        assert!(other.join().unwrap());
    }

    /// `map` narrows the guard and still holds the level.
    #[test]
    fn mapped_guard_holds_the_level() {
        let m = ReentrantMutex::new((1u8, RefCell::new(2u8)));
        let mapped = ReentrantMutexGuard::map(m.lock(), |pair| &pair.1);
        *mapped.borrow_mut() += 1;
        assert!(m.is_owned_by_current_thread());
        drop(mapped);
        assert!(!m.is_locked());
        assert_eq!(*m.lock().1.borrow(), 3);
    }
}
