//! `Barrier`: the behaviours of CPython's `BarrierTests`
//! (Lib/test/lock_tests.py) — several rounds, arrival indices, abort,
//! reset, timeout, a single party — plus waits that release the Gil and
//! can be interrupted.
//!
//! A test knows that threads are waiting from `n_waiting` (a thread is
//! counted and queued in one step). Every join is bounded; runs on the
//! spinning backend too (`cargo test --no-default-features --test barrier`).

use gilock::{Barrier, BrokenBarrierError, Gil, Interrupted, ZeroPartiesError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

mod common;
use common::{BOUND, Bounded, setup, spawn, wait_until, wait_until_queued};

/// Spawns `n` threads that each wait once on `barrier`.
fn waiters(n: usize, barrier: &Arc<Barrier>) -> Vec<Bounded<Result<usize, BrokenBarrierError>>> {
    (0..n)
        .map(|_| {
            let b = barrier.clone();
            spawn(move || b.wait())
        })
        .collect()
}

/// CPython `test_barrier` and `test_wait_return`: over several rounds all
/// parties pass together, nobody starts round k+1 before every party has
/// arrived in round k, and each round hands out the indices 0..parties.
#[test]
fn rounds_pass_together_with_distinct_indices() {
    setup();
    const PARTIES: usize = 5;
    const ROUNDS: usize = 20;
    let barrier = Arc::new(Barrier::new(PARTIES));
    let arrived = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..PARTIES)
        .map(|_| {
            let (b, arrived) = (barrier.clone(), arrived.clone());
            spawn(move || {
                let mut indices = Vec::new();
                for round in 0..ROUNDS {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    indices.push(b.wait().unwrap());
                    let seen = arrived.load(Ordering::SeqCst);
                    assert!(
                        seen >= (round + 1) * PARTIES,
                        "passed round {round} with only {seen} arrivals"
                    );
                }
                indices
            })
        })
        .collect();
    let per_thread: Vec<Vec<usize>> = threads.into_iter().map(Bounded::join).collect();
    for round in 0..ROUNDS {
        let mut indices: Vec<usize> = per_thread.iter().map(|v| v[round]).collect();
        indices.sort_unstable();
        assert_eq!(indices, (0..PARTIES).collect::<Vec<_>>(), "round {round}");
    }
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
}

/// CPython `test_single_thread`.
#[test]
fn single_party_passes_at_once() {
    setup();
    let barrier = Barrier::new(1);
    assert_eq!(barrier.wait(), Ok(0));
    assert_eq!(barrier.wait(), Ok(0));
    assert_eq!(barrier.wait_timeout(Duration::ZERO), Ok(0));
}

/// CPython `test_abort`: an abort breaks the barrier for the waiters and
/// for every later wait.
#[test]
fn abort_breaks_the_barrier() {
    setup();
    let barrier = Arc::new(Barrier::new(3));
    let threads = waiters(2, &barrier);
    wait_until("two threads wait", || barrier.n_waiting() == 2);
    barrier.abort();
    for t in threads {
        assert_eq!(t.join(), Err(BrokenBarrierError));
    }
    assert!(barrier.broken());
    assert_eq!(barrier.n_waiting(), 0);
    assert_eq!(barrier.wait(), Err(BrokenBarrierError));
    assert_eq!(
        barrier.wait_timeout(Duration::from_millis(1)),
        Err(BrokenBarrierError)
    );
}

/// CPython `test_reset`: a reset breaks the round in progress for its
/// waiters only; the barrier is whole again for the next round.
#[test]
fn reset_breaks_the_current_round_only() {
    setup();
    let barrier = Arc::new(Barrier::new(3));
    let threads = waiters(2, &barrier);
    wait_until("two threads wait", || barrier.n_waiting() == 2);
    barrier.reset();
    for t in threads {
        assert_eq!(t.join(), Err(BrokenBarrierError));
    }
    assert!(!barrier.broken());
    assert_eq!(barrier.n_waiting(), 0);
    let threads = waiters(2, &barrier);
    let mine = barrier.wait().unwrap();
    let mut indices: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    indices.push(mine);
    indices.sort_unstable();
    assert_eq!(indices, [0, 1, 2]);
}

/// CPython `test_abort_and_reset`.
#[test]
fn abort_then_reset_makes_it_usable_again() {
    setup();
    let barrier = Arc::new(Barrier::new(2));
    barrier.abort();
    assert_eq!(barrier.wait(), Err(BrokenBarrierError));
    barrier.reset();
    let other = waiters(1, &barrier);
    let mine = barrier.wait().unwrap();
    let theirs = other.into_iter().next().unwrap().join().unwrap();
    assert_eq!(mine + theirs, 1);
}

/// CPython `test_timeout`: a wait that times out breaks the barrier for
/// everyone waiting.
#[test]
fn timeout_breaks_the_barrier() {
    setup();
    let barrier = Arc::new(Barrier::new(3));
    let threads = waiters(1, &barrier);
    wait_until("one thread waits", || barrier.n_waiting() == 1);
    assert_eq!(
        barrier.wait_timeout(Duration::from_millis(10)),
        Err(BrokenBarrierError)
    );
    for t in threads {
        assert_eq!(t.join(), Err(BrokenBarrierError));
    }
    assert!(barrier.broken());
}

#[test]
fn accessors_and_debug() {
    setup();
    static BARRIER: Barrier = Barrier::new(4);
    assert_eq!(BARRIER.parties(), 4);
    assert_eq!(
        format!("{BARRIER:?}"),
        "Barrier { parties: 4, n_waiting: 0, broken: false, has_action: false }"
    );
    assert!(!BrokenBarrierError.to_string().is_empty());
}

/// `Barrier(0)` is Python's `ValueError`: an error from `try_new` and
/// `with_action`, and a panic naming `try_new` from `new`.
#[test]
fn zero_parties_is_an_error() {
    setup();
    assert_eq!(Barrier::try_new(0).err(), Some(ZeroPartiesError));
    assert!(Barrier::with_action(0, || {}).is_err());
    assert!(!ZeroPartiesError.to_string().is_empty());
    let panic = std::panic::catch_unwind(|| Barrier::new(0)).expect_err("new(0) panics");
    let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("try_new"), "{message}");
}

/// The action runs once per round, in one thread, before any thread of the
/// round passes. (Seen to fail when the round was released before the
/// action ran.)
#[test]
fn the_action_runs_once_per_round_before_anyone_passes() {
    setup();
    const PARTIES: usize = 3;
    const ROUNDS: usize = 20;
    let passed = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let (p, r) = (passed.clone(), runs.clone());
    let barrier = Arc::new(
        Barrier::with_action(PARTIES, move || {
            let round = r.fetch_add(1, Ordering::SeqCst);
            assert_eq!(
                p.load(Ordering::SeqCst),
                round * PARTIES,
                "a thread passed early"
            );
        })
        .unwrap(),
    );
    let threads: Vec<_> = (0..PARTIES)
        .map(|_| {
            let (barrier, passed) = (barrier.clone(), passed.clone());
            spawn(move || {
                for _ in 0..ROUNDS {
                    barrier.wait().unwrap();
                    passed.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    assert_eq!(runs.load(Ordering::SeqCst), ROUNDS);
    assert!(!barrier.broken());
}

/// A panicking action breaks the round: the others get
/// `BrokenBarrierError`, the panic goes on in the thread that ran it.
/// (Seen to fail, the other thread never woken, when the unwinding action
/// left the round unreleased.)
#[test]
fn a_panicking_action_breaks_the_barrier() {
    setup();
    let barrier = Arc::new(Barrier::with_action(2, || panic!("action fails")).unwrap());
    let [mine, theirs] = [(); 2].map(|()| {
        let barrier = barrier.clone();
        spawn(move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| barrier.wait())))
    });
    let (mine, theirs) = (mine.join(), theirs.join());
    // One of the two ran the action and panicked; the other was broken.
    let (panicked, broken) = match (mine, theirs) {
        (Err(_), Ok(result)) | (Ok(result), Err(_)) => (1, result),
        other => panic!("expected one panic and one error, got {other:?}"),
    };
    assert_eq!((panicked, broken), (1, Err(BrokenBarrierError)));
    assert!(barrier.broken());
    barrier.reset();
    assert!(!barrier.broken());
}

/// An arrival while the round's action runs (a thread beyond the parties)
/// waits until it is done and joins the next round.
#[test]
fn an_arrival_during_the_action_joins_the_next_round() {
    setup();
    let (running_tx, running_rx) = mpsc::channel();
    let (finish_tx, finish_rx) = mpsc::channel::<()>();
    let finish_rx = std::sync::Mutex::new(finish_rx);
    let first_round = Arc::new(AtomicBool::new(true));
    let f = first_round.clone();
    let shared = Arc::new((
        Gil::new(),
        Barrier::with_action(2, move || {
            if f.swap(false, Ordering::SeqCst) {
                running_tx.send(()).unwrap();
                finish_rx.lock().unwrap().recv_timeout(BOUND).unwrap();
            }
        })
        .unwrap(),
    ));
    let round_one: Vec<_> = (0..2)
        .map(|_| {
            let s = shared.clone();
            spawn(move || s.1.wait())
        })
        .collect();
    running_rx.recv_timeout(BOUND).unwrap();
    let (state_tx, state_rx) = mpsc::channel();
    let late = {
        let s = shared.clone();
        spawn(move || {
            let (gil, barrier) = &*s;
            let mut guard = gil.acquire();
            state_tx.send(gil.current_thread_state()).unwrap();
            barrier.wait_with(&mut guard)
        })
    };
    wait_until_queued(&state_rx.recv_timeout(BOUND).unwrap());
    finish_tx.send(()).unwrap();
    let mut indices: Vec<usize> = round_one.into_iter().map(|t| t.join().unwrap()).collect();
    indices.sort();
    assert_eq!(indices, [0, 1]);
    // The late arrival opens round two; this one closes it.
    wait_until("the late arrival opens round two", || {
        shared.1.n_waiting() == 1
    });
    assert_eq!(shared.1.wait(), Ok(1));
    assert_eq!(late.join(), Ok(Ok(0)));
}

/// Interpreter threads wait at the barrier without holding the Gil: each
/// one needs it to arrive, so they could not all arrive otherwise.
#[test]
fn wait_with_releases_the_gil() {
    setup();
    const PARTIES: usize = 3;
    let shared = Arc::new((Gil::new(), Barrier::new(PARTIES)));
    let threads: Vec<_> = (0..PARTIES)
        .map(|_| {
            let s = shared.clone();
            spawn(move || {
                let (gil, barrier) = &*s;
                let mut guard = gil.acquire();
                let mut indices = Vec::new();
                for _ in 0..10 {
                    indices.push(barrier.wait_with(&mut guard).unwrap().unwrap());
                    assert!(gil.is_held_by_current_thread());
                }
                indices
            })
        })
        .collect();
    let per_thread: Vec<Vec<usize>> = threads.into_iter().map(Bounded::join).collect();
    for round in 0..10 {
        let mut indices: Vec<usize> = per_thread.iter().map(|v| v[round]).collect();
        indices.sort_unstable();
        assert_eq!(indices, [0, 1, 2]);
    }
    let mut guard = shared.0.acquire();
    assert_eq!(
        shared
            .1
            .wait_timeout_with(&mut guard, Duration::from_millis(5)),
        Ok(Err(BrokenBarrierError))
    );
}

/// An interrupted waiter gets `Err(Interrupted)` with the Gil held, and
/// breaks the barrier for the others (as an exception in Python's `wait`).
#[test]
fn interrupted_wait_with_breaks_the_barrier() {
    setup();
    let shared = Arc::new((Gil::new(), Barrier::new(3)));
    let plain = {
        let s = shared.clone();
        spawn(move || s.1.wait())
    };
    let (ident_tx, ident_rx) = mpsc::channel();
    let s = shared.clone();
    let interpreter = spawn(move || {
        let (gil, barrier) = &*s;
        let mut guard = gil.acquire();
        ident_tx.send(guard.thread_state().ident()).unwrap();
        let result = barrier.wait_with(&mut guard);
        (result, gil.is_held_by_current_thread())
    });
    let ident = ident_rx.recv_timeout(BOUND).unwrap();
    let (gil, barrier) = &*shared;
    wait_until("both threads wait", || barrier.n_waiting() == 2);
    let state = gil
        .thread_states()
        .into_iter()
        .find(|ts| ts.ident() == ident)
        .expect("the waiter's state");
    state.interrupt();
    assert_eq!(interpreter.join(), (Err(Interrupted), true));
    assert_eq!(plain.join(), Err(BrokenBarrierError));
    assert!(barrier.broken());
}

/// An arrival taken out of the queue by an interrupt breaks the round even
/// when the last arrival comes before the interrupted thread has tidied up
/// (here it cannot: the main thread holds the Gil it needs afterwards).
/// Before the fix the round completed around the interrupted thread: A
/// `Err(Interrupted)`, B `Ok(1)`, C `Ok(2)`, the barrier not broken.
#[test]
fn an_interrupted_arrival_breaks_the_round_even_if_the_last_one_comes_first() {
    setup();
    let shared = Arc::new((Gil::new(), Barrier::new(3)));
    let (ident_tx, ident_rx) = mpsc::channel();
    let s = shared.clone();
    let a = spawn(move || {
        let (gil, barrier) = &*s;
        let mut guard = gil.acquire();
        ident_tx.send(guard.thread_state().ident()).unwrap();
        let result = barrier.wait_with(&mut guard);
        (result, gil.is_held_by_current_thread())
    });
    let ident = ident_rx.recv_timeout(BOUND).unwrap();
    let (gil, barrier) = &*shared;
    let state = gil
        .thread_states()
        .into_iter()
        .find(|ts| ts.ident() == ident)
        .expect("the waiter's state");
    wait_until_queued(&state);
    let guard = gil.acquire();
    state.interrupt();
    let b = {
        let s = shared.clone();
        spawn(move || s.1.wait())
    };
    wait_until("B arrived", || barrier.n_waiting() == 2 || barrier.broken());
    let c = barrier.wait();
    drop(guard);
    assert_eq!(a.join(), (Err(Interrupted), true));
    assert_eq!(
        (b.join(), c),
        (Err(BrokenBarrierError), Err(BrokenBarrierError))
    );
    assert!(barrier.broken());
}

/// A pending interrupt ends the wait at once, before the thread arrives:
/// the barrier is untouched.
#[test]
fn pending_interrupt_does_not_arrive() {
    setup();
    let gil = Gil::new();
    let barrier = Barrier::new(2);
    let mut guard = gil.acquire();
    guard.thread_state().interrupt();
    assert_eq!(barrier.wait_with(&mut guard), Err(Interrupted));
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
    assert!(gil.is_held_by_current_thread());
}

/// A waiter whose timeout passes while the round's action runs passes with
/// the round, as in Python (whose waiter needs the lock the action holds,
/// and then finds the round released). Before the fix the round broke
/// after its action had run: both threads got `BrokenBarrierError`.
#[cfg(feature = "std")]
#[test]
fn a_timeout_during_the_action_passes_with_the_round() {
    setup();
    let timeout = Duration::from_millis(if cfg!(miri) { 200 } else { 20 });
    let barrier = Arc::new(
        Barrier::with_action(2, move || {
            // Long enough for the first arrival's timeout to pass meanwhile
            // (what it must survive; it passes either way).
            std::thread::sleep(timeout * 3);
        })
        .unwrap(),
    );
    let first = {
        let barrier = barrier.clone();
        spawn(move || barrier.wait_timeout(timeout))
    };
    wait_until("the first arrival waits", || barrier.n_waiting() == 1);
    assert_eq!(barrier.wait(), Ok(1));
    assert_eq!(first.join(), Ok(0));
    assert!(!barrier.broken());
    // The barrier goes on: a next round passes.
    let again = {
        let barrier = barrier.clone();
        spawn(move || barrier.wait())
    };
    wait_until("the next round begins", || barrier.n_waiting() == 1);
    assert_eq!(barrier.wait(), Ok(1));
    assert_eq!(again.join(), Ok(0));
}
