#![cfg(loom)]
//! Loom model of `ReentrantMutex<T>`: its thread identity (`RawThreadId`)
//! tells loom's model threads apart, so re-entry is granted to the owner
//! only and critical sections of different threads never overlap.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test reentrant_mutex -- --test-threads=1`.

use gilock::ReentrantMutex;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use loom_tests::{EXHAUSTIVE, check};

/// Two levels deep, then a write to data that loom watches.
fn work(m: &ReentrantMutex<UnsafeCell<usize>>) {
    let outer = m.lock();
    // A scheduling point while the lock is held: lock_api keeps the owner
    // and the level count in plain memory and a `core` atomic, which loom
    // does not see, so without it loom would never run the other thread
    // inside this critical section.
    thread::yield_now();
    let inner = m.lock();
    assert!(m.is_owned_by_current_thread());
    // SAFETY: the lock is held; loom reports the write if another thread
    // can reach the cell at the same time.
    inner.with_mut(|p| unsafe { *p += 1 });
    drop(inner);
    assert!(m.is_owned_by_current_thread(), "one level is still held");
    // SAFETY: the outer level still holds the lock.
    outer.with(|p| unsafe { assert!(*p >= 1) });
}

/// A spawned thread and the main thread each lock the mutex two levels
/// deep and write the data. Every schedule must keep the writes apart and
/// count both, and neither thread may see itself as the owner afterwards.
///
/// Mutation: `RawThreadId` took the address of a `std::thread_local!`, as
/// parking_lot's does. Loom runs every model thread on one OS thread, so
/// both threads had the same id and the second one "re-entered" the first
/// one's lock: the main thread, done with its own levels, still counted as
/// the owner while the other thread held the lock, and the model failed
/// with `assertion failed: !m.is_owned_by_current_thread()`.
#[test]
fn nested_levels_exclude_the_other_thread() {
    check(EXHAUSTIVE, || {
        let m = Arc::new(ReentrantMutex::new(UnsafeCell::new(0usize)));
        let other = {
            let m = m.clone();
            thread::spawn(move || {
                work(&m);
                m.is_owned_by_current_thread()
            })
        };
        work(&m);
        assert!(!m.is_owned_by_current_thread());
        assert!(!other.join().unwrap());
        // SAFETY: read with the lock held.
        let total = m.lock().with(|p| unsafe { *p });
        assert_eq!(total, 2);
        assert!(!m.is_locked());
    });
}
