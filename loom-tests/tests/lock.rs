#![cfg(loom)]
//! Loom models of `Lock`: racing releases release exactly once, and a timed
//! acquire racing a release and the model timer leaves the lock consistent.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test lock -- --test-threads=1`.

use gilock::{Lock, ReleaseError};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use loom_tests::{EXHAUSTIVE, Guarded, check};
use std::time::Duration;

/// The main thread holds the lock; two threads release it at the same
/// time (any thread may release a `Lock`). Exactly one must succeed, the
/// other get `NotLocked`, and the lock must end free and usable: never
/// unlocked twice, never left half-locked.
///
/// Mutation: in `Lock::release`, checked `locked()` and then cleared the
/// flag with a plain store before unlocking (check-then-act instead of
/// one swap) → both releases returned `Ok` and the model failed with
/// `left: 2, right: 1` on the count of successful releases.
#[test]
fn racing_releases_release_exactly_once() {
    check(EXHAUSTIVE, || {
        let lock = Arc::new(Lock::new());
        let released = Arc::new(AtomicUsize::new(0));
        lock.acquire();
        let releasers: Vec<_> = (0..2)
            .map(|_| {
                let (lock, released) = (lock.clone(), released.clone());
                thread::spawn(move || match lock.release() {
                    Ok(()) => {
                        released.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => assert_eq!(e, ReleaseError::NotLocked),
                })
            })
            .collect();
        for r in releasers {
            r.join().unwrap();
        }
        assert_eq!(released.load(Ordering::Relaxed), 1);
        assert!(!lock.locked());
        assert!(lock.try_acquire());
        lock.release().unwrap();
    });
}

/// One thread waits for the held lock with a timeout while the holder
/// releases it and a model timer fires the timeout, in every order.
/// Whichever wins, the waiter's answer must match the lock's state: if it
/// says it got the lock, it holds it and can release it; if it timed out,
/// the lock is free after the holder's release.
///
/// Mutation: in `Lock::acquire_timeout`, returned `true` after a successful
/// timed `lock_until` without setting `held` → the waiter's
/// `assert!(lock.locked())` failed in the runs where it got the lock.
#[test]
fn timed_acquire_racing_release_and_timer() {
    check(EXHAUSTIVE, || {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let waiter = {
            let lock = lock.clone();
            thread::spawn(move || {
                let taken = lock.acquire_timeout(Duration::from_millis(1));
                if taken {
                    assert!(lock.locked());
                    lock.release().unwrap();
                }
                taken
            })
        };
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        lock.release().unwrap();
        let _taken = waiter.join().unwrap();
        timer.join().unwrap();
        assert!(!lock.locked());
        assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
        assert!(lock.try_acquire());
    });
}

/// A `Lock` is not owned: another thread may release it, and that release
/// sees what the acquirer wrote before it acquired, as if the releaser had
/// taken the lock itself (the release claims the lock through the flag the
/// acquirer set). The main thread writes data and takes the lock; another
/// thread releases the lock as soon as it sees it locked and reads the
/// data: only the flag orders the two.
///
/// Mutation: `Lock::mark_held`'s store `Relaxed` instead of `Release`, and
/// (separately) `claim_release`'s swap `Relaxed` instead of `Acquire` →
/// "Causality violation: Concurrent read and write accesses to
/// `UnsafeCell`".
#[test]
fn a_release_by_another_thread_sees_what_the_acquirer_wrote() {
    check(EXHAUSTIVE, || {
        let shared = Arc::new((Lock::new(), Guarded::new()));
        let releaser = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (lock, data) = &*shared;
                while !lock.locked() {
                    thread::yield_now();
                }
                lock.release()
                    .expect("locked, and only this thread releases");
                data.get()
            })
        };
        let (lock, data) = &*shared;
        data.bump();
        lock.acquire();
        assert_eq!(releaser.join().unwrap(), 1);
        assert!(!lock.locked());
    });
}
