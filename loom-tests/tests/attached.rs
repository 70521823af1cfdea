#![cfg(loom)]
//! Loom models of the attached waits (invariant 9: a thread never sleeps
//! on a primitive while it holds the Gil; whichever of release, notify,
//! timeout and interrupt wins, the waiter ends holding the Gil, with the
//! primitive taken exactly when the call says so).
//!
//! In each model the primitive's other user needs the Gil too, as an
//! interpreter thread does: a waiter that slept on the primitive holding
//! the Gil would deadlock against it, which loom reports.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test attached -- --test-threads=1`.

use gilock::{Condition, Gil, Interrupted, Lock, RLock, ThreadState, WaitError};
use loom::sync::{Arc, Mutex};
use loom::thread;
use loom_tests::{DEFAULT, check};
use std::time::Duration;

type Slot = Arc<Mutex<Option<std::sync::Arc<ThreadState>>>>;

/// Interrupts the thread whose state is published in `slot`, if it was
/// published by the time this runs (it may not be: then nobody is
/// interrupted, which is one more execution to check).
fn interrupter(slot: &Slot) -> thread::JoinHandle<bool> {
    let slot = slot.clone();
    thread::spawn(move || match slot.lock().unwrap().clone() {
        Some(target) => {
            target.interrupt();
            true
        }
        None => false,
    })
}

/// The main thread holds a `Lock` and needs the Gil to release it; the
/// waiter holds the Gil and takes the lock with `acquire_with`; a third
/// thread may interrupt the waiter at any moment. The waiter ends holding
/// the Gil either way, and holds the lock exactly when the call says `Ok`.
///
/// Mutation: in `RawFairMutex::lock_slow`, skipped `waiter.detach(key)`
/// (the waiter kept the Gil while it slept on the lock) → loom reported a
/// deadlock: the main thread waited for the Gil, the waiter for the lock.
/// Mutation: in `Attached::reattach`, did not take the Gil back after an
/// interrupt (returned early when the wait ended `Interrupted`) → the
/// waiter's `is_held_by_current_thread()` assertion failed.
#[test]
fn lock_acquire_with_races_release_and_interrupt() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let lock = Arc::new(Lock::new());
        let slot: Slot = Arc::new(Mutex::new(None));
        lock.acquire();
        let waiter = {
            let (gil, lock, slot) = (gil.clone(), lock.clone(), slot.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                let result = lock.acquire_with(&mut guard);
                assert!(gil.is_held_by_current_thread());
                if result.is_ok() {
                    assert!(lock.locked());
                    lock.release().unwrap();
                }
                result
            })
        };
        let interrupter = interrupter(&slot);
        {
            // Needs the Gil to let go of the lock: the waiter must have let
            // go of the Gil if it waits.
            let _guard = gil.acquire();
            lock.release().unwrap();
        }
        let interrupted = interrupter.join().unwrap();
        let result = waiter.join().unwrap();
        assert!(result.is_ok() || interrupted);
        assert!(!lock.locked(), "the lock was left taken");
        assert!(!gil.is_locked());
    });
}

/// As above with an `RLock` owned by the main thread, and a timed
/// `acquire_timeout_with` that the model timer may end: whichever of the
/// release, the timeout and the interrupt wins, the waiter owns the lock
/// exactly when the call says `Ok(true)`, and holds the Gil.
///
/// Mutation: in `RLock::acquire_waiting`, recorded the owner before the
/// mutex was taken (`take_ownership` before `lock_waiting`) → loom found
/// the waiter "owning" a lock it timed out on (`is_owned()` true after
/// `Ok(false)`).
#[test]
fn rlock_acquire_timeout_with_races_release_timeout_and_interrupt() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let lock = Arc::new(RLock::new());
        let slot: Slot = Arc::new(Mutex::new(None));
        lock.acquire();
        let waiter = {
            let (gil, lock, slot) = (gil.clone(), lock.clone(), slot.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                let result = lock.acquire_timeout_with(&mut guard, Duration::from_millis(1));
                assert!(gil.is_held_by_current_thread());
                assert_eq!(lock.is_owned(), result == Ok(true));
                if result == Ok(true) {
                    lock.release().unwrap();
                }
                result
            })
        };
        let interrupter = interrupter(&slot);
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        {
            let _guard = gil.acquire();
            lock.release().unwrap();
        }
        let interrupted = interrupter.join().unwrap();
        let result = waiter.join().unwrap();
        timer.join().unwrap();
        if result == Err(Interrupted) {
            assert!(interrupted);
        }
        assert!(!lock.locked());
    });
}

/// The waiter holds the Gil and an `RLock` two levels deep, and waits on a
/// condition with `wait_on_rlock_with`; the main thread takes the `RLock`
/// (possible only once every level was let go of) and then the Gil
/// (possible only once the waiter let go of it), notifies and lets go of
/// both; a third thread may interrupt the waiter. However the wait ends,
/// the waiter owns the lock two levels deep and holds the Gil; it reports
/// "notified" exactly when the main thread's notify woke it.
///
/// Mutation: in `RawCondition::wait_on`, took the Gil back before the lock
/// (`waiter.reattach` before `target.reacquire`) → loom reported a
/// deadlock: the waiter held the Gil and waited for the lock, whose holder
/// (the notifier) waited for the Gil.
#[test]
fn condition_wait_on_rlock_with_races_notify_and_interrupt() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let shared = Arc::new((RLock::new(), Condition::new()));
        let slot: Slot = Arc::new(Mutex::new(None));
        let waiter = {
            let (gil, shared, slot) = (gil.clone(), shared.clone(), slot.clone());
            thread::spawn(move || {
                let (lock, cond) = &*shared;
                let mut guard = gil.acquire();
                lock.acquire();
                lock.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                let result = cond.wait_on_rlock_with(lock, &mut guard);
                assert!(gil.is_held_by_current_thread());
                assert_eq!(lock.recursion_count(), 2);
                lock.release().unwrap();
                lock.release().unwrap();
                result
            })
        };
        let interrupter = interrupter(&slot);
        let (lock, cond) = &*shared;
        // Once the waiter holds the lock, taking it succeeds only when the
        // waiter let go of every level (queued) or is done (interrupted).
        while slot.lock().unwrap().is_none() {
            thread::yield_now();
        }
        lock.acquire();
        let woken = {
            let _guard = gil.acquire();
            cond.notify_on_rlock(lock, 1).unwrap()
        };
        lock.release().unwrap();
        let interrupted = interrupter.join().unwrap();
        let result = waiter.join().unwrap();
        match result {
            Ok(()) => assert_eq!(woken, 1, "woken without a notify"),
            Err(WaitError::Interrupted) => {
                assert!(interrupted);
                assert_eq!(woken, 0, "an interrupted waiter counted as notified");
            }
            Err(error) => panic!("unexpected {error:?}"),
        }
        assert!(!lock.locked());
    });
}
