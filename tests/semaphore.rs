//! `Semaphore` and `BoundedSemaphore`: the behaviours of CPython's
//! `SemaphoreTests` and `BoundedSemaphoreTests` (Lib/test/lock_tests.py),
//! plus what this crate adds: FIFO handoff (a large request at the head is
//! not bypassed), `acquire_n`, waits that release the Gil and can be
//! interrupted.
//!
//! To know that a thread is queued without sleeping, a test either reads
//! `has_waiters` from the semaphore's `Debug`, or has the waiter hold a Gil
//! and wait through its guard: the Gil is released only once the waiter is
//! queued, so the test thread getting the Gil proves it. Every join is
//! bounded; runs on the spinning backend too
//! (`cargo test --no-default-features --test semaphore`).

use gilock::{BoundedSemaphore, Gil, Interrupted, Semaphore, SemaphoreReleaseError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

mod common;
use common::{BOUND, Bounded, setup, spawn, wait_until, wait_until_queued};

fn has_waiters(sem: &impl std::fmt::Debug) -> bool {
    format!("{sem:?}").contains("has_waiters: true")
}

/// Spawns a thread that holds `gil` and takes one permit of `sem` through
/// its guard; returns once it is queued. The thread
/// sends `i` on `woke` once it has the permit.
fn queue_gil_waiter(
    gil: &Arc<Gil>,
    sem: &Arc<Semaphore>,
    i: usize,
    woke: &mpsc::Sender<usize>,
) -> Bounded<Result<(), Interrupted>> {
    let (g, s, woke) = (gil.clone(), sem.clone(), woke.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let t = spawn(move || {
        let mut guard = g.acquire();
        ready_tx.send(g.current_thread_state()).unwrap();
        let result = s.acquire_with(&mut guard);
        assert!(g.is_held_by_current_thread());
        if result.is_ok() {
            woke.send(i).unwrap();
        }
        result
    });
    let waiter = ready_rx.recv_timeout(BOUND).unwrap();
    // A Gil-releasing wait shows `Waiting` once the thread is queued.
    wait_until_queued(&waiter);
    t
}

#[test]
fn constructor_and_debug() {
    setup();
    static STATIC: Semaphore = Semaphore::new(1);
    static BOUNDED: BoundedSemaphore = BoundedSemaphore::new(2);
    assert!(STATIC.try_acquire());
    assert!(!STATIC.try_acquire());
    STATIC.release_one();
    assert_eq!(BOUNDED.initial_permits(), 2);
    let sem = Semaphore::new(0);
    assert!(!sem.try_acquire());
    assert_eq!(
        format!("{sem:?}"),
        "Semaphore { available_permits: 0, has_waiters: false }"
    );
    assert_eq!(
        format!("{BOUNDED:?}"),
        "BoundedSemaphore { available_permits: 2, initial_permits: 2, has_waiters: false }"
    );
}

/// CPython `test_acquire`.
#[test]
fn acquire_and_release() {
    setup();
    let sem = Semaphore::new(1);
    sem.acquire();
    sem.release_one();
    let sem = Semaphore::new(2);
    sem.acquire();
    sem.acquire();
    assert_eq!(sem.available_permits(), 0);
    sem.release_one();
    sem.release_one();
    assert_eq!(sem.available_permits(), 2);
}

/// CPython `test_try_acquire`.
#[test]
fn try_acquire() {
    setup();
    let sem = Semaphore::new(2);
    assert!(sem.try_acquire());
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
    sem.release_one();
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire_n(1));
    sem.release(3);
    assert!(sem.try_acquire_n(3));
    assert_eq!(sem.available_permits(), 0);
}

/// CPython `test_try_acquire_contended`: of many threads trying at once,
/// exactly as many succeed as there are permits.
#[test]
fn try_acquire_contended() {
    setup();
    let sem = Arc::new(Semaphore::new(4));
    let start = Arc::new(std::sync::Barrier::new(10));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (sem, start) = (sem.clone(), start.clone());
            spawn(move || {
                start.wait();
                sem.try_acquire()
            })
        })
        .collect();
    let won = threads.into_iter().map(Bounded::join);
    assert_eq!(won.filter(|&w| w).count(), 4);
    assert_eq!(sem.available_permits(), 0);
}

/// CPython `test_acquire_contended`: with 7 permits, 7 of 10 threads get
/// through; each release lets exactly one more through.
#[test]
fn acquire_contended() {
    setup();
    let sem = Arc::new(Semaphore::new(7));
    let passed = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (sem, passed) = (sem.clone(), passed.clone());
            spawn(move || {
                sem.acquire();
                passed.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    wait_until("7 threads passed and the rest queued", || {
        passed.load(Ordering::SeqCst) == 7 && has_waiters(&*sem)
    });
    for expected in 8..=10 {
        sem.release_one();
        wait_until("one more thread passed", || {
            passed.load(Ordering::SeqCst) == expected
        });
        // Exactly one: the permit was handed to one waiter.
        assert_eq!(passed.load(Ordering::SeqCst), expected);
    }
    for t in threads {
        t.join();
    }
    assert!(!has_waiters(&*sem));
    assert_eq!(sem.available_permits(), 0);
}

/// CPython `test_multirelease`: `release(n)` wakes n waiters.
#[test]
fn multirelease_wakes_n_waiters() {
    setup();
    let sem = Arc::new(Semaphore::new(0));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let sem = sem.clone();
            spawn(move || sem.acquire())
        })
        .collect();
    sem.release(3);
    for t in threads {
        t.join();
    }
    assert_eq!(sem.available_permits(), 0);
}

/// CPython `test_acquire_timeout`.
#[test]
fn acquire_timeout() {
    setup();
    let sem = Semaphore::new(2);
    assert!(sem.acquire_timeout(Duration::ZERO));
    assert!(sem.acquire_timeout(Duration::ZERO));
    assert!(!sem.acquire_timeout(Duration::ZERO));
    let start = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(10)));
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert!(!has_waiters(&sem), "the timed-out waiter left");
    sem.release_one();
    assert!(sem.acquire_timeout(Duration::from_millis(10)));
    assert!(!sem.acquire_n_timeout(2, Duration::from_millis(1)));
}

/// A release hands the permit to a waiter that is still asleep: the thread
/// releasing cannot take it back at once (no barging).
#[test]
fn release_hands_the_permit_to_the_waiter() {
    setup();
    let sem = Arc::new(Semaphore::new(0));
    let s = sem.clone();
    let waiter = spawn(move || s.acquire());
    wait_until("the waiter is queued", || has_waiters(&*sem));
    sem.release_one();
    assert!(!sem.try_acquire(), "the permit belongs to the waiter");
    waiter.join();
}

/// FIFO: a large request at the head of the queue is not bypassed by later
/// small ones, neither by `try_acquire` nor by a blocking acquire, even
/// though a permit is free; it is served first once enough are released.
#[test]
fn large_request_at_the_head_is_not_bypassed() {
    setup();
    let sem = Arc::new(Semaphore::new(1));
    let (done_tx, done_rx) = mpsc::channel();
    let s = sem.clone();
    let tx = done_tx.clone();
    let big = spawn(move || {
        s.acquire_n(3);
        tx.send("big").unwrap();
    });
    wait_until("the big request is queued", || has_waiters(&*sem));
    assert_eq!(sem.available_permits(), 1);
    assert!(!sem.try_acquire(), "try_acquire bypassed a waiter");
    assert!(
        !sem.acquire_timeout(Duration::from_millis(20)),
        "acquire bypassed a waiter"
    );
    let s = sem.clone();
    let small = spawn(move || {
        s.acquire();
        done_tx.send("small").unwrap();
    });
    sem.release(2);
    assert_eq!(done_rx.recv_timeout(BOUND).unwrap(), "big");
    big.join();
    sem.release_one();
    assert_eq!(done_rx.recv_timeout(BOUND).unwrap(), "small");
    small.join();
    assert_eq!(sem.available_permits(), 0);
}

/// Waiters are served in the order they queued.
#[test]
fn waiters_are_served_in_fifo_order() {
    setup();
    let gil = Arc::new(Gil::new());
    let sem = Arc::new(Semaphore::new(0));
    let (woke_tx, woke_rx) = mpsc::channel();
    let waiters: Vec<_> = (0..4)
        .map(|i| queue_gil_waiter(&gil, &sem, i, &woke_tx))
        .collect();
    for expected in 0..4 {
        sem.release_one();
        assert_eq!(woke_rx.recv_timeout(BOUND).unwrap(), expected);
    }
    for w in waiters {
        assert_eq!(w.join(), Ok(()));
    }
}

/// When the head of the queue times out, the waiter behind it gets the
/// permits that the head could not use.
#[test]
fn timed_out_head_lets_the_next_waiter_through() {
    setup();
    let sem = Arc::new(Semaphore::new(1));
    // The head must still be queued when we look: on a slow run (Miri) it
    // can time out before our first look, and then we try again.
    let head = loop {
        let s = sem.clone();
        let gave_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = gave_up.clone();
        let head = spawn(move || {
            let taken = s.acquire_n_timeout(5, Duration::from_millis(50));
            flag.store(true, Ordering::SeqCst);
            taken
        });
        wait_until("the head is queued or gave up", || {
            has_waiters(&*sem) || gave_up.load(Ordering::SeqCst)
        });
        if !gave_up.load(Ordering::SeqCst) {
            break head;
        }
        assert!(!head.join(), "five permits from a semaphore of one");
    };
    let s = sem.clone();
    let next = spawn(move || s.acquire_timeout(BOUND));
    assert!(!head.join());
    assert!(next.join());
    assert_eq!(sem.available_permits(), 0);
    assert!(!has_waiters(&*sem));
}

/// Permits are conserved under contention, and never more threads than
/// permits are inside at once, with requests of different sizes.
#[test]
fn permits_are_conserved_under_contention() {
    setup();
    const PERMITS: usize = 3;
    let sem = Arc::new(Semaphore::new(PERMITS));
    let held = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (sem, held) = (sem.clone(), held.clone());
            spawn(move || {
                for round in 0..500 {
                    let n = 1 + (t + round) % 2;
                    sem.acquire_n(n);
                    let now = held.fetch_add(n, Ordering::SeqCst) + n;
                    assert!(now <= PERMITS, "{now} permits held of {PERMITS}");
                    held.fetch_sub(n, Ordering::SeqCst);
                    sem.release(n);
                }
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    assert_eq!(sem.available_permits(), PERMITS);
    assert!(!has_waiters(&*sem));
}

/// A thread holding the Gil waits for a permit without holding it.
#[test]
fn acquire_with_releases_the_gil() {
    setup();
    let gil = Arc::new(Gil::new());
    let sem = Arc::new(Semaphore::new(0));
    let (woke_tx, woke_rx) = mpsc::channel();
    let waiter = queue_gil_waiter(&gil, &sem, 7, &woke_tx);
    {
        // The releaser is an interpreter thread too.
        let _g = gil.acquire();
        sem.release_one();
    }
    assert_eq!(woke_rx.recv_timeout(BOUND).unwrap(), 7);
    assert_eq!(waiter.join(), Ok(()));
    // Timed form, through the Gil.
    let mut guard = gil.acquire();
    assert_eq!(
        sem.acquire_timeout_with(&mut guard, Duration::from_millis(5)),
        Ok(false)
    );
    sem.release_one();
    assert_eq!(
        sem.acquire_timeout_with(&mut guard, Duration::from_millis(5)),
        Ok(true)
    );
}

/// An interrupted waiter leaves without a permit, with the Gil held again,
/// and the semaphore works on for everyone (no stale waiter blocks it).
#[test]
fn interrupted_acquire_with_takes_nothing() {
    setup();
    let gil = Arc::new(Gil::new());
    let sem = Arc::new(Semaphore::new(0));
    let (woke_tx, _woke_rx) = mpsc::channel();
    let waiter = queue_gil_waiter(&gil, &sem, 0, &woke_tx);
    // The waiter's state is the one that is not ours.
    let main_ident = gil.acquire().thread_state().ident();
    let states = gil.thread_states();
    let state = states
        .iter()
        .find(|ts| ts.ident() != main_ident)
        .expect("the waiter's state");
    state.interrupt();
    assert_eq!(waiter.join(), Err(Interrupted));
    wait_until("the waiter tidied up", || !has_waiters(&*sem));
    sem.release_one();
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
}

/// An interrupt pending when the wait starts ends it at once, consumed.
#[test]
fn pending_interrupt_ends_acquire_with_at_once() {
    setup();
    let gil = Gil::new();
    let sem = Semaphore::new(1);
    let mut guard = gil.acquire();
    guard.thread_state().interrupt();
    assert_eq!(sem.acquire_with(&mut guard), Err(Interrupted));
    assert_eq!(sem.available_permits(), 1, "no permit taken");
    assert!(gil.is_held_by_current_thread());
    assert_eq!(sem.acquire_with(&mut guard), Ok(()));
}

/// CPython `BoundedSemaphoreTests.test_release_unacquired`.
#[test]
fn bounded_release_unacquired_is_an_error() {
    setup();
    let sem = BoundedSemaphore::new(1);
    assert_eq!(sem.release_one(), Err(SemaphoreReleaseError));
    assert_eq!(sem.available_permits(), 1, "state untouched");
    sem.acquire();
    assert_eq!(sem.release_one(), Ok(()));
    assert_eq!(sem.release_one(), Err(SemaphoreReleaseError));
    let sem = BoundedSemaphore::new(3);
    assert!(sem.try_acquire_n(2));
    assert_eq!(sem.release(3), Err(SemaphoreReleaseError));
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(sem.release(2), Ok(()));
    assert_eq!(sem.available_permits(), 3);
    assert_eq!(
        SemaphoreReleaseError.to_string(),
        "Semaphore released too many times"
    );
}

/// The bound is checked on the handoff path too, and a refused release
/// wakes nobody.
#[test]
fn bounded_release_with_waiters() {
    setup();
    let sem = Arc::new(BoundedSemaphore::new(2));
    assert!(sem.try_acquire_n(2));
    let s = sem.clone();
    let waiter = spawn(move || s.acquire_n(2));
    wait_until("the waiter is queued", || has_waiters(&*sem));
    assert_eq!(sem.release(3), Err(SemaphoreReleaseError));
    assert!(has_waiters(&*sem), "nobody was woken");
    assert_eq!(sem.release_one(), Ok(()));
    assert_eq!(sem.release_one(), Ok(()));
    waiter.join();
    assert_eq!(sem.available_permits(), 0);
    assert_eq!(sem.release(2), Ok(()));
    assert_eq!(sem.release_one(), Err(SemaphoreReleaseError));
}
