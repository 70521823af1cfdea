#![cfg(loom)]
//! Loom models of whom the `Gil` goes to: arrival order among several
//! waiters (invariant 3), drop requests that outlive their asker (cleared
//! on release), a `detach` with a drop request pending, the `Interactive`
//! starvation bound (invariant 11), and a waiter woken to compete for the
//! Gil that is interrupted instead.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test gil_scheduling -- --test-threads=1`.

use gilock::{Gil, Interrupted, SwitchPolicy};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use loom_tests::{DEFAULT, Reached, check, interrupter, slot};
use std::time::Duration;

type Log = Arc<Mutex<Vec<&'static str>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// Waits (yielding) until `n` threads are parked in gilock's primitives.
fn until_parked(n: usize) {
    while gilock::model::parked_threads() < n {
        thread::yield_now();
    }
}

/// Invariant 3 under `Fifo`, with three waiters: the main thread holds the
/// Gil while A, B and C queue in that order, and lets go; each lets go in
/// turn. The Gil must go A, B, C: the oldest waiter first at every
/// handoff.
///
/// Mutation: in `Gil::find_heir`, kept the *highest* ticket (`ticket > t`
/// for `ticket < t`, the newest waiter first) → the log read
/// `["C", "B", "A"]`.
#[test]
fn fifo_among_three_waiters() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let log = log();
        let guard = gil.acquire();
        let waiters = queue_three(&gil, &log);
        drop(guard);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(*log.lock().unwrap(), ["A", "B", "C"]);
    });
}

/// Spawns A, B and C, each taking the Gil once and logging its name, and
/// returns once all three are parked, in that order.
fn queue_three(gil: &Arc<Gil>, log: &Log) -> Vec<thread::JoinHandle<()>> {
    let mut waiters = Vec::new();
    for (i, name) in ["A", "B", "C"].into_iter().enumerate() {
        let (gil, log) = (gil.clone(), log.clone());
        waiters.push(thread::spawn(move || {
            let _guard = gil.acquire();
            log.lock().unwrap().push(name);
        }));
        until_parked(i + 1);
    }
    waiters
}

/// A drop request whose asker gave up must not outlive the holder's
/// release: the main thread holds the Gil (interval 1 ms) while a waiter
/// tries for 2 ms; the model timer's first step ends the waiter's interval
/// (it asks the main thread to drop the Gil), its second the timeout (it
/// leaves). The main thread, which never passed a checkpoint, lets go and
/// takes the Gil again: no request may be pending then, or its first
/// checkpoint would switch for nobody.
///
/// Mutation: in `Gil::release_quietly`, skipped the clear of `DROP_REQUEST`
/// on the fast path → "a stale drop request survived the release".
#[test]
fn a_drop_request_is_cleared_on_release_when_its_asker_timed_out() {
    static ASKED: Reached = Reached::new();
    check(DEFAULT, || {
        let gil = Arc::new(Gil::with_switch_interval(Duration::from_millis(1)));
        let guard = gil.acquire();
        let waiter = {
            let gil = gil.clone();
            thread::spawn(move || gil.try_acquire_for(Duration::from_millis(2)).is_some())
        };
        let timer = gilock::model::Timer::spawn(2);
        // The main thread holds the Gil all along: the waiter can only time
        // out.
        assert!(!waiter.join().unwrap());
        timer.join();
        if guard.thread_state().eval_breaker().is_drop_requested() {
            ASKED.hit();
        }
        drop(guard);
        let guard = gil.acquire();
        assert!(
            !guard.thread_state().eval_breaker().is_drop_requested(),
            "a stale drop request survived the release"
        );
    });
    ASKED.assert_reached("a drop request from a waiter that then timed out");
}

/// How the main thread of `a_switch_is_reported_only_if_the_waiter_held_the_gil`
/// offers the Gil.
#[derive(Clone, Copy)]
enum Offer {
    Checkpoint,
    Yield,
}

/// What a checkpoint or `yield_now` reports is what happened: the main
/// thread holds the Gil (interval 1 ms) while a waiter tries for 2 ms (the
/// model timer's first step ends its interval, and it asks for a drop; the
/// second its timeout), and offers the Gil once. It reports a switch
/// exactly when the waiter held the Gil meanwhile. The waiter may time out
/// after the main thread saw it waiting and before the release: the
/// release then frees the Gil, the main thread takes it back, and nothing
/// switched.
///
/// Mutations (4 December), each caught by its variant: in
/// `GilGuard::checkpoint_slow`, `switched = handed || count moved` with
/// `count == before` → "reported a switch, but the waiter never held the
/// Gil" (the same in `yield_now`, by the `Yield` variant); in `yield_now`,
/// `||` as `&&` → "the waiter held the Gil, but no switch was reported"
/// (a yield that found the waiter between two parks freed the Gil, and
/// the waiter took it). The checkpoint's `||` as `&&` passes here: a
/// forced release keeps the Gil for a waiter between two parks, so only a
/// waiter arriving fresh, between raising the waiters bit and queuing, can
/// take a Gil that a checkpoint freed, and this model has none.
fn a_switch_is_reported_only_if_the_waiter_held_the_gil(offer: Offer) {
    check(DEFAULT, move || {
        let gil = Arc::new(Gil::with_switch_interval(Duration::from_millis(1)));
        let held = Arc::new(AtomicBool::new(false));
        let mut guard = gil.acquire();
        let waiter = {
            let (gil, held) = (gil.clone(), held.clone());
            thread::spawn(move || {
                if let Some(_guard) = gil.try_acquire_for(Duration::from_millis(2)) {
                    held.store(true, Ordering::SeqCst);
                }
            })
        };
        let timer = gilock::model::Timer::spawn(2);
        let switched = match offer {
            Offer::Checkpoint => guard.checkpoint().switched,
            Offer::Yield => guard.yield_now(),
        };
        // The waiter can hold the Gil only through that offer: the main
        // thread holds it otherwise, until after this look.
        let waiter_held = held.load(Ordering::SeqCst);
        assert!(
            !switched || waiter_held,
            "reported a switch, but the waiter never held the Gil"
        );
        assert!(
            switched || !waiter_held,
            "the waiter held the Gil, but no switch was reported"
        );
        drop(guard);
        waiter.join().unwrap();
        timer.join();
    });
}

#[test]
fn a_checkpoint_reports_a_switch_only_if_the_waiter_held_the_gil() {
    a_switch_is_reported_only_if_the_waiter_held_the_gil(Offer::Checkpoint);
}

#[test]
fn a_yield_reports_a_switch_only_if_the_waiter_held_the_gil() {
    a_switch_is_reported_only_if_the_waiter_held_the_gil(Offer::Yield);
}

/// As above, but the asker is interrupted out of `acquire_interruptible`
/// instead of timing out. The interrupt's wake-up takes it out of the park
/// queue without the Gil's `timed_out` callback, so `PARKED` stays set and
/// the main thread's release takes the slow path, finds nobody to hand the
/// Gil to, and frees it: that path must clear the request too.
///
/// Mutation: in `Gil::wake_heir`'s callback, skipped the clear of the
/// releaser's `DROP_REQUEST` where nobody is left to hand the Gil to →
/// "a stale drop request survived the release".
#[test]
fn a_drop_request_is_cleared_on_release_when_its_asker_was_interrupted() {
    static ASKED: Reached = Reached::new();
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let slot = slot();
        let guard = gil.acquire();
        let waiter = {
            let (gil, slot) = (gil.clone(), slot.clone());
            thread::spawn(move || {
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                gil.acquire_interruptible().map(drop)
            })
        };
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        // Interrupts the waiter once it has published its state.
        let interrupter = {
            let slot = slot.clone();
            thread::spawn(move || {
                loop {
                    if let Some(target) = slot.lock().unwrap().clone() {
                        target.interrupt();
                        return;
                    }
                    thread::yield_now();
                }
            })
        };
        assert_eq!(waiter.join().unwrap(), Err(Interrupted));
        interrupter.join().unwrap();
        timer.join().unwrap();
        if guard.thread_state().eval_breaker().is_drop_requested() {
            ASKED.hit();
        }
        drop(guard);
        let guard = gil.acquire();
        assert!(
            !guard.thread_state().eval_breaker().is_drop_requested(),
            "a stale drop request survived the release"
        );
    });
    ASKED.assert_reached("a drop request from a waiter that was then interrupted");
}

/// Under `Interactive`, `detach` hands the Gil to a waiter, the one that
/// asked for it if a drop request is pending, rather than freeing it for
/// the waiters to compete for. The main thread holds the Gil, a waiter
/// queues and (one model-clock step ending its interval) may ask for a
/// drop; the main thread then detaches around nothing and comes straight
/// back. If the request was pending when it detached, the waiter must have
/// held the Gil before the main thread has it back, and no request is left.
///
/// Mutation: in `Gil::wake_heir`'s callback, a `How::Handoff` release freed
/// the word and woke the heir with `DEFAULT_UNPARK_TOKEN` to compete (the
/// old `Compete` path) → the main thread, back first, re-took the Gil by
/// compare-and-swap: the log read `["main"]` where `["waiter", "main"]` was
/// due.
#[test]
fn detach_with_a_drop_request_pending_hands_the_gil_over() {
    static PENDING: Reached = Reached::new();
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        gil.set_policy(SwitchPolicy::Interactive);
        let log = log();
        let mut guard = gil.acquire();
        let waiter = {
            let (gil, log) = (gil.clone(), log.clone());
            thread::spawn(move || {
                let _guard = gil.acquire();
                log.lock().unwrap().push("waiter");
            })
        };
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        let pending = guard.thread_state().eval_breaker().is_drop_requested();
        guard.detach(|| {});
        log.lock().unwrap().push("main");
        if pending {
            PENDING.hit();
            assert_eq!(*log.lock().unwrap(), ["waiter", "main"]);
            assert!(!guard.thread_state().eval_breaker().is_drop_requested());
        }
        drop(guard);
        waiter.join().unwrap();
        timer.join().unwrap();
    });
    PENDING.assert_reached("a detach with a drop request pending");
}

/// Under `Interactive`, a release hands the Gil to the heir it chose in
/// its first look at the queue; if an interrupt takes that heir out of the
/// queue before the handoff, the release must look again and hand the Gil
/// to the next waiter: the main thread holds the Gil while W1
/// (`acquire_interruptible`) and then W2 (`acquire`) queue; a third thread
/// interrupts W1; the main thread detaches and, in the detach, joins W2, so
/// W2 must get the Gil while nobody else will release it.
///
/// Mutation: in `Gil::release_slow`, gave up after one try when the heir
/// had left (`return Released::Freed` where the loop looks again) → loom
/// reported a deadlock: W2 parked behind a Gil nobody held, the main
/// thread joining it.
#[test]
fn an_heir_interrupted_out_of_the_queue_is_passed_over() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        gil.set_policy(SwitchPolicy::Interactive);
        let slot = slot();
        let mut guard = gil.acquire();
        let first = {
            let (gil, slot) = (gil.clone(), slot.clone());
            thread::spawn(move || {
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                gil.acquire_interruptible().map(drop)
            })
        };
        until_parked(1);
        let second = {
            let gil = gil.clone();
            thread::spawn(move || drop(gil.acquire()))
        };
        until_parked(2);
        let interrupter = interrupter(&slot);
        guard.detach(move || second.join().unwrap());
        assert!(gil.is_held_by_current_thread());
        drop(guard);
        let first = first.join().unwrap();
        assert!(interrupter.join().unwrap());
        // W1 got the Gil before the interrupt, or was interrupted.
        assert!(matches!(first, Ok(()) | Err(Interrupted)));
        assert!(!gil.is_locked());
    });
}
