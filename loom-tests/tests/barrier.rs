#![cfg(loom)]
//! Loom models of `Barrier`: no arrival is lost (every party is released,
//! with distinct indices), across rounds, and a timeout breaks the barrier
//! for every waiter.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test barrier -- --test-threads=1`.

use gilock::{Barrier, BrokenBarrierError};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use loom_tests::{DEFAULT, Guarded, check};
use std::time::Duration;

/// Three parties (two threads and the main thread) wait once: all are
/// released, with the indices 0, 1 and 2, and the barrier is empty and
/// whole afterwards.
///
/// Mutation: in `Barrier::wait_inner`'s `validate`, counted and parked the
/// arrival even when it completed the barrier (no `Refusal::Retry` when
/// another thread arrived between the two critical sections) → loom found
/// the schedule where the last party parked with the others and nobody
/// released them ("deadlock": every thread blocked).
#[test]
fn no_lost_arrival() {
    check(DEFAULT, || {
        let barrier = Arc::new(Barrier::new(3));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let barrier = barrier.clone();
                thread::spawn(move || barrier.wait().unwrap())
            })
            .collect();
        let mut indices = vec![barrier.wait().unwrap()];
        for t in threads {
            indices.push(t.join().unwrap());
        }
        indices.sort_unstable();
        assert_eq!(indices, [0, 1, 2]);
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.broken());
    });
}

/// Two parties, two rounds: a thread that passes round one and arrives for
/// round two before the other has woken from round one must not be taken
/// for round one's missing arrival. Each round hands out 0 and 1.
///
/// Mutation: in `Barrier::wait_inner`'s first critical section, released
/// the round (woke the parked threads) without resetting the count to 0
/// → loom failed at once: the second round saw a full count and the
/// indices repeated (`left: [1, 1]`, `right: [0, 1]`).
#[test]
fn rounds_do_not_mix() {
    check(DEFAULT, || {
        let barrier = Arc::new(Barrier::new(2));
        let other = {
            let barrier = barrier.clone();
            thread::spawn(move || [barrier.wait().unwrap(), barrier.wait().unwrap()])
        };
        let mine = [barrier.wait().unwrap(), barrier.wait().unwrap()];
        let theirs = other.join().unwrap();
        for round in 0..2 {
            let mut indices = [mine[round], theirs[round]];
            indices.sort_unstable();
            assert_eq!(indices, [0, 1], "round {round}");
        }
    });
}

/// A thread waits with a timeout while another waits without, for a
/// barrier of three that the main thread never joins; once both wait, the
/// model clock ticks. The timeout must break the barrier and wake the
/// untimed waiter too, whichever of them runs first afterwards.
///
/// Mutation: in `Barrier::wait_inner`, returned on `ParkResult::TimedOut`
/// without `break_round` (the broken flag set, but the other waiters not
/// woken) → loom found the untimed waiter asleep for ever ("deadlock").
#[test]
fn timeout_breaks_for_every_waiter() {
    check(DEFAULT, || {
        let barrier = Arc::new(Barrier::new(3));
        let timed = {
            let barrier = barrier.clone();
            thread::spawn(move || barrier.wait_timeout(Duration::from_millis(1)))
        };
        let untimed = {
            let barrier = barrier.clone();
            thread::spawn(move || barrier.wait())
        };
        // Only a tick after the timed thread took its deadline ends it.
        while barrier.n_waiting() < 2 {
            thread::yield_now();
        }
        gilock::model::fire_timeouts();
        assert_eq!(timed.join().unwrap(), Err(BrokenBarrierError));
        assert_eq!(untimed.join().unwrap(), Err(BrokenBarrierError));
        assert!(barrier.broken());
    });
}

/// Generations across rounds, with a timeout and a `reset`: T waits with a
/// timeout in round A, which nobody else joins; the model timer may end it
/// at any moment, and the main thread resets the barrier at any moment
/// and then waits in round B, which T joins next (retrying while round A's
/// break still stands). T's round A always fails; a timed-out waiter
/// breaks *its* round only (it breaks with the generation it waited in, and
/// after the timeout, outside the queue's lock), so round B, started by the
/// reset in between, must pass for both.
///
/// Mutation: in `Barrier::break_round`, broke whatever round was current
/// (no generation check) → loom found T's timeout, then the reset and the
/// main thread's arrival in round B, then T's break of round A reaching
/// round B: "round B passes" failed on the main thread's `Err(BrokenBarrierError)`.
#[test]
fn a_timed_out_round_never_breaks_the_next_generation() {
    check(DEFAULT, || {
        let barrier = Arc::new(Barrier::new(2));
        // Set when the main thread's round B failed: T stops retrying.
        let failed = Arc::new(AtomicBool::new(false));
        let other = {
            let (barrier, failed) = (barrier.clone(), failed.clone());
            thread::spawn(move || {
                let first = barrier.wait_timeout(Duration::from_millis(1));
                let second = loop {
                    match barrier.wait() {
                        Ok(index) => break Some(index),
                        Err(BrokenBarrierError) if failed.load(Ordering::SeqCst) => break None,
                        Err(BrokenBarrierError) => thread::yield_now(),
                    }
                };
                (first, second)
            })
        };
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        barrier.reset();
        let mine = barrier.wait();
        if mine.is_err() {
            failed.store(true, Ordering::SeqCst);
        }
        let (first, second) = other.join().unwrap();
        timer.join().unwrap();
        assert_eq!(first, Err(BrokenBarrierError));
        let mine = mine.expect("round B passes");
        let mut indices = [mine, second.expect("round B passes")];
        indices.sort_unstable();
        assert_eq!(indices, [0, 1]);
        assert!(!barrier.broken());
    });
}

/// `Barrier::with_action`: two parties, four arrivals (two rounds). The
/// action of each round runs once, by the round's last arrival, before
/// anyone of that round passes; it writes data that only actions touch
/// (loom reports two actions at once) and counts itself. An arrival while
/// an action runs (the next round's first) waits at the door until the
/// round is released, instead of joining the round being released.
///
/// Mutation: in `Barrier::arrive`'s callback, never closed the door
/// (`releasing` left false for `LastWithAction`) → an arrival during the
/// action completed the round again and ran a second action beside the
/// first: "Concurrent write accesses to `UnsafeCell`". Mutation: in
/// `Barrier::run_action`, released the round before running the action
/// (`release.finish(true)` first) → the next round's action ran beside
/// this one: "Concurrent write accesses to `UnsafeCell`". Mutation:
/// `open_door` skipped → the arrival at the door slept for ever
/// ("deadlock").
#[test]
fn with_action_runs_once_before_anyone_passes() {
    check(DEFAULT, || {
        let ran = Arc::new(AtomicUsize::new(0));
        let only_actions = Arc::new(Guarded::new());
        let barrier = {
            let (ran, only_actions) = (ran.clone(), only_actions.clone());
            Arc::new(
                Barrier::with_action(2, move || {
                    only_actions.bump();
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap(),
            )
        };
        let arrive = {
            let (barrier, ran) = (barrier.clone(), ran.clone());
            move || {
                barrier.wait().expect("nobody breaks the barrier");
                ran.load(Ordering::SeqCst)
            }
        };
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let arrive = arrive.clone();
                thread::spawn(arrive)
            })
            .collect();
        let mut seen = vec![arrive()];
        for t in threads {
            seen.push(t.join().unwrap());
        }
        seen.sort_unstable();
        // Round one's passers saw its action; round two's saw both.
        assert!(seen[0] >= 1, "passed before the round's action: {seen:?}");
        assert_eq!(&seen[2..], [2, 2], "{seen:?}");
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        assert_eq!(only_actions.get(), 2);
    });
}
