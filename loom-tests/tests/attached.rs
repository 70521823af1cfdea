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

use gilock::{
    Barrier, BrokenBarrierError, Condition, Event, FairMutex, Gil, Interrupted, Lock, MutexExt,
    RLock, RawFairMutex, Semaphore, WaitError,
};
use loom::sync::Arc;
use loom::thread;
use loom_tests::{DEFAULT, Guarded, Slot, check, interrupter, slot};
use std::time::Duration;

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
        let slot: Slot = slot();
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
        let slot: Slot = slot();
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
        let slot: Slot = slot();
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

/// `Semaphore::acquire_timeout_with`: the waiter holds the Gil and waits up
/// to 1 ms for a permit that the main thread releases only under the Gil;
/// the model timer and an interrupter race the release. The waiter ends
/// holding the Gil, and the permit is taken exactly when the call says
/// `Ok(true)`.
///
/// Mutation: in `RawSemaphore::acquire`, skipped `waiter.detach(..)` (the
/// waiter parked holding the Gil) → loom reported a deadlock: the main
/// thread waited for the Gil, the waiter for the permit.
#[test]
fn semaphore_acquire_timeout_with_races_release_timeout_and_interrupt() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let sem = Arc::new(Semaphore::new(0));
        let slot = slot();
        let waiter = {
            let (gil, sem, slot) = (gil.clone(), sem.clone(), slot.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                let result = sem.acquire_timeout_with(&mut guard, Duration::from_millis(1));
                assert!(gil.is_held_by_current_thread());
                result
            })
        };
        let interrupter = interrupter(&slot);
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        {
            let _guard = gil.acquire();
            sem.release_one();
        }
        let interrupted = interrupter.join().unwrap();
        let result = waiter.join().unwrap();
        timer.join().unwrap();
        if result == Err(Interrupted) {
            assert!(interrupted);
        }
        let taken = result == Ok(true);
        assert_eq!(sem.available_permits(), usize::from(!taken));
        assert_eq!(
            format!("{:?}", *sem),
            format!(
                "Semaphore {{ available_permits: {}, has_waiters: false }}",
                usize::from(!taken)
            )
        );
        assert!(!gil.is_locked());
    });
}

/// `Event::wait_timeout_with`: the waiter holds the Gil and waits up to
/// 1 ms for an event the main thread sets under the Gil; the timer and an
/// interrupter race the set. The waiter ends holding the Gil; `Ok(true)`
/// only for a set event, `Err` only when interrupted.
///
/// Mutation: in `Event::wait_waiting`, skipped `waiter.detach(key)` →
/// "deadlock" (the main thread waited for the Gil, the waiter for the set).
#[test]
fn event_wait_timeout_with_races_set_timeout_and_interrupt() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let event = Arc::new(Event::new());
        let slot = slot();
        let waiter = {
            let (gil, event, slot) = (gil.clone(), event.clone(), slot.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                let result = event.wait_timeout_with(&mut guard, Duration::from_millis(1));
                assert!(gil.is_held_by_current_thread());
                if result == Ok(true) {
                    assert!(event.is_set());
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
            event.set();
        }
        let interrupted = interrupter.join().unwrap();
        let result = waiter.join().unwrap();
        timer.join().unwrap();
        if result == Err(Interrupted) {
            assert!(interrupted);
        }
        assert!(!gil.is_locked());
    });
}

/// `Barrier::wait_timeout_with` and `wait_with`, two parties that hold the
/// Gil when they arrive: W arrives first and waits up to 1 ms; then the
/// main thread arrives through its own guard; the model timer and an
/// interrupter of W race them. Both pass, with the indices 0 and 1, or
/// neither does (W timed out or interrupted, the main thread finds the
/// round broken), and both hold the Gil afterwards.
///
/// Mutation: in `Barrier::arrive`, skipped `waiter.detach(key)` before the
/// second critical section (W parked holding the Gil, and out of the
/// interrupt's reach) → loom reported a deadlock: the main thread waited
/// for the Gil to arrive, W for the main thread.
#[test]
fn barrier_wait_with_races_arrival_timeout_and_interrupt() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let barrier = Arc::new(Barrier::new(2));
        let slot = slot();
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        let w = {
            let (gil, barrier, slot) = (gil.clone(), barrier.clone(), slot.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                let result = barrier.wait_timeout_with(&mut guard, Duration::from_millis(1));
                assert!(gil.is_held_by_current_thread());
                result
            })
        };
        // W has arrived: it let go of the Gil and sleeps on the barrier (or
        // has timed out there already, breaking the round).
        while gilock::model::parked_threads() == 0 && !barrier.broken() {
            thread::yield_now();
        }
        let interrupter = interrupter(&slot);
        let mine = {
            let mut guard = gil.acquire();
            let mine = barrier.wait_with(&mut guard);
            assert!(gil.is_held_by_current_thread());
            mine
        };
        let interrupted = interrupter.join().unwrap();
        let theirs = w.join().unwrap();
        timer.join().unwrap();
        match (mine, theirs) {
            (Ok(Ok(a)), Ok(Ok(b))) => {
                let mut indices = [a, b];
                indices.sort_unstable();
                assert_eq!(indices, [0, 1]);
                assert!(!barrier.broken());
            }
            (Ok(Err(BrokenBarrierError)), Ok(Err(BrokenBarrierError)) | Err(Interrupted)) => {
                assert!(barrier.broken());
            }
            (mine, theirs) => panic!("one passed, the other did not: {mine:?} {theirs:?}"),
        }
        if theirs == Err(Interrupted) {
            assert!(interrupted);
        }
        assert!(!gil.is_locked());
    });
}

/// `MutexExt::try_lock_for_with` on a `FairMutex`: the main thread holds
/// the mutex and lets go of it only under the Gil; the waiter holds the
/// Gil and tries for 1 ms; the timer and an interrupter race the unlock.
/// The waiter ends holding the Gil, holds the mutex exactly when the call
/// says `Ok(Some(_))` (the data inside is only touched then, which loom
/// checks), and the mutex ends idle, whoever left its queue how.
///
/// Mutation: `MutexExt::try_lock_for_with` returned `Ok(None)` for a wait
/// that took the mutex (`!timed(..)?` negated) → the mutex stayed locked by
/// nobody: "the mutex was left taken". (Skipping `tidy_after_leaving` when
/// an interrupt takes the waiter out of the queue passes, at bounds 2 and
/// 3: the bits it would clear are cleared by the holder's unlock, which
/// always follows, so it only saves that unlock a look at the queue.)
#[test]
fn fair_mutex_try_lock_for_with_races_unlock_timeout_and_interrupt() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let mutex = Arc::new(FairMutex::from_raw(RawFairMutex::new(), Guarded::new()));
        let slot = slot();
        let held = mutex.lock();
        let waiter = {
            let (gil, mutex, slot) = (gil.clone(), mutex.clone(), slot.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                let result = mutex.try_lock_for_with(&mut guard, Duration::from_millis(1));
                assert!(gil.is_held_by_current_thread());
                result.map(|data| match data {
                    Some(data) => {
                        data.bump();
                        true
                    }
                    None => false,
                })
            })
        };
        let interrupter = interrupter(&slot);
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        held.bump();
        {
            let _guard = gil.acquire();
            drop(held);
        }
        let interrupted = interrupter.join().unwrap();
        let result = waiter.join().unwrap();
        timer.join().unwrap();
        if result == Err(Interrupted) {
            assert!(interrupted);
        }
        assert!(!mutex.is_locked(), "the mutex was left taken");
        assert_eq!(mutex.lock().get(), 1 + usize::from(result == Ok(true)));
        // SAFETY:
        // - `raw` is unsafe because locking or unlocking behind the
        //   Mutex's back breaks its guards' promise;
        // - its `Debug` only reads the state word.
        let raw = unsafe { mutex.raw() };
        assert_eq!(
            format!("{raw:?}"),
            "RawFairMutex { locked: false, waiters: false, drop_requested: false, switch_interval: 5ms }"
        );
        assert!(!gil.is_locked());
    });
}

/// `ThreadStatus::Waiting` in a `_with` wait means "queued on the
/// primitive": a thread seen `Waiting` there is woken by the primitive's
/// next notify. The waiter holds the Gil and a `Lock`, and waits on a
/// condition with `wait_on_lock_with`; the main thread watches its status
/// and, once it reads `Waiting`, notifies once: that notify must find it
/// (`notify_one` reads the condition's waiter count, a plain load, before
/// it looks at the queue: only the status's Release/Acquire pair orders
/// that count after the waiter's).
///
/// Mutation: the thread word's store (`ThreadWord::put`, which every
/// status change goes through) `Relaxed` instead of `Release`, and
/// (separately) `ThreadWord::status`'s load `Relaxed` instead of `Acquire`
/// → "seen Waiting, yet the notify found nobody" (re-checked 2 December,
/// when the status moved into the thread word).
#[test]
fn a_thread_seen_waiting_is_woken_by_the_next_notify() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let shared = Arc::new((Lock::new(), Condition::new()));
        let slot = slot();
        let waiter = {
            let (gil, shared, slot) = (gil.clone(), shared.clone(), slot.clone());
            thread::spawn(move || {
                let (lock, cond) = &*shared;
                let mut guard = gil.acquire();
                lock.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                let result = cond.wait_on_lock_with(lock, &mut guard);
                lock.release().unwrap();
                result
            })
        };
        let target = loop {
            if let Some(target) = slot.lock().unwrap().clone() {
                break target;
            }
            thread::yield_now();
        };
        while target.status() != gilock::ThreadStatus::Waiting {
            thread::yield_now();
        }
        let (_, cond) = &*shared;
        assert!(
            cond.notify_one(),
            "seen Waiting, yet the notify found nobody"
        );
        assert_eq!(waiter.join().unwrap(), Ok(()));
    });
}
