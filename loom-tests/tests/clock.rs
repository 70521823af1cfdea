#![cfg(loom)]
//! Loom models of the model clock: deadlines are "now + their duration" on
//! model time, so they compare as real ones do, and a model timer can serve
//! waits that start after its previous step.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test clock`.
//!
//! The first two models are the examples of `gilock::model`'s docs, word
//! for word (but for `check`, which sets how deep loom explores), so those
//! stay true.

use gilock::Lock;
use gilock::model::loom::{sync::Arc, thread};
use loom_tests::{DEFAULT, EXHAUSTIVE, check};
use std::time::Duration;

/// Two threads wait for a lock the main thread holds, one for 1 ms and one
/// for 1 s; once both wait, one step of the clock reaches only the short
/// deadline: the short wait times out while the long one still waits, and
/// gets the lock when the main thread lets go.
///
/// Mutation: deadlines compared all equal (`ModelLot::checked_add` gave
/// `at + 1` for every non-zero duration, the old clock's "passes at the
/// next tick") → the step woke both: `left: 2, right: 1`.
#[test]
fn a_short_timeout_expires_while_a_long_one_waits() {
    check(EXHAUSTIVE, || {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let waiter = |timeout| {
            let lock = lock.clone();
            thread::spawn(move || {
                let taken = lock.acquire_timeout(timeout);
                if taken {
                    lock.release().unwrap();
                }
                taken
            })
        };
        let short = waiter(Duration::from_millis(1));
        let long = waiter(Duration::from_secs(1));
        // One step, once both wait: the earliest deadline is the short one.
        while gilock::model::parked_threads() < 2 {
            thread::yield_now();
        }
        assert_eq!(gilock::model::fire_timeouts(), 1);
        assert!(!short.join().unwrap());
        lock.release().unwrap();
        assert!(long.join().unwrap());
    });
}

/// A thread waits twice in a row, 1 ms each time, for a lock the main
/// thread never lets go; a `Timer` takes two steps. The second wait starts
/// after the first step (the first wait ended by it), and must still time
/// out: the timer's step waits for it.
///
/// Mutation: `run_timer` returned as soon as no thread was in a timed park
/// (as a plain `fire_timeouts` step does) instead of waiting for one → loom
/// found the schedule where the timer ran before the first wait and
/// finished: "deadlock" (the waiter's timeout never came).
#[test]
fn a_wait_that_starts_after_a_step_still_times_out() {
    check(EXHAUSTIVE, || {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let timer = gilock::model::Timer::spawn(2);
        let waiter = {
            let lock = lock.clone();
            // Two waits in a row: the second starts after the first step.
            thread::spawn(move || [1, 2].map(|ms| lock.acquire_timeout(Duration::from_millis(ms))))
        };
        assert_eq!(waiter.join().unwrap(), [false, false]);
        assert_eq!(timer.join(), 2);
    });
}

/// `advance` moves the clock by exactly what it is told: a 2 ms wait is
/// not over after 1 ms, and is after 2 ms; a clock step with nobody in a
/// timed wait moves nothing.
///
/// Mutation: `advance` moved the clock to the next pending deadline
/// whatever `by` said (`move_clock_to(lot.next_deadline()...)`) → the
/// first `advance` ended the wait: `left: 1, right: 0`.
#[test]
fn advance_passes_exactly_the_deadlines_it_reaches() {
    check(EXHAUSTIVE, || {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let waiter = {
            let lock = lock.clone();
            thread::spawn(move || lock.acquire_timeout(Duration::from_millis(2)))
        };
        while gilock::model::parked_threads() < 1 {
            thread::yield_now();
        }
        assert_eq!(gilock::model::advance(Duration::from_millis(1)), 0);
        assert_eq!(gilock::model::advance(Duration::from_millis(1)), 1);
        assert!(!waiter.join().unwrap());
        assert_eq!(gilock::model::fire_timeouts(), 0);
        lock.release().unwrap();
    });
}

/// Timed forms never return early: a thread waits 10 ms for the lock the
/// main thread holds and lets go at any point, while a timer takes two
/// steps. The first step that reaches the wait ends the lock's 5 ms switch
/// interval, not the timeout; a wait that reports a timeout must have seen
/// 10 ms of model time pass.
///
/// Mutation: in `RawFairMutex::lock_slow`, a `TimedOut` park returned
/// `false` whenever the wait had a deadline (`deadline.is_some()` instead
/// of `deadline.is_some_and(|d| d.has_passed())`), taking the end of its
/// switch interval for the end of its timeout → "returned after 5ms". (On
/// the old clock every deadline passed at the same tick, so this mutant
/// behaved exactly like the correct code there: no model could catch it.)
/// (It also checks how a `Timer` prints.)
#[test]
fn a_timed_wait_never_returns_before_its_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(10);
    check(DEFAULT, || {
        let lock = Arc::new(Lock::new());
        lock.acquire();
        let timer = gilock::model::Timer::spawn(2);
        assert_eq!(format!("{timer:?}"), "Timer { .. }");
        let waiter = {
            let lock = lock.clone();
            thread::spawn(move || {
                let start = gilock::model::now();
                if lock.acquire_timeout(TIMEOUT) {
                    lock.release().unwrap();
                } else {
                    let waited = gilock::model::now() - start;
                    assert!(waited >= TIMEOUT, "returned after {waited:?}");
                }
            })
        };
        lock.release().unwrap();
        waiter.join().unwrap();
        timer.join();
        assert!(!lock.locked());
    });
}
