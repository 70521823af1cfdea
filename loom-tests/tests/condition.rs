#![cfg(loom)]
//! Loom models of `Condition` and `RawCondition` (the `Condvar`): no lost
//! wakeup, exact FIFO `notify(n)`, an `RLock` restored to its levels after
//! a wait, a timed-out waiter racing a notify, a timeout that notifies do
//! not restart, and `notify_all` requeueing its waiters onto the mutex.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test condition -- --test-threads=1`.

use gilock::{Condition, FairMutex, RLock, RawFairMutex};
use loom::sync::Arc;
use loom::thread;
use loom_tests::{DEFAULT, check};
use std::time::Duration;

/// A fair mutex created inside the model (`from_raw(RawFairMutex::new())`
/// rather than `INIT`, so no lazy-creation synchronisation hides a bug).
fn mutex<T>(value: T) -> FairMutex<T> {
    FairMutex::from_raw(RawFairMutex::new(), value)
}

/// A waiter waits for a flag that a notifier sets under the lock and then
/// announces with `notify_one` *after* unlocking (the pattern where a
/// condition variable that releases the lock before it is queued, or that
/// skips the queue on a stale waiter count, loses the wakeup).
///
/// Mutation: in `RawCondition::wait_on`, counted the waiter (`waiters +=
/// 1`) in `before_sleep` after releasing the lock instead of in `validate`
/// → loom found the interleaving where `notify_one` read a zero count,
/// skipped the queue, and the waiter slept forever ("deadlock": every
/// thread blocked).
#[test]
fn no_lost_wakeup() {
    check(DEFAULT, || {
        let state = Arc::new((mutex(false), Condition::new()));
        let waiter = {
            let state = state.clone();
            thread::spawn(move || {
                let (flag, cond) = &*state;
                let mut guard = flag.lock();
                cond.wait_while(&mut guard, |flag| !*flag);
                assert!(*guard);
            })
        };
        let (flag, cond) = &*state;
        *flag.lock() = true;
        cond.notify_one();
        waiter.join().unwrap();
        assert_eq!(cond.notify_all(), 0);
    });
}

/// Two waiters queue (each announces itself under the lock; the main
/// thread sees both only once each released the lock, which a wait does
/// only after queueing). `notify(1)` must return exactly 1; `notify(5)`,
/// called later in phase 2, exactly min(5, 1) = 1; and the younger waiter
/// must be the one left for phase 2, whenever the woken one runs. (Three
/// waiters take over 40 s at preemption bound 2; two keep the model fast.)
///
/// Mutation: in `RawCondition::notify_n`'s filter, stopped at `left == 1`
/// instead of `left == 0` (an off-by-one that wakes n - 1) → the model
/// failed on the count of `notify(1)` (`left: 0, right: 1`).
#[test]
fn notify_n_wakes_exactly_min_n_waiters_oldest_first() {
    check(DEFAULT, || {
        #[derive(Default)]
        struct State {
            phase: usize,
            queued: Vec<usize>,
            /// (waiter, phase in which it woke)
            woken: Vec<(usize, usize)>,
        }
        let shared = Arc::new((mutex(State::default()), Condition::new(), Condition::new()));
        let waiters: Vec<_> = (0..2)
            .map(|id| {
                let shared = shared.clone();
                thread::spawn(move || {
                    let (state, cond, queued) = &*shared;
                    let mut guard = state.lock();
                    guard.queued.push(id);
                    queued.notify_one();
                    cond.wait(&mut guard);
                    let phase = guard.phase;
                    guard.woken.push((id, phase));
                })
            })
            .collect();
        let (state, cond, queued) = &*shared;
        let mut guard = state.lock();
        queued.wait_while(&mut guard, |s| s.queued.len() < 2);
        guard.phase = 1;
        assert_eq!(cond.notify(1), 1);
        drop(guard);
        let mut guard = state.lock();
        guard.phase = 2;
        assert_eq!(cond.notify(5), 1);
        drop(guard);
        for w in waiters {
            w.join().unwrap();
        }
        let guard = state.lock();
        let youngest = guard.queued[1];
        let (_, phase) = guard.woken.iter().find(|(id, _)| *id == youngest).unwrap();
        assert_eq!(*phase, 2, "the younger waiter was woken by notify(1)");
        assert_eq!(cond.notify_all(), 0);
    });
}

/// A waiter holds an `RLock` two levels deep and waits through its guard.
/// Another thread must be able to take the lock meanwhile with exactly one
/// level of its own (nothing leaked), and the waiter must get back exactly
/// two levels.
///
/// Mutation: in `RLock::reacquire_after_wait`, restored 1 level instead of
/// the saved count → the waiter's `recursion_count()` assertion failed
/// (`left: 1, right: 2`).
#[test]
fn rlock_levels_restored_after_wait_and_never_leaked() {
    check(DEFAULT, || {
        let shared = Arc::new((
            RLock::new(),
            Condition::new(),
            loom::sync::atomic::AtomicBool::new(false),
        ));
        let waiter = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (lock, cond, ready) = &*shared;
                let _outer = lock.lock();
                let mut inner = lock.lock();
                while !ready.load(loom::sync::atomic::Ordering::Relaxed) {
                    cond.wait(&mut inner);
                }
                assert!(lock.is_owned());
                assert_eq!(lock.recursion_count(), 2);
            })
        };
        let (lock, cond, ready) = &*shared;
        assert!(!lock.is_owned());
        assert_eq!(lock.recursion_count(), 0);
        {
            let _guard = lock.lock();
            assert_eq!(lock.recursion_count(), 1);
            ready.store(true, loom::sync::atomic::Ordering::Relaxed);
            cond.notify_one();
        }
        // The main thread's one level is gone with its guard.
        assert!(lock.release().is_err());
        waiter.join().unwrap();
        assert!(!lock.locked());
    });
}

/// A waiter waits with a timeout; the main thread notifies once; a model
/// timer fires the timeout at any moment after the waiter is queued.
/// Whichever wins, the two sides must agree (the waiter reports "notified"
/// exactly when `notify_one` reports having woken someone), the lock is
/// held again, and the condition's waiter count is back to zero.
///
/// Mutation: in `RawCondition::wait_on`'s `timed_out` callback, dropped the
/// `waiters -= 1` → the final `Debug` check failed (`Condition { waiters:
/// 1 }`) in the runs where the timeout won. A second mutation, mapping
/// `ParkResult::TimedOut` to `WaitEnd::Notified`, failed the agreement
/// assertion (`left: true, right: false`).
#[test]
fn timed_out_waiter_racing_notify_keeps_counts_right() {
    check(DEFAULT, || {
        #[derive(Default)]
        struct State {
            waiting: bool,
        }
        let shared = Arc::new((mutex(State::default()), Condition::new(), Condition::new()));
        let waiter = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (state, cond, progress) = &*shared;
                let mut guard = state.lock();
                guard.waiting = true;
                progress.notify_one();
                cond.wait_timeout(&mut guard, Duration::from_millis(1))
            })
        };
        let timer = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (state, _, progress) = &*shared;
                let mut guard = state.lock();
                // Once the waiter has released the lock it is queued with
                // its deadline: only then may the clock tick.
                progress.wait_while(&mut guard, |s| !s.waiting);
                drop(guard);
                gilock::model::fire_timeouts();
            })
        };
        let (_, cond, _) = &*shared;
        let woke_someone = cond.notify_one();
        let notified = waiter.join().unwrap();
        timer.join().unwrap();
        assert_eq!(notified, woke_someone);
        assert_eq!(format!("{cond:?}"), "Condition { waiters: 0 }");
        assert_eq!(cond.notify_all(), 0);
    });
}

/// A thread waits through its `GilGuard` for a flag the Gil protects. The
/// main thread interrupts it if it has published its `ThreadState` yet,
/// then takes the Gil (possible only while the waiter waits, or before it
/// started), sets the flag and notifies. An interrupted wait must return
/// `Err(Interrupted)` wherever the interrupt lands (before the waiter
/// queued, or while it sleeps), consume the interrupt, and hold the Gil
/// again; without an interrupt the wait ends `Ok` by the notify.
///
/// Mutation: in the `GilGuard` target's `interrupt_pending` (checked in
/// `validate`), returned `false` → loom found the interleaving where the
/// interrupt landed after the waiter's `set_waiting_on` but before it
/// queued: `interrupt`'s unpark found nobody, the waiter slept until the
/// notify and returned `Ok(())` (`left: Ok(()), right: Err(Interrupted)`).
#[test]
fn gil_wait_interrupted_or_notified() {
    use gilock::{Gil, Interrupted, ThreadState};
    use loom::sync::Mutex;
    use loom::sync::atomic::{AtomicBool, Ordering};

    /// Executions in which the interrupt was sent: the model must reach
    /// that branch, or it checks nothing about interrupts.
    static INTERRUPTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    check(DEFAULT, || {
        let shared = Arc::new((Gil::new(), Condition::new(), AtomicBool::new(false)));
        let published: Arc<Mutex<Option<std::sync::Arc<ThreadState>>>> = Arc::new(Mutex::new(None));
        let waiter = {
            let (shared, published) = (shared.clone(), published.clone());
            thread::spawn(move || {
                let (gil, cond, flag) = &*shared;
                let mut guard = gil.acquire();
                *published.lock().unwrap() = Some(gil.current_thread_state());
                let result = cond.wait_while(&mut guard, |()| !flag.load(Ordering::Relaxed));
                (result, gil.is_held_by_current_thread())
            })
        };
        let (gil, cond, flag) = &*shared;
        let target = published.lock().unwrap().clone();
        if let Some(target) = &target {
            target.interrupt();
        }
        {
            let _guard = gil.acquire();
            flag.store(true, Ordering::Relaxed);
            cond.notify_one();
        }
        let (result, held) = waiter.join().unwrap();
        assert!(held, "the Gil is held again when the wait returns");
        match &target {
            Some(target) => {
                assert_eq!(result, Err(Interrupted));
                assert!(!target.eval_breaker().is_interrupt_pending(), "consumed");
                INTERRUPTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            None => assert_eq!(result, Ok(())),
        }
        assert_eq!(format!("{cond:?}"), "Condition { waiters: 0 }");
    });
    assert!(INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// A timed wait keeps its deadline across wake-ups: the waiter waits up to
/// 1 ms for a flag that never comes; the main thread, which drives the
/// model clock, twice moves it by 0.6 ms and then notifies (the flag still
/// off), each time once the waiter is queued again. The deadline, taken
/// when the wait began, passes at 1.2 ms: the wait returns false, having
/// waited 1.2 ms.
///
/// Mutation: in `Condition::wait_timeout_while`, took the deadline inside
/// the loop (the timeout restarted at every wake-up) → after the first
/// notify the deadline moved to 1.6 ms, which the clock never reached: loom
/// reported a deadlock.
#[test]
fn a_timeout_is_not_restarted_by_repeated_notifies() {
    check(DEFAULT, || {
        let shared = Arc::new((mutex(false), Condition::new()));
        let waiter = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (flag, cond) = &*shared;
                let mut guard = flag.lock();
                let start = gilock::model::now();
                let got = cond.wait_timeout_while(&mut guard, |f| !*f, Duration::from_millis(1));
                (got, gilock::model::now() - start)
            })
        };
        let (_, cond) = &*shared;
        for _ in 0..2 {
            while gilock::model::parked_threads() == 0 {
                thread::yield_now();
            }
            gilock::model::advance(Duration::from_micros(600));
            cond.notify_one();
        }
        let (got, waited) = waiter.join().unwrap();
        assert!(!got);
        assert_eq!(waited, Duration::from_micros(1200));
    });
}

/// `RawCondition`'s `notify_all` (the `parking_lot::Condvar` drop-in):
/// with the mutex held, it moves every waiter onto the mutex's queue
/// instead of waking them all. W1 waits without a timeout, W2 with one
/// (which the model timer may end at any moment: on the condition's queue
/// before the notify, or on the mutex's queue after it); the main thread
/// sets the flag under the mutex, calls `notify_all` and lets go with
/// `unlock_fair`, which hands the mutex to the oldest requeued waiter.
/// `notify_all` counts exactly the waiters still queued; a waiter that was
/// requeued was notified, even if its deadline then passed on the mutex's
/// queue; the one handed the mutex owns it at once (no second lock); and
/// nobody is left counted as waiting.
///
/// Mutation: in `RawCondition::wait_on`'s `timed_out`, did not note the
/// requeue (`requeued.set(true)` removed) → W2, requeued and then timed out
/// on the mutex's queue, reported a timeout after `notify_all` had counted
/// it: "notified but timed out". Mutation: `notified` counted
/// only the woken waiters, not the requeued ones (`gone =
/// result.unparked_threads`) → a waiter left counted: "RawCondition {
/// waiters: 1 }". Mutation: a waiter handed the mutex (`TOKEN_HANDOFF`)
/// took it again as a plain notified one (`WaitEnd::Done`, then
/// `reacquire`) → loom reported a deadlock (it waited for the mutex it
/// held).
#[test]
fn notify_all_requeues_onto_the_fair_mutex() {
    check(DEFAULT, || {
        let shared = Arc::new((mutex(false), gilock::Condvar::new()));
        let w1 = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (flag, cond) = &*shared;
                let mut guard = flag.lock();
                while !*guard {
                    cond.wait(&mut guard);
                }
            })
        };
        let w2 = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (flag, cond) = &*shared;
                let mut guard = flag.lock();
                // One wait, no loop: its result says how this wait ended.
                cond.wait_for(&mut guard, Duration::from_millis(1))
                    .timed_out()
            })
        };
        let (flag, cond) = &*shared;
        // Both queued on the condition (not merely parked on the mutex, where
        // the timer's step would end a switch interval instead).
        while format!("{:?}", cond.raw()) != "RawCondition { waiters: 2 }" {
            thread::yield_now();
        }
        let timer = gilock::model::Timer::spawn(1);
        let mut guard = flag.lock();
        *guard = true;
        let counted = cond.notify_all();
        lock_api::MutexGuard::unlock_fair(guard);
        w1.join().unwrap();
        let w2_timed_out = w2.join().unwrap();
        timer.join();
        match counted {
            2 => assert!(!w2_timed_out, "notified but timed out"),
            1 => assert!(w2_timed_out, "timed out before the notify, yet not counted"),
            n => panic!("notify_all counted {n} of 2 waiters"),
        }
        assert_eq!(format!("{:?}", cond.raw()), "RawCondition { waiters: 0 }");
        assert!(!flag.is_locked());
    });
}
