//! Bad input: zero and huge durations for every timed call and switch
//! interval, releasing or waiting on what is not held, threads that end
//! holding a lock, interrupts of threads that are not waiting. Each gives a
//! clear error or documented behaviour, and nothing hangs: anything that
//! could block runs on a thread whose join is bounded.
//!
//! Runs on the std backend and on the spinning no-std backend, except the
//! `lock_api` timed calls of `FairMutex` (`RawMutexTimed` needs std).
//!
//! RLock recursion overflow (`usize::MAX` levels) cannot be reached from
//! outside the crate in reasonable time; the unit tests in `src/rlock.rs`
//! set the count directly and check that the next acquire panics with
//! "RLock recursion count overflow" and leaves the count intact.

use gilock::{Condition, FairMutex, Gil, Interrupted, Lock, RLock, RawFairMutex, ReleaseError};
use gilock::{ThreadState, ThreadStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::{BOUND, Bounded, setup, spawn};

/// A zero timeout must fail this fast on a contended lock (it may not wait).
const PROMPT: Duration = Duration::from_secs(2);

/// Runs `f` on a bounded thread and returns its result and how long it took.
fn timed<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    spawn(move || {
        let start = Instant::now();
        let value = f();
        (value, start.elapsed())
    })
    .join()
}

/// Notifies `cond` once a waiter is there to be woken (`notify_one` returns
/// true only then); fails after `BOUND`.
fn notify_when_waiting(cond: Arc<Condition>) -> Bounded<()> {
    spawn(move || {
        let start = Instant::now();
        while !cond.notify_one() {
            assert!(start.elapsed() < BOUND, "no waiter showed up");
            thread::yield_now();
        }
    })
}

/// Holds `take` on another thread until the returned sender is dropped or
/// sent to; returns once the lock is taken.
fn hold_elsewhere(
    take: impl FnOnce(mpsc::Sender<()>, mpsc::Receiver<()>) + Send + 'static,
) -> (mpsc::Sender<()>, Bounded<()>) {
    let (taken_tx, taken_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let holder = spawn(move || take(taken_tx, release_rx));
    taken_rx
        .recv_timeout(BOUND)
        .expect("the holder took the lock");
    (release_tx, holder)
}

/// The thread state of the thread with `ident`.
fn state_of(gil: &Gil, ident: u64) -> Arc<ThreadState> {
    gil.thread_states()
        .into_iter()
        .find(|s| s.ident() == ident)
        .expect("the thread is listed")
}

// ---- zero and huge durations: locks ----

#[test]
fn lock_acquire_timeout_zero_and_max() {
    setup();
    let lock = Arc::new(Lock::new());
    assert!(
        lock.acquire_timeout(Duration::ZERO),
        "free: zero timeout takes it"
    );
    assert!(lock.release().is_ok());
    assert!(
        lock.acquire_timeout(Duration::MAX),
        "free: huge timeout takes it"
    );

    // Held (by this thread, which any thread may release for).
    let l = lock.clone();
    let (taken, took) = timed(move || l.acquire_timeout(Duration::ZERO));
    assert!(!taken);
    assert!(took < PROMPT, "a zero timeout waited {took:?}");

    // A huge timeout is an untimed wait: it gets the lock once released.
    let l = lock.clone();
    let waiter = spawn(move || {
        let taken = l.acquire_timeout(Duration::MAX);
        l.release().map(|()| taken)
    });
    lock.release().unwrap();
    assert_eq!(waiter.join(), Ok(true));
    assert!(!lock.locked());
}

#[test]
fn rlock_acquire_timeout_zero_and_max() {
    setup();
    let lock = Arc::new(RLock::new());
    assert!(lock.acquire_timeout(Duration::ZERO));
    assert!(
        lock.acquire_timeout(Duration::MAX),
        "re-entry succeeds at once"
    );
    assert_eq!(lock.recursion_count(), 2);

    let l = lock.clone();
    let (taken, took) = timed(move || l.acquire_timeout(Duration::ZERO));
    assert!(!taken);
    assert!(took < PROMPT);

    let l = lock.clone();
    let waiter = spawn(move || {
        let taken = l.acquire_timeout(Duration::MAX);
        let count = l.recursion_count();
        l.release().map(|()| (taken, count))
    });
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(waiter.join(), Ok((true, 1)));
    assert!(!lock.locked());
}

#[cfg(feature = "std")]
#[test]
fn fair_mutex_try_lock_for_zero_and_max() {
    setup();
    let m = Arc::new(FairMutex::new(0u32));
    assert!(m.try_lock_for(Duration::ZERO).is_some());
    assert!(m.try_lock_for(Duration::MAX).is_some());

    let (release, holder) = {
        let m = m.clone();
        hold_elsewhere(move |taken, release| {
            let mut guard = m.lock();
            taken.send(()).unwrap();
            let _ = release.recv();
            *guard += 1;
        })
    };
    let m2 = m.clone();
    let (got, took) = timed(move || m2.try_lock_for(Duration::ZERO).is_some());
    assert!(!got);
    assert!(took < PROMPT);
    let m2 = m.clone();
    let waiter = spawn(move || m2.try_lock_for(Duration::MAX).map(|g| *g));
    release.send(()).unwrap();
    holder.join();
    assert_eq!(waiter.join(), Some(1));
    assert!(!m.is_locked());
}

#[test]
fn gil_try_acquire_for_zero_and_max() {
    setup();
    let gil = Arc::new(Gil::new());
    {
        let guard = gil.try_acquire_for(Duration::ZERO);
        assert!(guard.is_some(), "free: zero timeout takes it");
        // The caller already holds it: None at once, whatever the timeout,
        // never a panic or a self-deadlock.
        assert!(gil.try_acquire_for(Duration::ZERO).is_none());
        let g = gil.clone();
        let start = Instant::now();
        assert!(g.try_acquire_for(Duration::MAX).is_none());
        assert!(start.elapsed() < PROMPT);
        assert!(gil.is_held_by_current_thread());
    }

    let (release, holder) = {
        let gil = gil.clone();
        hold_elsewhere(move |taken, release| {
            let _guard = gil.acquire();
            taken.send(()).unwrap();
            let _ = release.recv();
        })
    };
    let g = gil.clone();
    let (got, took) = timed(move || g.try_acquire_for(Duration::ZERO).is_some());
    assert!(!got);
    assert!(took < PROMPT);
    let g = gil.clone();
    let waiter = spawn(move || g.try_acquire_for(Duration::MAX).is_some());
    release.send(()).unwrap();
    holder.join();
    assert!(waiter.join());
    assert!(!gil.is_locked());
}

// ---- zero and huge durations: condition waits ----

#[test]
fn condition_zero_timeouts_time_out_and_hold_the_lock_again() {
    setup();
    let cond = Condition::new();

    let m = FairMutex::new(());
    let mut g = m.lock();
    assert!(!cond.wait_timeout(&mut g, Duration::ZERO));
    assert!(!cond.wait_timeout_while(&mut g, |_| true, Duration::ZERO));
    assert!(cond.wait_timeout_while(&mut g, |_| false, Duration::ZERO));
    assert!(m.is_locked());
    drop(g);

    let lock = Lock::new();
    let mut g = lock.lock();
    assert!(!cond.wait_timeout(&mut g, Duration::ZERO));
    assert!(!cond.wait_timeout_while(&mut g, |_| true, Duration::ZERO));
    assert!(lock.locked());
    drop(g);
    lock.acquire();
    assert_eq!(cond.wait_on_lock_timeout(&lock, Duration::ZERO), Ok(false));
    assert!(lock.locked());
    lock.release().unwrap();

    let rlock = RLock::new();
    let _outer = rlock.lock();
    let mut g = rlock.lock();
    assert!(!cond.wait_timeout(&mut g, Duration::ZERO));
    let mut checks = 0;
    assert!(!cond.wait_timeout_while(
        &mut g,
        |_| {
            checks += 1;
            true
        },
        Duration::ZERO
    ));
    assert_eq!(checks, 2, "checked before and once after the zero timeout");
    assert_eq!(rlock.recursion_count(), 2);
    assert_eq!(
        cond.wait_on_rlock_timeout(&rlock, Duration::ZERO),
        Ok(false)
    );
    assert_eq!(rlock.recursion_count(), 2);
    drop(g);
    drop(_outer);

    let gil = Gil::new();
    let mut g = gil.acquire();
    assert_eq!(cond.wait_timeout(&mut g, Duration::ZERO), Ok(false));
    assert_eq!(
        cond.wait_timeout_while(&mut g, |_| true, Duration::ZERO),
        Ok(false)
    );
    assert!(gil.is_held_by_current_thread());
    drop(g);

    assert_eq!(cond.notify_all(), 0, "no timed-out waiter stayed queued");
}

#[test]
fn condition_max_timeouts_wait_until_notified() {
    setup();
    let cond = Arc::new(Condition::new());

    let m = Arc::new(FairMutex::new(false));
    let waiter = {
        let (m, cond) = (m.clone(), cond.clone());
        spawn(move || {
            let mut g = m.lock();
            cond.wait_timeout(&mut g, Duration::MAX)
        })
    };
    notify_when_waiting(cond.clone()).join();
    assert!(waiter.join(), "notified, not timed out");

    let waiter = {
        let (m, cond) = (m.clone(), cond.clone());
        spawn(move || {
            let mut g = m.lock();
            cond.wait_timeout_while(&mut g, |ready| !*ready, Duration::MAX)
        })
    };
    // Set and notify once: a waiter that had not started waiting yet sees
    // the flag under the lock and does not wait.
    let flip = {
        let (m, cond) = (m.clone(), cond.clone());
        spawn(move || {
            *m.lock() = true;
            cond.notify_all();
        })
    };
    flip.join();
    assert!(waiter.join());

    let lock = Arc::new(Lock::new());
    let waiter = {
        let (lock, cond) = (lock.clone(), cond.clone());
        spawn(move || {
            lock.acquire();
            let r = cond.wait_on_lock_timeout(&lock, Duration::MAX);
            lock.release().unwrap();
            r
        })
    };
    notify_when_waiting(cond.clone()).join();
    assert_eq!(waiter.join(), Ok(true));

    let rlock = Arc::new(RLock::new());
    let waiter = {
        let (rlock, cond) = (rlock.clone(), cond.clone());
        spawn(move || {
            rlock.acquire();
            rlock.acquire();
            let r = cond.wait_on_rlock_timeout(&rlock, Duration::MAX);
            let levels = rlock.recursion_count();
            rlock.release().unwrap();
            rlock.release().unwrap();
            (r, levels)
        })
    };
    notify_when_waiting(cond.clone()).join();
    assert_eq!(waiter.join(), (Ok(true), 2));

    let gil = Arc::new(Gil::new());
    let waiter = {
        let (gil, cond) = (gil.clone(), cond.clone());
        spawn(move || {
            let mut g = gil.acquire();
            cond.wait_timeout(&mut g, Duration::MAX)
        })
    };
    notify_when_waiting(cond.clone()).join();
    assert_eq!(waiter.join(), Ok(true));
    assert!(!gil.is_locked() && !lock.locked() && !rlock.locked() && !m.is_locked());
}

#[cfg(feature = "std")]
#[test]
fn lock_api_condvar_zero_and_max_timeouts() {
    setup();
    type Condvar = lock_api::Condvar<gilock::RawCondition>;
    let pair = Arc::new((FairMutex::new(()), Condvar::new()));
    let (m, cv) = &*pair;
    let mut g = m.lock();
    assert!(cv.wait_for(&mut g, Duration::ZERO).timed_out());
    drop(g);
    let waiter = {
        let pair = pair.clone();
        spawn(move || {
            let (m, cv) = &*pair;
            let mut g = m.lock();
            // lock_api turns an unrepresentable deadline into an untimed wait.
            cv.wait_for(&mut g, Duration::MAX).timed_out()
        })
    };
    let start = Instant::now();
    while !pair.1.notify_one() {
        assert!(start.elapsed() < BOUND);
        thread::yield_now();
    }
    assert!(!waiter.join());
}

// ---- switch intervals of zero and huge ----

#[test]
fn fair_mutex_switch_interval_zero_and_max_are_clamped_and_work() {
    setup();
    let raw = RawFairMutex::with_switch_interval(Duration::ZERO);
    assert_eq!(raw.switch_interval(), Duration::from_micros(1));
    raw.set_switch_interval(Duration::MAX);
    assert_eq!(
        raw.switch_interval(),
        Duration::from_micros(u64::from(u32::MAX))
    );
    raw.set_switch_interval(Duration::ZERO);
    assert_eq!(raw.switch_interval(), Duration::from_micros(1));

    // Interval 1 µs: every waiter asks for a handoff at once. Exclusion and
    // progress hold, and no increment is lost.
    let m = Arc::new(FairMutex::from_raw(
        RawFairMutex::with_switch_interval(Duration::ZERO),
        0u64,
    ));
    // Fewer under Miri, which interprets every step: the same paths, in seconds.
    const ROUNDS: u64 = if cfg!(miri) { 50 } else { 2_000 };
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            spawn(move || {
                for _ in 0..ROUNDS {
                    let mut g = m.lock();
                    let v = *g;
                    *g = v + 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.join();
    }
    assert_eq!(*m.lock(), 4 * ROUNDS);

    // Interval of 71 minutes: a waiter never asks for a handoff (no
    // overflow when it computes the end of its interval), yet it gets the
    // lock as soon as the holder releases it.
    let m = Arc::new(FairMutex::from_raw(
        RawFairMutex::with_switch_interval(Duration::MAX),
        0u64,
    ));
    let guard = m.lock();
    let waiter = {
        let m = m.clone();
        spawn(move || *m.lock())
    };
    let start = Instant::now();
    // SAFETY: only reads the state word.
    let raw = unsafe { m.raw() };
    while start.elapsed() < Duration::from_millis(20) {
        assert!(!raw.is_drop_requested());
        thread::yield_now();
    }
    drop(guard);
    assert_eq!(waiter.join(), 0);
}

#[test]
fn fair_mutex_zero_interval_raises_the_drop_request_for_a_parked_waiter() {
    setup();
    let m = Arc::new(FairMutex::new(()));
    // SAFETY: only configures and reads the state word.
    unsafe { m.raw() }.set_switch_interval(Duration::ZERO);
    let guard = m.lock();
    let waiter = {
        let m = m.clone();
        spawn(move || drop(m.lock()))
    };
    let start = Instant::now();
    while !unsafe { m.raw() }.is_drop_requested() {
        assert!(
            start.elapsed() < BOUND,
            "the waiter never asked for the lock"
        );
        thread::yield_now();
    }
    drop(guard);
    waiter.join();
    assert!(!m.is_locked());
    assert!(!unsafe { m.raw() }.is_drop_requested());
}

#[test]
fn gil_switch_interval_zero_and_max_are_clamped_and_work() {
    setup();
    let gil = Arc::new(Gil::with_switch_interval(Duration::MAX));
    assert_eq!(
        gil.switch_interval(),
        Duration::from_micros(u64::from(u32::MAX))
    );
    gil.set_switch_interval(Duration::ZERO);
    assert_eq!(gil.switch_interval(), Duration::from_micros(1));

    // Interval 1 µs: a waiter asks a CPU-bound holder at once; the holder's
    // checkpoint hands over, and every thread finishes.
    // Fewer under Miri, which interprets every step: the same paths, in seconds.
    const ROUNDS: u64 = if cfg!(miri) { 50 } else { 2_000 };
    let counter = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (gil, counter) = (gil.clone(), counter.clone());
            spawn(move || {
                let mut g = gil.acquire();
                for _ in 0..ROUNDS {
                    let v = counter.load(Ordering::Relaxed);
                    counter.store(v + 1, Ordering::Relaxed);
                    g.checkpoint();
                }
            })
        })
        .collect();
    for w in workers {
        w.join();
    }
    assert_eq!(counter.load(Ordering::Relaxed), 3 * ROUNDS);

    // Interval of 71 minutes: a waiter that waits 20 ms never asks.
    gil.set_switch_interval(Duration::MAX);
    let requests = gil.stats().drop_requests;
    let guard = gil.acquire();
    let g = gil.clone();
    assert!(spawn(move || g.try_acquire_for(Duration::from_millis(20)).is_none()).join());
    assert!(!guard.should_yield());
    assert_eq!(gil.stats().drop_requests, requests);
    drop(guard);
    assert!(!gil.is_locked());
}

// ---- releasing or waiting on what is not held ----

#[test]
fn releasing_what_is_not_held_is_an_error_that_changes_nothing() {
    setup();
    let lock = Lock::new();
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    assert!(!lock.locked());
    assert!(lock.try_acquire(), "the failed release broke nothing");
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(
        lock.release(),
        Err(ReleaseError::NotLocked),
        "released twice"
    );

    let rlock = Arc::new(RLock::new());
    assert_eq!(rlock.release(), Err(ReleaseError::NotLocked));
    rlock.acquire();
    let r = rlock.clone();
    assert_eq!(
        spawn(move || (r.release(), r.recursion_count(), r.locked())).join(),
        (Err(ReleaseError::NotOwner), 0, true)
    );
    assert_eq!(
        rlock.recursion_count(),
        1,
        "the foreign release changed nothing"
    );
    rlock.release().unwrap();
    assert_eq!(rlock.release(), Err(ReleaseError::NotLocked));
    assert!(!rlock.locked());
    for e in [ReleaseError::NotLocked, ReleaseError::NotOwner] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn waiting_on_a_lock_not_held_is_an_error_and_never_queues() {
    setup();
    let cond = Condition::new();
    let lock = Lock::new();
    assert_eq!(cond.wait_on_lock(&lock), Err(ReleaseError::NotLocked));
    assert_eq!(
        cond.wait_on_lock_timeout(&lock, Duration::MAX),
        Err(ReleaseError::NotLocked)
    );
    let rlock = Arc::new(RLock::new());
    assert_eq!(cond.wait_on_rlock(&rlock), Err(ReleaseError::NotLocked));
    assert_eq!(
        cond.wait_on_rlock_timeout(&rlock, Duration::ZERO),
        Err(ReleaseError::NotLocked)
    );
    // Owned by another thread: NotOwner, and its levels are untouched.
    let (release, holder) = {
        let rlock = rlock.clone();
        hold_elsewhere(move |taken, release| {
            rlock.acquire();
            rlock.acquire();
            taken.send(()).unwrap();
            let _ = release.recv();
            assert_eq!(rlock.recursion_count(), 2);
            rlock.release().unwrap();
            rlock.release().unwrap();
        })
    };
    assert_eq!(cond.wait_on_rlock(&rlock), Err(ReleaseError::NotOwner));
    assert_eq!(
        cond.wait_on_rlock_timeout(&rlock, Duration::MAX),
        Err(ReleaseError::NotOwner)
    );
    assert!(rlock.locked());
    release.send(()).unwrap();
    holder.join();
    assert_eq!(cond.notify_all(), 0, "a refused wait never queues");
    assert_eq!(cond.notify(usize::MAX), 0);
    assert_eq!(cond.notify(0), 0);
}

// ---- threads that end holding a lock ----

#[test]
fn a_lock_held_by_an_ended_thread_may_be_released_by_another() {
    setup();
    // Python semantics: a Lock belongs to no thread.
    let lock = Arc::new(Lock::new());
    let l = lock.clone();
    spawn(move || l.acquire()).join();
    assert!(lock.locked());
    assert!(!lock.try_acquire());
    assert_eq!(lock.release(), Ok(()));
    assert!(lock.try_acquire());
    lock.release().unwrap();

    // Also a leaked guard.
    let l = lock.clone();
    spawn(move || std::mem::forget(l.lock())).join();
    assert!(lock.locked());
    let l = lock.clone();
    assert_eq!(spawn(move || l.release()).join(), Ok(()));
    assert!(!lock.locked());
}

#[test]
fn an_rlock_held_by_an_ended_thread_stays_locked_and_reports_not_owner() {
    setup();
    // As in Python: an RLock belongs to the thread that acquired it, thread
    // ids are never reused, so nobody else can release it. The lock stays
    // locked for good; every call reports that instead of blocking past its
    // timeout or corrupting the count.
    let rlock = Arc::new(RLock::new());
    let r = rlock.clone();
    spawn(move || {
        r.acquire();
        std::mem::forget(r.lock());
    })
    .join();
    assert!(rlock.locked());
    assert!(!rlock.is_owned());
    assert_eq!(rlock.recursion_count(), 0);
    assert_eq!(rlock.release(), Err(ReleaseError::NotOwner));
    assert!(!rlock.try_acquire());
    let r = rlock.clone();
    let (taken, took) = timed(move || r.acquire_timeout(Duration::from_millis(20)));
    assert!(!taken);
    assert!(took >= Duration::from_millis(20));
    assert_eq!(
        Condition::new().wait_on_rlock(&rlock),
        Err(ReleaseError::NotOwner)
    );
    assert!(rlock.locked());
}

#[test]
fn a_gil_held_by_an_ended_thread_through_a_leaked_guard_stays_locked() {
    setup();
    // GilGuard's docs: leaking a guard leaves the Gil taken for good, as a
    // CPython thread that exits holding the GIL does; others time out.
    let gil = Arc::new(Gil::with_switch_interval(Duration::from_millis(1)));
    let g = gil.clone();
    spawn(move || std::mem::forget(g.acquire())).join();
    assert!(gil.is_locked());
    assert!(!gil.is_held_by_current_thread());
    assert!(gil.try_acquire().is_none());
    let g = gil.clone();
    let (got, took) = timed(move || g.try_acquire_for(Duration::from_millis(20)).is_some());
    assert!(!got);
    assert!(took >= Duration::from_millis(20));
    // An interruptible acquire still ends at once when interrupted.
    let g = gil.clone();
    let interrupted = spawn(move || {
        g.current_thread_state().interrupt();
        g.acquire_interruptible().map(|_| ())
    })
    .join();
    assert_eq!(interrupted, Err(Interrupted));
    assert!(gil.is_locked());
}

// ---- interrupting a thread that is not waiting ----

#[test]
fn interrupting_a_detached_thread_is_kept_for_its_next_checkpoint_or_wait() {
    setup();
    let gil = Arc::new(Gil::new());
    let (ident_tx, ident_rx) = mpsc::channel();
    let (interrupted_tx, interrupted_rx) = mpsc::channel::<()>();
    let (checked_tx, checked_rx) = mpsc::channel::<()>();
    let target = {
        let gil = gil.clone();
        spawn(move || {
            let ident = gil.acquire().thread_state().ident();
            ident_tx.send(ident).unwrap();
            interrupted_rx.recv_timeout(BOUND).unwrap();
            // Not waiting when interrupted: the next checkpoint reports it,
            // once.
            let mut g = gil.acquire();
            assert!(g.should_yield());
            let first = g.checkpoint();
            let second = g.checkpoint();
            drop(g);
            checked_tx.send(()).unwrap();
            // Interrupted twice while not waiting: one flag, reported once,
            // and the next acquire_interruptible fails at once although the
            // Gil is free.
            interrupted_rx.recv_timeout(BOUND).unwrap();
            let start = Instant::now();
            let third = gil.acquire_interruptible().map(|_| ());
            let prompt = start.elapsed() < PROMPT;
            let fourth = gil.acquire_interruptible().map(|_| ());
            (first.interrupted, second.interrupted, third, prompt, fourth)
        })
    };
    let ident = ident_rx.recv_timeout(BOUND).unwrap();
    let state = state_of(&gil, ident);
    assert_eq!(state.status(), ThreadStatus::Detached);
    state.interrupt();
    assert!(state.eval_breaker().is_interrupt_pending());
    interrupted_tx.send(()).unwrap();
    // Interrupt again only once both checkpoints of the first phase ran:
    // an interrupt between them would be the second checkpoint's to report.
    checked_rx.recv_timeout(BOUND).unwrap();
    assert!(!state.eval_breaker().is_interrupt_pending());
    state.interrupt();
    state.interrupt();
    interrupted_tx.send(()).unwrap();
    let (first, second, third, prompt, fourth) = target.join();
    assert!(first && !second);
    assert_eq!(third, Err(Interrupted));
    assert!(prompt);
    assert_eq!(fourth, Ok(()), "the double interrupt was one flag");
    assert!(!gil.is_locked());
}

#[test]
fn an_uninterruptible_acquire_ignores_an_interrupt_and_the_checkpoint_reports_it() {
    setup();
    let gil = Arc::new(Gil::new());
    let guard = gil.acquire();
    let waiter = {
        let gil = gil.clone();
        spawn(move || {
            let mut g = gil.acquire();
            g.checkpoint().interrupted
        })
    };
    let state = {
        let start = Instant::now();
        loop {
            let waiting = gil
                .thread_states()
                .into_iter()
                .find(|s| s.status() == ThreadStatus::Waiting);
            if let Some(s) = waiting {
                break s;
            }
            assert!(start.elapsed() < BOUND, "the waiter never blocked");
            thread::yield_now();
        }
    };
    state.interrupt();
    drop(guard);
    // The plain acquire is not interruptible: it waits for the Gil, and
    // the interrupt stays pending for the checkpoint.
    assert!(waiter.join(), "the checkpoint after the acquire reports it");
}

#[test]
fn a_late_interrupt_never_ends_an_uninterruptible_gil_wait() {
    setup();
    // Found by examples/stress.rs. `ThreadState::interrupt` reads the key
    // of the wait the thread is in (`waiting_on`), then unparks the waiter
    // carrying the thread's token on that key. If the thread meanwhile
    // left its `acquire_interruptible` with the Gil, released it, and
    // parked again on the same Gil in a plain (uninterruptible) `acquire`
    // or a re-acquire after detach, checkpoint or a condition wait, that
    // late unpark hands it TOKEN_INTERRUPTED, and the plain acquire panics
    // with "unreachable: an untimed, uninterruptible wait ends with the
    // Gil". An uninterruptible wait must ignore the wake-up and park again,
    // leaving the interrupt pending for the next checkpoint.
    let gil = Arc::new(Gil::new());
    let stop = Arc::new(AtomicBool::new(false));
    let targets: Vec<_> = (0..4)
        .map(|_| {
            let (gil, stop) = (gil.clone(), stop.clone());
            spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = gil.acquire_interruptible();
                    drop(gil.acquire());
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let interrupters: Vec<_> = (0..4)
        .map(|_| {
            let (gil, stop) = (gil.clone(), stop.clone());
            spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for state in gil.thread_states() {
                        state.interrupt();
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(2)); // the time the race gets to happen
    stop.store(true, Ordering::Relaxed);
    for i in interrupters {
        i.join();
    }
    for t in targets {
        assert!(t.join() > 0);
    }
    assert!(!gil.is_locked());
}

/// A guard smuggled into its own attachment's `detach` closure (through a
/// thread-local: guards are not `Send`) cannot yield there: the thread does
/// not hold the Gil through it, so `yield_now` panics with a message that
/// says so, and the Gil is the outer guard's again after. (A `checkpoint`
/// there looks only at the thread's eval breaker, and with no request on
/// it returns at once, as anywhere.)
///
/// Mutation (2 December, a survivor of cargo-mutants): `GilGuard::
/// assert_held` doing nothing → `yield_now` returned false without a
/// panic: "yield_now through a smuggled guard did not panic".
#[test]
fn a_smuggled_guard_cannot_yield() {
    use gilock::GilGuard;
    use std::cell::RefCell;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    setup();
    static GIL: Gil = Gil::new();
    thread_local! {
        static STASH: RefCell<Option<GilGuard<'static>>> = const { RefCell::new(None) };
    }
    let mut outer = GIL.acquire();
    STASH.with(|s| *s.borrow_mut() = Some(GIL.ensure()));
    let result = catch_unwind(AssertUnwindSafe(|| {
        outer.detach(|| STASH.with(|s| s.borrow_mut().as_mut().unwrap().yield_now()))
    }));
    let payload = result.expect_err("yield_now through a smuggled guard did not panic");
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        msg.contains("GilGuard::yield_now: this thread does not hold the Gil"),
        "{msg}"
    );
    assert!(GIL.is_held_by_current_thread());
    STASH.with(|s| drop(s.borrow_mut().take()));
    drop(outer);
    assert!(!GIL.is_locked());
}
