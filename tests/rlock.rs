//! `RLock`: the behaviours of CPython's `BaseLockTests` and `RLockTests`
//! (Lib/test/lock_tests.py) and of parking_lot's `ReentrantMutex` tests.
//!
//! Every join is bounded, so a deadlock fails the test instead of hanging
//! it. Runs on the std backend and on the spinning no-std backend.

use gilock::{RLock, RLockGuard, ReleaseError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::{BOUND, setup, spawn};

static_assertions::assert_not_impl_any!(RLockGuard<'static>: Send, Sync);
static_assertions::assert_impl_all!(RLock: Send, Sync);

#[test]
fn constructor_default_debug_and_static() {
    setup();
    static STATIC: RLock = RLock::new();
    assert!(!STATIC.locked());
    let lock = RLock::default();
    assert_eq!(
        format!("{lock:?}"),
        "RLock { locked: false, owned_by_current_thread: false, recursion_count: 0 }"
    );
    lock.acquire();
    lock.acquire();
    assert_eq!(
        format!("{lock:?}"),
        "RLock { locked: true, owned_by_current_thread: true, recursion_count: 2 }"
    );
    // The lock is dropped while held, at the end of the test: fine
    // (CPython's test_acquire_destroy).
}

#[test]
fn reacquire_and_release_levels() {
    setup();
    let lock = RLock::new();
    lock.acquire();
    lock.acquire();
    lock.release().unwrap();
    lock.acquire();
    assert_eq!(lock.recursion_count(), 2);
    lock.release().unwrap();
    lock.release().unwrap();
    assert!(!lock.locked());
    assert_eq!(lock.recursion_count(), 0);
}

#[test]
fn release_unacquired_is_not_locked() {
    setup();
    let lock = RLock::new();
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    lock.acquire();
    lock.acquire();
    lock.release().unwrap();
    lock.acquire();
    lock.release().unwrap();
    lock.release().unwrap();
    // One release more than acquires is an error, not a wrap-around.
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    assert!(!lock.locked());
    assert!(lock.try_acquire());
    assert_eq!(lock.recursion_count(), 1);
}

#[test]
fn release_by_another_thread_is_not_owner_and_changes_nothing() {
    setup();
    let lock = Arc::new(RLock::new());
    lock.acquire();
    lock.acquire();
    let l = Arc::clone(&lock);
    let (release, owned, count, try_acquire) = spawn(move || {
        (
            l.release(),
            l.is_owned(),
            l.recursion_count(),
            l.try_acquire(),
        )
    })
    .join();
    assert_eq!(release, Err(ReleaseError::NotOwner));
    assert!(!owned);
    assert_eq!(count, 0, "another thread's levels are not visible");
    assert!(!try_acquire);
    // The owner's state is untouched: exactly two levels to release.
    assert!(lock.is_owned());
    assert_eq!(lock.recursion_count(), 2);
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    let text = ReleaseError::NotOwner.to_string();
    assert!(text.contains("cannot release un-acquired lock"), "{text}");
}

#[test]
fn main_thread_cannot_release_a_lock_another_thread_owns() {
    setup();
    let lock = Arc::new(RLock::new());
    let (held_tx, held_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let l = Arc::clone(&lock);
    let owner = spawn(move || {
        l.acquire();
        held_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        let count = l.recursion_count();
        l.release().unwrap();
        count
    });
    held_rx.recv().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
    assert!(lock.locked());
    assert!(!lock.is_owned());
    done_tx.send(()).unwrap();
    assert_eq!(owner.join(), 1);
    assert!(!lock.locked());
}

#[test]
fn is_owned_follows_the_calling_thread() {
    setup();
    let lock = Arc::new(RLock::new());
    assert!(!lock.is_owned());
    lock.acquire();
    assert!(lock.is_owned());
    lock.acquire();
    assert!(lock.is_owned());
    let l = Arc::clone(&lock);
    assert!(!spawn(move || l.is_owned()).join());
    lock.release().unwrap();
    assert!(lock.is_owned());
    lock.release().unwrap();
    assert!(!lock.is_owned());
}

#[test]
fn try_acquire_is_reentrant_and_fails_when_contended() {
    setup();
    let lock = Arc::new(RLock::new());
    let _a = lock.try_lock().unwrap();
    let _b = lock.try_lock().unwrap();
    let l = Arc::clone(&lock);
    assert!(spawn(move || l.try_lock().is_none()).join());
    let _c = lock.try_lock().unwrap();
    assert_eq!(lock.recursion_count(), 3);
}

#[test]
fn timed_acquire_reenters_at_once_and_times_out_when_contended() {
    setup();
    let lock = Arc::new(RLock::new());
    assert!(lock.acquire_timeout(Duration::MAX));
    assert!(lock.acquire_timeout(Duration::ZERO), "re-entry never waits");
    assert_eq!(lock.recursion_count(), 2);
    let l = Arc::clone(&lock);
    let (taken, waited) = spawn(move || {
        let start = Instant::now();
        (
            l.acquire_timeout(Duration::from_millis(100)),
            start.elapsed(),
        )
    })
    .join();
    assert!(!taken);
    assert!(
        waited >= Duration::from_millis(100),
        "returned early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5));
    let l = Arc::clone(&lock);
    let waiter = spawn(move || {
        let taken = l.acquire_timeout(BOUND);
        let count = l.recursion_count();
        l.release().unwrap();
        (taken, count)
    });
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(waiter.join(), (true, 1));
}

#[test]
fn nested_guards() {
    setup();
    let lock = RLock::new();
    {
        let _a = lock.lock();
        {
            let _b = lock.lock();
            {
                let _c = lock.lock();
                assert_eq!(lock.recursion_count(), 3);
            }
            assert_eq!(lock.recursion_count(), 2);
        }
        assert_eq!(lock.recursion_count(), 1);
    }
    assert!(!lock.locked());
}

#[test]
fn is_a_mutex_across_threads() {
    setup();
    // parking_lot's `is_mutex`: the other thread sees the whole sum.
    let lock = Arc::new(RLock::new());
    let sum = Arc::new(AtomicUsize::new(0));
    let outer = lock.lock();
    let (l, s) = (lock.clone(), sum.clone());
    let child = spawn(move || {
        let _guard = l.lock();
        s.load(Ordering::Relaxed)
    });
    for i in 0..100 {
        let _guard = lock.lock();
        sum.fetch_add(i, Ordering::Relaxed);
    }
    drop(outer);
    assert_eq!(child.join(), 4950);
}

#[test]
fn acquire_contended_waits_for_every_level() {
    setup();
    const N: usize = 5;
    let lock = Arc::new(RLock::new());
    let finished = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Barrier::new(N + 1));
    lock.acquire();
    lock.acquire();
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (lock, finished, started) = (lock.clone(), finished.clone(), started.clone());
            spawn(move || {
                started.wait();
                lock.acquire();
                assert_eq!(lock.recursion_count(), 1);
                lock.release().unwrap();
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    started.wait();
    lock.release().unwrap();
    // Let time pass: one level is still held, nobody may get through.
    thread::sleep(Duration::from_millis(50));
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    lock.release().unwrap();
    for t in threads {
        t.join();
    }
    assert_eq!(finished.load(Ordering::SeqCst), N);
}

#[test]
fn guard_drop_on_panic_releases_its_level() {
    setup();
    let lock = Arc::new(RLock::new());
    let outer = lock.lock();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _inner = lock.lock();
        panic!("inside");
    }));
    assert!(panicked.is_err());
    assert_eq!(lock.recursion_count(), 1);
    drop(outer);
    let l = Arc::clone(&lock);
    assert!(spawn(move || l.try_acquire()).join());
}

#[test]
fn guard_after_manual_release_does_not_release_another_threads_lock() {
    setup();
    let lock = Arc::new(RLock::new());
    let guard = lock.lock();
    lock.release().unwrap();
    let (held_tx, held_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let l = Arc::clone(&lock);
    let other = spawn(move || {
        l.acquire();
        held_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        l.release()
    });
    held_rx.recv().unwrap();
    drop(guard); // NotOwner inside the drop: nothing happens
    assert!(lock.locked());
    done_tx.send(()).unwrap();
    assert_eq!(other.join(), Ok(()));
}

#[test]
fn mutual_exclusion_with_nested_guards() {
    setup();
    const THREADS: usize = 4;
    // Fewer under Miri, which interprets every step: the same paths, in seconds.
    const ITERS: usize = if cfg!(miri) { 50 } else { 1000 };
    let lock = Arc::new(RLock::new());
    let inside = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (lock, inside) = (lock.clone(), inside.clone());
            spawn(move || {
                for _ in 0..ITERS {
                    let _a = lock.lock();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    {
                        let _b = lock.lock();
                        assert_eq!(lock.recursion_count(), 2);
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    assert!(!lock.locked());
}
