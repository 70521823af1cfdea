#![cfg(loom)]
//! Loom models of `Barrier`: no arrival is lost (every party is released,
//! with distinct indices), across rounds, and a timeout breaks the barrier
//! for every waiter.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test barrier -- --test-threads=1`.

use gilock::{Barrier, BrokenBarrierError};
use loom::sync::Arc;
use loom::thread;
use loom_tests::{DEFAULT, check};
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
