//! `Lock`: the behaviours of CPython's `BaseLockTests` and `LockTests`
//! (Lib/test/lock_tests.py), plus the race-freedom of `release`.
//!
//! Every join is bounded, so a deadlock fails the test instead of hanging
//! it. Runs on the std backend and on the spinning no-std backend.

use gilock::{Lock, ReleaseError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::{BOUND, Bounded, setup, spawn};

#[test]
fn constructor_default_debug_and_static() {
    setup();
    static STATIC: Lock = Lock::new();
    assert!(!STATIC.locked());
    let lock = Lock::default();
    assert_eq!(format!("{lock:?}"), "Lock { locked: false }");
    lock.acquire();
    assert_eq!(format!("{lock:?}"), "Lock { locked: true }");
    // The lock is dropped while held, at the end of the test: fine
    // (CPython's test_acquire_destroy).
}

#[test]
fn acquire_release_and_locked() {
    setup();
    let lock = Lock::new();
    lock.acquire();
    assert!(lock.locked());
    assert_eq!(lock.release(), Ok(()));
    assert!(!lock.locked());
    assert!(lock.try_acquire());
    assert!(!lock.try_acquire(), "a Lock is not re-entrant");
    lock.release().unwrap();
}

#[test]
fn release_unlocked_is_an_error_and_changes_nothing() {
    setup();
    let lock = Lock::new();
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    assert!(!lock.locked());
    assert!(lock.try_acquire());
    lock.release().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    let text = ReleaseError::NotLocked.to_string();
    assert!(text.contains("release unlocked lock"), "{text}");
}

#[test]
fn try_acquire_contended_fails() {
    setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let l = Arc::clone(&lock);
    assert!(!spawn(move || l.try_acquire()).join());
    let l = Arc::clone(&lock);
    assert!(!spawn(move || l.acquire_timeout(Duration::ZERO)).join());
    lock.release().unwrap();
}

#[test]
fn acquire_contended_waits_until_release() {
    setup();
    const N: usize = 5;
    let lock = Arc::new(Lock::new());
    let finished = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Barrier::new(N + 1));
    lock.acquire();
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (lock, finished, started) = (lock.clone(), finished.clone(), started.clone());
            spawn(move || {
                started.wait();
                lock.acquire();
                lock.release().unwrap();
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    started.wait();
    // Let time pass: nobody may get through while the lock is held.
    thread::sleep(Duration::from_millis(50));
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    lock.release().unwrap();
    for t in threads {
        t.join();
    }
    assert_eq!(finished.load(Ordering::SeqCst), N);
    assert!(!lock.locked());
}

#[test]
fn guard_releases_on_scope_exit_and_on_panic() {
    setup();
    let lock = Arc::new(Lock::new());
    {
        let _guard = lock.lock();
        assert!(lock.locked());
    }
    assert!(!lock.locked());
    let l = Arc::clone(&lock);
    let panicked = std::panic::catch_unwind(move || {
        let _guard = l.lock();
        panic!("inside the lock");
    });
    assert!(panicked.is_err());
    let l = Arc::clone(&lock);
    spawn(move || {
        l.acquire();
        l.release().unwrap();
    })
    .join();
    assert!(lock.try_lock().is_some());
}

#[test]
fn guard_can_be_sent_to_another_thread_which_releases() {
    setup();
    static_assertions::assert_impl_all!(gilock::LockGuard<'static>: Send);
    static LOCK: Lock = Lock::new();
    let guard = LOCK.lock();
    spawn(move || drop(guard)).join();
    assert!(!LOCK.locked());
}

#[test]
fn guard_after_manual_release_releases_nothing_more() {
    setup();
    let lock = Lock::new();
    let guard = lock.lock();
    lock.release().unwrap();
    lock.acquire(); // a new acquisition, not the guard's
    drop(guard); // releases the current acquisition, as Python's `with` would
    assert!(!lock.locked());
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
}

#[test]
fn timeout_when_free_succeeds_at_once_even_if_huge() {
    setup();
    let lock = Lock::new();
    let start = Instant::now();
    assert!(lock.acquire_timeout(Duration::MAX));
    lock.release().unwrap();
    assert!(lock.acquire_timeout(Duration::from_secs(5)));
    assert!(start.elapsed() < Duration::from_secs(2));
    lock.release().unwrap();
}

#[test]
fn timeout_contended_fails_after_the_timeout_and_not_before() {
    setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
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
    assert!(waited < Duration::from_secs(5), "far too late: {waited:?}");
    lock.release().unwrap();
}

#[test]
fn timed_acquire_succeeds_when_released_meanwhile() {
    setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let (tx, rx) = mpsc::channel();
    let l = Arc::clone(&lock);
    let waiter = spawn(move || {
        tx.send(()).unwrap();
        l.acquire_timeout(BOUND)
    });
    rx.recv().unwrap();
    lock.release().unwrap();
    assert!(waiter.join());
    assert!(lock.locked());
}

#[test]
fn huge_timeout_waits_like_acquire() {
    setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let l = Arc::clone(&lock);
    let waiter = spawn(move || l.acquire_timeout(Duration::MAX));
    assert!(!waiter.finished_within(Duration::from_millis(30)));
    lock.release().unwrap();
    assert!(waiter.join());
}

#[test]
fn reacquire_blocks_until_another_thread_releases() {
    setup();
    let lock = Arc::new(Lock::new());
    let phase = Arc::new(AtomicUsize::new(0));
    let (l, p) = (lock.clone(), phase.clone());
    let t = spawn(move || {
        l.acquire();
        p.store(1, Ordering::SeqCst);
        l.acquire(); // not re-entrant: waits for the main thread's release
        p.store(2, Ordering::SeqCst);
    });
    let start = Instant::now();
    while phase.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < BOUND);
        thread::yield_now();
    }
    thread::sleep(Duration::from_millis(30));
    assert_eq!(phase.load(Ordering::SeqCst), 1);
    lock.release().unwrap();
    t.join();
    assert_eq!(phase.load(Ordering::SeqCst), 2);
    assert!(lock.locked());
}

#[test]
fn different_thread_may_release() {
    setup();
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let l = Arc::clone(&lock);
    assert_eq!(spawn(move || l.release()).join(), Ok(()));
    assert!(!lock.locked());
    lock.acquire();
    lock.release().unwrap();
}

#[test]
fn state_after_timeout_is_clean() {
    setup();
    let lock = Lock::new();
    lock.acquire();
    assert!(!lock.acquire_timeout(Duration::from_millis(10)));
    lock.release().unwrap();
    assert!(!lock.locked());
    assert!(lock.try_acquire());
    lock.release().unwrap();
}

#[test]
fn racing_releases_release_exactly_once() {
    setup();
    let lock = Arc::new(Lock::new());
    let barrier = Arc::new(Barrier::new(3));
    // Fewer under Miri, which interprets every step: the same paths, in seconds.
    const ROUNDS: usize = if cfg!(miri) { 50 } else { 2000 };
    let releasers: Vec<_> = (0..2)
        .map(|_| {
            let (lock, barrier) = (lock.clone(), barrier.clone());
            spawn(move || {
                let mut ok = 0;
                for _ in 0..ROUNDS {
                    barrier.wait();
                    if lock.release().is_ok() {
                        ok += 1;
                    }
                    barrier.wait();
                }
                ok
            })
        })
        .collect();
    for _ in 0..ROUNDS {
        lock.acquire();
        barrier.wait();
        barrier.wait();
        // Exactly one of the two releases won; the lock is free again.
        assert!(!lock.locked());
        assert!(lock.try_acquire());
        lock.release().unwrap();
    }
    let total: usize = releasers.into_iter().map(Bounded::join).sum();
    assert_eq!(total, ROUNDS);
}

#[test]
fn mutual_exclusion_under_contention() {
    setup();
    const THREADS: usize = 4;
    // Fewer under Miri, which interprets every step: the same paths, in seconds.
    const ITERS: usize = if cfg!(miri) { 100 } else { 2000 };
    let lock = Arc::new(Lock::new());
    let inside = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (lock, inside, total) = (lock.clone(), inside.clone(), total.clone());
            spawn(move || {
                for _ in 0..ITERS {
                    let _guard = lock.lock();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    total.fetch_add(1, Ordering::Relaxed);
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    assert_eq!(total.load(Ordering::Relaxed), THREADS * ITERS);
}

#[test]
fn many_threads_leave_nothing_behind() {
    setup();
    // CPython's test_thread_leak: many short-lived users, then the lock is
    // as new.
    let lock = Arc::new(Lock::new());
    let threads: Vec<_> = (0..15)
        .map(|_| {
            let lock = lock.clone();
            spawn(move || {
                lock.acquire();
                lock.release().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    assert!(!lock.locked());
    assert_eq!(format!("{lock:?}"), "Lock { locked: false }");
}
