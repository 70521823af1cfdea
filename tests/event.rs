//! `Event`: the behaviours of CPython's `EventTests`
//! (Lib/test/lock_tests.py), plus waits that release the Gil and can be
//! interrupted.
//!
//! To know that a waiter is queued without sleeping, a test has it hold a
//! Gil and wait through its guard: the Gil is released only once the
//! waiter is queued, so the test thread getting the Gil proves it. Every
//! join is bounded; runs on the spinning backend too
//! (`cargo test --no-default-features --test event`).

use gilock::{Event, Gil, Interrupted};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

mod common;
use common::{BOUND, Bounded, setup, spawn, wait_until_queued};

/// Spawns a thread that holds `gil` and waits on `event` through its guard
/// with `timeout`; returns once it is queued.
fn queue_gil_waiter(
    gil: &Arc<Gil>,
    event: &Arc<Event>,
    timeout: Duration,
) -> Bounded<(Result<bool, Interrupted>, bool)> {
    let (g, e) = (gil.clone(), event.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let t = spawn(move || {
        let mut guard = g.acquire();
        ready_tx.send(g.current_thread_state()).unwrap();
        let result = e.wait_timeout_with(&mut guard, timeout);
        (result, g.is_held_by_current_thread())
    });
    let waiter = ready_rx.recv_timeout(BOUND).unwrap();
    // A Gil-releasing wait shows `Waiting` once the thread is queued.
    wait_until_queued(&waiter);
    t
}

/// CPython `test_is_set`.
#[test]
fn is_set_set_clear() {
    setup();
    static EVENT: Event = Event::new();
    assert!(!EVENT.is_set());
    EVENT.set();
    assert!(EVENT.is_set());
    EVENT.set();
    assert!(EVENT.is_set());
    EVENT.clear();
    assert!(!EVENT.is_set());
    EVENT.clear();
    assert!(!EVENT.is_set());
    assert_eq!(format!("{:?}", Event::default()), "Event { is_set: false }");
}

/// CPython `test_notify`: `set` wakes every waiter, plain and through the
/// Gil, and a set event lets waits through at once; again after `clear`.
#[test]
fn set_wakes_every_waiter() {
    setup();
    let gil = Arc::new(Gil::new());
    let event = Arc::new(Event::new());
    for _round in 0..2 {
        let plain: Vec<_> = (0..4)
            .map(|_| {
                let e = event.clone();
                spawn(move || {
                    e.wait();
                    e.wait_timeout(Duration::ZERO)
                })
            })
            .collect();
        let through_gil: Vec<_> = (0..2)
            .map(|_| queue_gil_waiter(&gil, &event, BOUND * 2))
            .collect();
        event.set();
        for t in plain {
            assert!(t.join(), "a set event lets a wait through at once");
        }
        for t in through_gil {
            assert_eq!(t.join(), (Ok(true), true));
        }
        event.clear();
    }
}

/// CPython `test_timeout`: a timed wait on an unset event returns false
/// after the timeout, true on a set one.
#[test]
fn wait_timeout() {
    setup();
    let event = Arc::new(Event::new());
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let e = event.clone();
            spawn(move || {
                let start = Instant::now();
                let r = e.wait_timeout(Duration::from_millis(10));
                (r, start.elapsed())
            })
        })
        .collect();
    for t in waiters {
        let (result, elapsed) = t.join();
        assert!(!result);
        assert!(elapsed >= Duration::from_millis(10));
    }
    event.set();
    assert!(event.wait_timeout(Duration::from_millis(10)));
    assert!(event.wait_timeout(Duration::ZERO));
}

/// CPython `test_set_and_clear` (issue 13502): a waiter woken by `set`
/// returns true even if the event was cleared before it ran.
#[test]
fn waiter_woken_by_set_returns_true_after_clear() {
    setup();
    let gil = Arc::new(Gil::new());
    let event = Arc::new(Event::new());
    for _ in 0..3 {
        let waiter = queue_gil_waiter(&gil, &event, BOUND * 2);
        event.set();
        event.clear();
        assert_eq!(waiter.join(), (Ok(true), true));
        assert!(!event.is_set());
    }
}

/// Two threads hand a token back and forth with two events: no wakeup is
/// lost over many rounds.
#[test]
fn ping_pong_loses_no_wakeup() {
    setup();
    let events = Arc::new((Event::new(), Event::new()));
    let e = events.clone();
    let pong = spawn(move || {
        for _ in 0..2000 {
            e.0.wait();
            e.0.clear();
            e.1.set();
        }
    });
    for _ in 0..2000 {
        events.0.set();
        events.1.wait();
        events.1.clear();
    }
    pong.join();
}

/// An interrupted wait ends with `Err(Interrupted)`, the Gil held again,
/// and the event untouched; a later `set` still wakes the others.
#[test]
fn interrupted_wait_with() {
    setup();
    let gil = Arc::new(Gil::new());
    let event = Arc::new(Event::new());
    let waiter = queue_gil_waiter(&gil, &event, BOUND * 2);
    // The waiter's state is the one that is not ours.
    let main_ident = gil.acquire().thread_state().ident();
    let states = gil.thread_states();
    let state = states
        .iter()
        .find(|ts| ts.ident() != main_ident)
        .expect("the waiter's state");
    state.interrupt();
    assert_eq!(waiter.join(), (Err(Interrupted), true));
    assert!(!event.is_set());
    let other = queue_gil_waiter(&gil, &event, BOUND * 2);
    event.set();
    assert_eq!(other.join(), (Ok(true), true));
}

/// A pending interrupt ends the wait at once (consumed); a set event is
/// still seen by the next wait.
#[test]
fn pending_interrupt_ends_wait_with_at_once() {
    setup();
    let gil = Gil::new();
    let event = Event::new();
    let mut guard = gil.acquire();
    guard.thread_state().interrupt();
    let start = Instant::now();
    assert_eq!(event.wait_with(&mut guard), Err(Interrupted));
    assert!(start.elapsed() < BOUND);
    assert!(gil.is_held_by_current_thread());
    assert_eq!(
        event.wait_timeout_with(&mut guard, Duration::from_millis(2)),
        Ok(false)
    );
    event.set();
    assert_eq!(event.wait_with(&mut guard), Ok(()));
}
