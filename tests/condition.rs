//! `Condition` and `RawCondition`: the behaviours of CPython's
//! `ConditionTests` (Lib/test/lock_tests.py) and of parking_lot's `Condvar`
//! tests, over every guard, plus what this crate adds: exact notify counts,
//! FIFO order, RLock levels restored, unscoped waits checked at run time.
//!
//! To know that a waiter is queued without sleeping, a test takes the
//! waiter's lock after the waiter announced it is about to wait: a wait
//! releases the lock only once it is queued. Every join is bounded.

use gilock::{Condition, FairMutex, Lock, RLock, RawCondition, ReleaseError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{BOUND, Bounded, setup, spawn};

type Condvar = lock_api::Condvar<RawCondition>;

/// Spawns `n` threads, one after the other, each queued on `cond` (waiting
/// with `lock`) before the next starts; each sends its index when it wakes.
fn queue_waiters(
    n: usize,
    lock: &Arc<RLock>,
    cond: &Arc<Condition>,
    woke: &mpsc::Sender<usize>,
) -> Vec<Bounded<()>> {
    (0..n)
        .map(|i| {
            let (l, c, woke) = (lock.clone(), cond.clone(), woke.clone());
            let (ready_tx, ready_rx) = mpsc::channel();
            let t = spawn(move || {
                let mut guard = l.lock();
                ready_tx.send(()).unwrap();
                c.wait(&mut guard);
                woke.send(i).unwrap();
            });
            ready_rx.recv().unwrap();
            // The waiter released the lock, so it is queued.
            drop(lock.lock());
            t
        })
        .collect()
}

fn recv_n(rx: &mpsc::Receiver<usize>, n: usize) -> Vec<usize> {
    let mut got: Vec<usize> = (0..n)
        .map(|_| rx.recv_timeout(BOUND).expect("a waiter did not wake"))
        .collect();
    got.sort_unstable();
    got
}

#[test]
fn notify_without_waiters_wakes_nobody() {
    setup();
    let cond = Condition::new();
    assert!(!cond.notify_one());
    assert_eq!(cond.notify(3), 0);
    assert_eq!(cond.notify_all(), 0);
    assert_eq!(format!("{cond:?}"), "Condition { waiters: 0 }");
    let raw = Condvar::new();
    assert!(!raw.notify_one());
    assert_eq!(raw.notify_all(), 0);
}

#[test]
fn constructors_are_const_and_usable_from_statics() {
    setup();
    static COND: Condition = Condition::new();
    static RAW: Condvar = Condvar::new();
    static LOCK: Lock = Lock::new();
    static RLOCK: RLock = RLock::new();
    assert!(!COND.notify_one());
    assert!(!RAW.notify_one());
    let mut guard = LOCK.lock();
    assert!(!COND.wait_timeout(&mut guard, Duration::from_millis(1)));
    drop(guard);
    let mut guard = RLOCK.lock();
    assert!(!COND.wait_timeout(&mut guard, Duration::from_millis(1)));
    assert_eq!(RLOCK.recursion_count(), 1);
    assert_eq!(
        format!("{:?}", Condition::default()),
        "Condition { waiters: 0 }"
    );
}

#[test]
fn unacquired_wait_is_an_error_and_changes_nothing() {
    setup();
    let cond = Condition::new();
    assert_eq!(
        cond.wait_on_lock(&Lock::new()),
        Err(ReleaseError::NotLocked)
    );
    assert_eq!(
        cond.wait_on_lock_timeout(&Lock::new(), Duration::from_millis(1)),
        Err(ReleaseError::NotLocked)
    );
    let rlock = Arc::new(RLock::new());
    assert_eq!(cond.wait_on_rlock(&rlock), Err(ReleaseError::NotLocked));
    assert!(
        ReleaseError::NotLocked
            .to_string()
            .contains("cannot wait on un-acquired lock")
    );

    // Owned by another thread: NotOwner, and the owner keeps its levels.
    let (held_tx, held_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let l = Arc::clone(&rlock);
    let owner = spawn(move || {
        l.acquire();
        l.acquire();
        held_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        let count = l.recursion_count();
        l.release().unwrap();
        l.release().unwrap();
        count
    });
    held_rx.recv().unwrap();
    assert_eq!(cond.wait_on_rlock(&rlock), Err(ReleaseError::NotOwner));
    assert_eq!(
        cond.wait_on_rlock_timeout(&rlock, Duration::from_millis(1)),
        Err(ReleaseError::NotOwner)
    );
    assert!(ReleaseError::NotOwner.to_string().contains("wait on it"));
    done_tx.send(()).unwrap();
    assert_eq!(owner.join(), 2);
    assert_eq!(cond.notify_all(), 0, "a refused wait never queues");
}

#[test]
fn notify_n_wakes_exactly_n_oldest_waiters_in_order() {
    setup();
    // CPython's _check_notify, with exact counts and FIFO order checked.
    let lock = Arc::new(RLock::new());
    let cond = Arc::new(Condition::new());
    let (woke_tx, woke_rx) = mpsc::channel();
    for round in 0..2 {
        let waiters = queue_waiters(5, &lock, &cond, &woke_tx);
        {
            let _guard = lock.lock();
            assert_eq!(cond.notify(3), 3, "round {round}");
        }
        assert_eq!(recv_n(&woke_rx, 3), vec![0, 1, 2]);
        // Nobody else woke: the other two are still queued.
        assert!(woke_rx.recv_timeout(Duration::from_millis(30)).is_err());
        assert_eq!(cond.notify(5), 2);
        assert_eq!(recv_n(&woke_rx, 2), vec![3, 4]);
        assert_eq!(cond.notify_all(), 0);
        for w in waiters {
            w.join();
        }
    }
}

#[test]
fn notify_one_wakes_the_oldest_and_notify_all_the_rest() {
    setup();
    let lock = Arc::new(RLock::new());
    let cond = Arc::new(Condition::new());
    let (woke_tx, woke_rx) = mpsc::channel();
    let waiters = queue_waiters(4, &lock, &cond, &woke_tx);
    assert!(cond.notify_one());
    assert_eq!(woke_rx.recv_timeout(BOUND), Ok(0));
    assert!(cond.notify_one());
    assert_eq!(woke_rx.recv_timeout(BOUND), Ok(1));
    assert_eq!(cond.notify(0), 0);
    assert_eq!(cond.notify_all(), 2);
    assert_eq!(recv_n(&woke_rx, 2), vec![2, 3]);
    assert!(!cond.notify_one());
    for w in waiters {
        w.join();
    }
}

#[test]
fn timed_waits_time_out_not_before_the_timeout() {
    setup();
    // CPython's test_timeout: no notify, so every wait times out.
    const N: usize = 5;
    let lock = Arc::new(Lock::new());
    let cond = Arc::new(Condition::new());
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (lock, cond) = (lock.clone(), cond.clone());
            spawn(move || {
                let mut guard = lock.lock();
                let start = Instant::now();
                let notified = cond.wait_timeout(&mut guard, Duration::from_millis(100));
                (notified, start.elapsed(), lock.locked())
            })
        })
        .collect();
    for t in threads {
        let (notified, waited, held) = t.join();
        assert!(!notified);
        assert!(held, "the lock is held again after a timeout");
        assert!(
            waited >= Duration::from_millis(100),
            "returned early: {waited:?}"
        );
        assert!(waited < Duration::from_secs(5));
    }
    assert_eq!(cond.notify_all(), 0, "a timed-out waiter is never notified");
}

#[test]
fn timed_out_waiter_is_not_counted_by_a_later_notify() {
    setup();
    let lock = Arc::new(FairMutex::new(()));
    let cond = Arc::new(Condition::new());
    let (l, c) = (lock.clone(), cond.clone());
    let notified = spawn(move || {
        let mut guard = l.lock();
        c.wait_timeout(&mut guard, Duration::from_millis(20))
    })
    .join();
    assert!(!notified);
    assert!(!cond.notify_one());
    assert_eq!(cond.notify_all(), 0);
}

#[test]
fn wait_while_until_the_state_is_reached() {
    setup();
    // CPython's test_waitfor.
    let state = Arc::new(FairMutex::new(0u32));
    let cond = Arc::new(Condition::new());
    let (s, c) = (state.clone(), cond.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiter = spawn(move || {
        let mut guard = s.lock();
        ready_tx.send(()).unwrap();
        c.wait_while(&mut guard, |state| *state != 4);
        *guard
    });
    ready_rx.recv().unwrap();
    for _ in 0..4 {
        *state.lock() += 1;
        cond.notify_one();
    }
    assert_eq!(waiter.join(), 4);
}

#[test]
fn wait_timeout_while_times_out_when_the_state_is_never_reached() {
    setup();
    // CPython's test_waitfor_timeout: three increments, state 4 never comes.
    let state = Arc::new(FairMutex::new(0u32));
    let cond = Arc::new(Condition::new());
    // Under Miri the clock counts the basic blocks of every thread of the
    // test binary: 200 ms can run out before the main thread has been
    // scheduled for its three increments (it did, with the default seed).
    let timeout = Duration::from_millis(if cfg!(miri) { 2_000 } else { 200 });
    let (s, c) = (state.clone(), cond.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiter = spawn(move || {
        let mut guard = s.lock();
        ready_tx.send(()).unwrap();
        let start = Instant::now();
        let reached = c.wait_timeout_while(&mut guard, |state| *state != 4, timeout);
        (reached, start.elapsed(), *guard)
    });
    ready_rx.recv().unwrap();
    for _ in 0..3 {
        *state.lock() += 1;
        cond.notify_one();
    }
    let (reached, waited, state) = waiter.join();
    assert!(!reached);
    assert_eq!(state, 3);
    assert!(waited >= timeout, "returned early: {waited:?}");
    assert!(waited < Duration::from_secs(5));
}

#[test]
fn wait_while_does_not_wait_if_initially_false() {
    setup();
    let mutex = FairMutex::new(0u32);
    let cond = Condition::new();
    let mut guard = mutex.lock();
    cond.wait_while(&mut guard, |calls| {
        *calls += 1;
        false
    });
    assert_eq!(*guard, 1);
    assert!(cond.wait_timeout_while(
        &mut guard,
        |calls| {
            *calls += 1;
            false
        },
        Duration::ZERO
    ));
    assert_eq!(*guard, 2);
}

#[test]
fn wait_timeout_while_rechecks_after_the_timeout() {
    setup();
    let lock = Lock::new();
    let cond = Condition::new();
    let mut guard = lock.lock();
    let mut calls = 0;
    let reached = cond.wait_timeout_while(
        &mut guard,
        |_: &mut ()| {
            calls += 1;
            calls == 1
        },
        Duration::ZERO,
    );
    assert!(reached, "the second look saw the condition false");
    assert_eq!(calls, 2);
    assert!(lock.locked());
}

#[test]
fn rlock_held_n_levels_is_released_fully_and_restored() {
    setup();
    let lock = Arc::new(RLock::new());
    let cond = Arc::new(Condition::new());
    let (l, c) = (lock.clone(), cond.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiter = spawn(move || {
        let _a = l.lock();
        let _b = l.lock();
        let mut g = l.lock();
        ready_tx.send(()).unwrap();
        c.wait(&mut g);
        let count = l.recursion_count();
        drop(g);
        count
    });
    ready_rx.recv().unwrap();
    // While the waiter waits, this thread can take the lock: all three
    // levels were released, and none of them leaked to this thread.
    {
        let _guard = lock.lock();
        assert_eq!(lock.recursion_count(), 1);
        assert!(cond.notify_one());
    }
    assert_eq!(waiter.join(), 3);
    assert!(!lock.locked());
}

#[test]
fn unscoped_rlock_wait_restores_levels_after_notify_and_timeout() {
    setup();
    let lock = Arc::new(RLock::new());
    let cond = Arc::new(Condition::new());
    lock.acquire();
    lock.acquire();
    assert_eq!(
        cond.wait_on_rlock_timeout(&lock, Duration::from_millis(5)),
        Ok(false)
    );
    assert_eq!(lock.recursion_count(), 2);
    let (l, c) = (lock.clone(), cond.clone());
    let notifier = spawn(move || {
        l.acquire(); // possible only while the main thread waits
        let notified = c.notify_one();
        l.release().unwrap();
        notified
    });
    assert_eq!(cond.wait_on_rlock(&lock), Ok(()));
    assert!(notifier.join());
    assert_eq!(lock.recursion_count(), 2);
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
}

#[test]
fn unscoped_lock_wait_releases_for_any_thread_and_reacquires() {
    setup();
    let lock = Arc::new(Lock::new());
    let cond = Arc::new(Condition::new());
    lock.acquire();
    let (l, c) = (lock.clone(), cond.clone());
    let notifier = spawn(move || {
        l.acquire();
        let n = c.notify_all();
        l.release().unwrap();
        n
    });
    assert_eq!(cond.wait_on_lock(&lock), Ok(()));
    assert_eq!(notifier.join(), 1);
    assert!(lock.locked());
    assert_eq!(
        cond.wait_on_lock_timeout(&lock, Duration::from_millis(5)),
        Ok(false)
    );
    assert!(lock.locked());
    lock.release().unwrap();
}

#[test]
fn lock_guard_wait() {
    setup();
    let lock = Arc::new(Lock::new());
    let cond = Arc::new(Condition::new());
    let flag = Arc::new(AtomicUsize::new(0));
    // Held before the notifier starts, so it can only notify once this
    // thread waits (the wait queues before it releases the lock).
    let mut guard = lock.lock();
    let (l, c, f) = (lock.clone(), cond.clone(), flag.clone());
    let notifier = spawn(move || {
        let _guard = l.lock();
        f.store(1, Ordering::Relaxed);
        c.notify_one()
    });
    cond.wait_while(&mut guard, |()| flag.load(Ordering::Relaxed) == 0);
    assert!(lock.locked());
    drop(guard);
    assert!(notifier.join());
}

#[test]
fn wait_through_a_guard_whose_lock_was_released_by_hand_panics_clearly() {
    setup();
    let lock = Lock::new();
    let cond = Condition::new();
    let mut guard = lock.lock();
    lock.release().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cond.wait(&mut guard)));
    let message = caught.unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("released by hand"), "{message}");
    assert!(!lock.locked(), "nothing was released or taken");
    std::mem::forget(guard);
}

#[test]
fn one_condition_with_different_locks_at_once() {
    setup();
    let fair = Arc::new(FairMutex::new(()));
    let lock = Arc::new(Lock::new());
    let cond = Arc::new(Condition::new());
    let (f, c) = (fair.clone(), cond.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let a = {
        let ready_tx = ready_tx.clone();
        spawn(move || {
            let mut g = f.lock();
            ready_tx.send(()).unwrap();
            c.wait(&mut g);
        })
    };
    ready_rx.recv().unwrap();
    drop(fair.lock());
    let (l, c) = (lock.clone(), cond.clone());
    let b = spawn(move || {
        let mut g = l.lock();
        ready_tx.send(()).unwrap();
        c.wait(&mut g);
    });
    ready_rx.recv().unwrap();
    drop(lock.lock());
    assert_eq!(cond.notify_all(), 2);
    a.join();
    b.join();
}

#[test]
fn huge_timeout_waits_until_notified() {
    setup();
    let lock = Arc::new(FairMutex::new(false));
    let cond = Arc::new(Condition::new());
    let (l, c) = (lock.clone(), cond.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiter = spawn(move || {
        let mut g = l.lock();
        ready_tx.send(()).unwrap();
        c.wait_timeout(&mut g, Duration::MAX)
    });
    ready_rx.recv().unwrap();
    *lock.lock() = true;
    assert!(cond.notify_one());
    assert!(waiter.join());
}

#[test]
fn panicking_predicate_leaves_the_lock_free_and_the_condition_usable() {
    setup();
    let mutex = FairMutex::new(0);
    let cond = Condition::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut guard = mutex.lock();
        cond.wait_while(&mut guard, |_| panic!("predicate"));
    }));
    assert!(caught.is_err());
    assert!(!mutex.is_locked());
    let mut guard = mutex.lock();
    assert!(!cond.wait_timeout(&mut guard, Duration::from_millis(1)));
}

#[test]
fn timed_out_waiters_do_not_swallow_a_notify_one_chain() {
    setup();
    // parking_lot's issue 129: each woken waiter then times out once and
    // passes the notification on; no wakeup may be lost along the chain.
    let state = Arc::new((FairMutex::new(0), Condition::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let mut threads = Vec::new();
    for _ in 0..4 {
        let (shared, done_tx) = (state.clone(), done_tx.clone());
        let (ready_tx, ready_rx) = mpsc::channel();
        threads.push(spawn(move || {
            let (lock, cond) = &*shared;
            let mut guard = lock.lock();
            *guard += 1;
            ready_tx.send(()).unwrap();
            cond.wait(&mut guard);
            // Notified or timed out, it passes the notification on.
            let _ = cond.wait_timeout(&mut guard, Duration::from_millis(1));
            cond.notify_one();
            done_tx.send(()).unwrap();
        }));
        ready_rx.recv().unwrap();
        drop(state.0.lock()); // queued
    }
    assert!(state.1.notify_one());
    for _ in 0..4 {
        assert_eq!(done_rx.recv_timeout(BOUND), Ok(()));
    }
    for t in threads {
        t.join();
    }
}

#[test]
fn lock_api_condvar_drop_in() {
    setup();
    // parking_lot's notify_all_return and wait_for, on lock_api::Condvar.
    const N: usize = 6;
    let data = Arc::new((FairMutex::new(0usize), Condvar::new()));
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (data, tx) = (data.clone(), tx.clone());
            spawn(move || {
                let (lock, cond) = &*data;
                let mut count = lock.lock();
                *count += 1;
                if *count == N {
                    tx.send(()).unwrap();
                }
                while *count != 0 {
                    cond.wait(&mut count);
                }
            })
        })
        .collect();
    let (lock, cond) = &*data;
    rx.recv_timeout(BOUND).unwrap();
    let mut count = lock.lock();
    *count = 0;
    assert_eq!(cond.notify_all(), N);
    drop(count);
    for t in threads {
        t.join();
    }
    assert_eq!(cond.notify_all(), 0);
}

/// `RawCondvarTimed` exists only with `std` (it needs `RawMutexTimed`).
#[cfg(feature = "std")]
#[test]
fn lock_api_condvar_wait_for() {
    setup();
    let data = Arc::new((FairMutex::new(0usize), Condvar::new()));
    let (lock, cond) = &*data;
    let mut guard = lock.lock();
    assert!(
        cond.wait_for(&mut guard, Duration::from_millis(1))
            .timed_out()
    );
    let data2 = data.clone();
    let notifier = spawn(move || {
        let _g = data2.0.lock();
        data2.1.notify_one()
    });
    assert!(
        !cond
            .wait_for(&mut guard, Duration::from_millis(u32::MAX as u64))
            .timed_out()
    );
    drop(guard);
    assert!(notifier.join());
}

#[test]
fn bounded_queue_with_two_conditions() {
    setup();
    // parking_lot's WebKit queue test: producers and consumers on an RLock
    // and two Conditions, as Python's queue.Queue.
    const PRODUCERS: usize = 3;
    const CONSUMERS: usize = 3;
    // Fewer under Miri, which interprets every step: the same paths, in seconds.
    const PER_PRODUCER: usize = if cfg!(miri) { 40 } else { 2000 };
    const CAPACITY: usize = 4;
    struct Queue {
        lock: RLock,
        not_empty: Condition,
        not_full: Condition,
        items: std::cell::UnsafeCell<(std::collections::VecDeque<usize>, bool)>,
    }
    // SAFETY: `items` is only touched with `lock` held.
    unsafe impl Sync for Queue {}
    let q = Arc::new(Queue {
        lock: RLock::new(),
        not_empty: Condition::new(),
        not_full: Condition::new(),
        items: Default::default(),
    });
    let items = |q: &Queue| unsafe { &mut *q.items.get() };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let q = q.clone();
            spawn(move || {
                for i in 0..PER_PRODUCER {
                    let mut g = q.lock.lock();
                    q.not_full
                        .wait_while(&mut g, |()| items(&q).0.len() == CAPACITY);
                    items(&q).0.push_back(p * PER_PRODUCER + i);
                    q.not_empty.notify_one();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let q = q.clone();
            spawn(move || {
                let mut got = Vec::new();
                loop {
                    let mut g = q.lock.lock();
                    q.not_empty
                        .wait_while(&mut g, |()| items(&q).0.is_empty() && !items(&q).1);
                    match items(&q).0.pop_front() {
                        Some(item) => {
                            got.push(item);
                            q.not_full.notify_one();
                        }
                        None => return got,
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join();
    }
    {
        let _g = q.lock.lock();
        items(&q).1 = true;
        q.not_empty.notify_all();
    }
    let mut all: Vec<usize> = consumers.into_iter().flat_map(Bounded::join).collect();
    all.sort_unstable();
    assert_eq!(all, (0..PRODUCERS * PER_PRODUCER).collect::<Vec<_>>());
}

#[test]
fn gil_guard_wait_releases_the_gil_and_takes_it_back() {
    setup();
    let shared = Arc::new((gilock::Gil::new(), Condition::new(), AtomicUsize::new(0)));
    let s = shared.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiter = spawn(move || {
        let (gil, cond, flag) = &*s;
        let mut guard = gil.acquire();
        ready_tx.send(()).unwrap();
        let result = cond.wait_while(&mut guard, |()| flag.load(Ordering::Relaxed) == 0);
        (result, gil.is_held_by_current_thread())
    });
    ready_rx.recv().unwrap();
    let (gil, cond, flag) = &*shared;
    {
        // Possible only because the waiter released the Gil while waiting.
        let _guard = gil.acquire();
        flag.store(1, Ordering::Relaxed);
        assert!(cond.notify_one());
    }
    assert_eq!(waiter.join(), (Ok(()), true));
}

#[test]
fn gil_guard_wait_is_interruptible_and_holds_the_gil_again() {
    setup();
    let shared = Arc::new((gilock::Gil::new(), Condition::new()));
    let s = shared.clone();
    let (ident_tx, ident_rx) = mpsc::channel();
    let waiter = spawn(move || {
        let (gil, cond) = &*s;
        let mut guard = gil.acquire();
        ident_tx.send(guard.thread_state().ident()).unwrap();
        let result = cond.wait(&mut guard);
        let held = gil.is_held_by_current_thread();
        // The interrupt was consumed: the next wait times out normally.
        let again = cond.wait_timeout(&mut guard, Duration::from_millis(1));
        (result, held, again)
    });
    let ident = ident_rx.recv().unwrap();
    let (gil, cond) = &*shared;
    // Once this thread gets the Gil, the waiter has released it: queued.
    drop(gil.acquire());
    let state = gil
        .thread_states()
        .into_iter()
        .find(|ts| ts.ident() == ident)
        .expect("the waiter's ThreadState");
    state.interrupt();
    assert_eq!(waiter.join(), (Err(gilock::Interrupted), true, Ok(false)));
    assert_eq!(
        cond.notify_all(),
        0,
        "the interrupted waiter left the queue"
    );
    assert_eq!(format!("{cond:?}"), "Condition { waiters: 0 }");
}

#[test]
fn pending_interrupt_ends_a_gil_wait_at_once() {
    setup();
    let gil = gilock::Gil::new();
    let cond = Condition::new();
    let mut guard = gil.acquire();
    guard.thread_state().interrupt();
    let start = Instant::now();
    assert_eq!(
        cond.wait_timeout(&mut guard, Duration::from_secs(5)),
        Err(gilock::Interrupted)
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(gil.is_held_by_current_thread());
    assert_eq!(
        cond.wait_timeout_while(&mut guard, |()| true, Duration::from_millis(1)),
        Ok(false)
    );
}

// The lock_api waits below use `wait_for`: `RawCondvarTimed` exists only
// with `std`.
#[cfg(feature = "std")]
type LockApiCondvar = lock_api::Condvar<RawCondition>;

/// Starts `n` threads that wait on `cond` with `m` through `lock_api`'s
/// `Condvar` (as `parking_lot::Condvar` users do) until `go` is set, and
/// returns once all of them wait. Each returns whether its last wait timed
/// out.
#[cfg(feature = "std")]
fn lock_api_waiters(
    shared: &Arc<(FairMutex<bool>, LockApiCondvar)>,
    n: usize,
    timeout: Option<Duration>,
) -> Vec<Bounded<bool>> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let shared = shared.clone();
            spawn(move || {
                let (m, cond) = &*shared;
                let mut go = m.lock();
                // Only the timed branch, std-only, sets it.
                #[cfg_attr(not(feature = "std"), allow(unused_mut))]
                let mut timed_out = false;
                while !*go {
                    match timeout {
                        // `RawCondvarTimed` exists only with `std`.
                        #[cfg(feature = "std")]
                        Some(t) => timed_out = cond.wait_for(&mut go, t).timed_out(),
                        #[cfg(not(feature = "std"))]
                        Some(_) => unreachable!("timed lock_api waits need std"),
                        None => cond.wait(&mut go),
                    }
                }
                timed_out
            })
        })
        .collect();
    common::wait_until("every waiter waits", || {
        format!("{:?}", shared.1.raw()).contains(&format!("waiters: {n}"))
    });
    threads
}

/// `notify_all` through `lock_api`'s `Condvar` returns the exact count and
/// every waiter runs, whether it was woken or moved onto the mutex's queue
/// (as parking_lot does, to spare the herd). With the mutex held, all of
/// them are moved, and the mutex shows waiters. (Seen to fail with
/// `notify_all` waking everyone instead.)
#[cfg(feature = "std")]
#[test]
fn lock_api_notify_all_requeues_onto_the_mutex_and_every_waiter_runs() {
    setup();
    for held in [false, true] {
        let shared = Arc::new((FairMutex::new(false), LockApiCondvar::new()));
        let threads = lock_api_waiters(&shared, 8, None);
        let (m, cond) = &*shared;
        let guard = held.then(|| m.lock());
        if let Some(mut guard) = guard {
            *guard = true;
            assert_eq!(cond.notify_all(), 8);
            // SAFETY: only reads the raw mutex's state for the assertion.
            let raw = unsafe { m.raw() };
            assert!(format!("{raw:?}").contains("waiters: true"), "{raw:?}");
        } else {
            *m.lock() = true;
            assert_eq!(cond.notify_all(), 8);
        }
        for t in threads {
            assert!(!t.join());
        }
        assert_eq!(cond.notify_all(), 0);
    }
}

/// A waiter moved onto the mutex's queue was notified, even if its timeout
/// passes there before it gets the mutex: `wait_for` must not report a
/// timeout (the notify counted it). (Seen to fail when a timeout on the
/// mutex's queue was reported as one.) Timed `lock_api` waits need `std`.
///
/// On a slow machine (Miri) a waiter's timeout may pass before the notify
/// reaches it (it then waits again, or, once the mutex is held here, waits
/// for the mutex): the notify does not count a waiter that is not in a
/// wait, and that one's last wait timed out. So exactly the waiters the
/// notify missed report a timeout of their last wait.
#[cfg(feature = "std")]
#[test]
fn a_requeued_timed_waiter_counts_as_notified() {
    setup();
    let shared = Arc::new((FairMutex::new(false), LockApiCondvar::new()));
    // Under Miri a longer timeout: its clock runs with the interpreted
    // instructions, and 20 ms pass between "every waiter waits" and the
    // notify.
    let timeout = Duration::from_millis(if cfg!(miri) { 2_000 } else { 20 });
    let threads = lock_api_waiters(&shared, 3, Some(timeout));
    let (m, cond) = &*shared;
    let mut go = m.lock();
    *go = true;
    // All requeued (the mutex is held), unless a timeout came first.
    let notified = cond.notify_all();
    // Hold the mutex past their timeouts: they time out in its queue, if
    // anywhere.
    std::thread::sleep(timeout * 2);
    drop(go);
    let timed_out = threads.into_iter().map(|t| t.join()).filter(|&t| t).count();
    assert_eq!(
        timed_out,
        3 - notified,
        "a notified waiter reported a timeout"
    );
}

/// Using one `lock_api` `Condvar` with two mutexes at once panics, as
/// parking_lot guarantees (code that relies on it would otherwise hang),
/// and leaves the first waiter's wait intact. `Condition` keeps waiting
/// with any guard. (Seen to fail without the check: the second wait timed
/// out instead of panicking.) `wait_for` needs `std`.
#[cfg(feature = "std")]
#[test]
fn a_lock_api_condvar_with_two_mutexes_panics() {
    setup();
    let shared = Arc::new((FairMutex::new(false), LockApiCondvar::new()));
    let first = lock_api_waiters(&shared, 1, None);
    let other = FairMutex::new(());
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut guard = other.lock();
        shared.1.wait_for(&mut guard, Duration::from_millis(1));
    }))
    .expect_err("a second mutex must panic");
    let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("more than one mutex"), "{message}");
    assert!(
        other.try_lock().is_some(),
        "the panic left the second mutex locked"
    );
    *shared.0.lock() = true;
    assert_eq!(shared.1.notify_all(), 1);
    for t in first {
        assert!(!t.join());
    }
    // A Condition waits with two mutexes at once.
    let cond = Arc::new(Condition::new());
    let a = Arc::new(FairMutex::new(()));
    let waiter = {
        let (cond, a) = (cond.clone(), a.clone());
        spawn(move || {
            let mut g = a.lock();
            cond.wait(&mut g);
        })
    };
    common::wait_until("the Condition waiter waits", || {
        format!("{cond:?}").contains("waiters: 1")
    });
    let b = FairMutex::new(());
    let mut g = b.lock();
    assert!(!cond.wait_timeout(&mut g, Duration::from_millis(1)));
    assert_eq!(cond.notify_all(), 1);
    waiter.join();
}
