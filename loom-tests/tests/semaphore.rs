#![cfg(loom)]
//! Loom models of `Semaphore`: no permit is lost or duplicated, waiters are
//! woken, and a waiter that times out at the head of the queue passes the
//! permits it could not use to the one behind it.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test semaphore -- --test-threads=1`.

use gilock::{BoundedSemaphore, Semaphore};
use loom::sync::Arc;
use loom::thread;
use loom_tests::{DEFAULT, Guarded, check};
use std::time::Duration;

/// One permit, two threads that each take it and give it back, the main
/// thread a third, each updating data that only the permit guards (a loom
/// `UnsafeCell`: two holders at once, or a permit handed over without a
/// release/acquire edge, is a data race loom reports). Every thread gets
/// through (a release reaches a parked waiter), and afterwards exactly the
/// one permit is left.
///
/// Mutation: in `RawSemaphore::release`, ignored the `WAITERS` bit (added
/// the permit with the fast-path compare-and-swap even while threads were
/// parked, never calling `dispatch`) → loom found the schedule where a
/// thread parked behind the holder was never woken ("deadlock": every
/// thread blocked). Mutation: the fast-path compare-and-swap of
/// `RawSemaphore::try_acquire` with `Relaxed` instead of `Acquire` (and,
/// separately, that of `release` with `Relaxed` instead of `Release`) →
/// "Causality violation: Concurrent write accesses to `UnsafeCell`" (with
/// the old `SeqCst` counter in place of the cell, both passed).
#[test]
fn no_lost_permit() {
    check(DEFAULT, || {
        let shared = Arc::new((Semaphore::new(1), Guarded::new()));
        let use_permit = |shared: &(Semaphore, Guarded)| {
            let (sem, data) = shared;
            sem.acquire();
            data.bump();
            sem.release_one();
        };
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let shared = shared.clone();
                thread::spawn(move || use_permit(&shared))
            })
            .collect();
        use_permit(&shared);
        for t in threads {
            t.join().unwrap();
        }
        let (sem, data) = &*shared;
        assert_eq!(data.get(), 3);
        assert_eq!(sem.available_permits(), 1);
        assert!(sem.try_acquire(), "a stale waiter blocks the fast path");
    });
}

/// A handoff to a parked waiter carries the releaser's writes too: the
/// main thread takes the only permit, a waiter queues for it, and the main
/// thread writes the guarded data and releases; the waiter, woken with the
/// permit already taken for it (`dispatch`), writes after it.
///
/// Mutation: `dispatch` woke the waiter without taking its permit
/// (`available.set(Some(avail))` on the `Unpark` path) → the permit was
/// counted twice: 2 left at the end (`left: 2, right: 1`). (The woken
/// waiter itself is ordered after the release by the park queue's lock;
/// what needs `dispatch`'s store to be Release is a newcomer taking a
/// leftover permit: `leftover_permits_carry_the_releasers_writes`.)
#[test]
fn a_handed_permit_carries_the_releasers_writes() {
    check(DEFAULT, || {
        let shared = Arc::new((Semaphore::new(1), Guarded::new()));
        let (sem, data) = &*shared;
        sem.acquire();
        let waiter = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (sem, data) = &*shared;
                sem.acquire();
                data.bump();
                sem.release_one();
            })
        };
        data.bump();
        sem.release_one();
        if sem.try_acquire() {
            data.bump();
            sem.release_one();
        }
        waiter.join().unwrap();
        assert!(data.get() >= 2);
        assert_eq!(sem.available_permits(), 1);
    });
}

/// `BoundedSemaphore`: a release that would take the count above the
/// initial one is refused, whether the semaphore has waiters or not. One
/// permit, taken by the main thread; a waiter asks for two with a timeout
/// (more than the bound: it can only time out), so while it is queued the
/// releases go through the hand-out (`dispatch`) and once it has left
/// through the fast path; the model timer ends its wait at any moment. Two
/// releases race, the main thread's and another thread's: exactly one may
/// succeed, and the count ends at the bound.
///
/// Mutation: in `RawSemaphore::dispatch`'s filter, dropped the bound check
/// (`bound.is_some_and(|b| total > b)` → `false`) → both releases went to
/// the queued waiter: "two permits from a bound of one". Mutation: the
/// same check on `RawSemaphore::release`'s fast path, and (separately) in
/// `dispatch`'s callback where nobody is queued any more → both releases
/// `Ok`, 2 permits (`left: 2, right: 1`).
#[test]
fn bounded_semaphore_refuses_exactly_the_release_above_its_bound() {
    check(DEFAULT, || {
        let sem = Arc::new(BoundedSemaphore::new(1));
        assert!(sem.try_acquire());
        let waiter = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire_n_timeout(2, Duration::from_millis(1)))
        };
        let releaser = {
            let sem = sem.clone();
            thread::spawn(move || sem.release_one())
        };
        // It steps once some thread waits with a deadline: the waiter.
        let timer = gilock::model::Timer::spawn(1);
        let mine = sem.release_one();
        let theirs = releaser.join().unwrap();
        assert!(!waiter.join().unwrap(), "two permits from a bound of one");
        timer.join();
        assert_eq!(
            usize::from(mine.is_ok()) + usize::from(theirs.is_ok()),
            1,
            "{mine:?} {theirs:?}"
        );
        assert_eq!(sem.available_permits(), 1);
    });
}

/// Requests of different sizes: a thread asks for two permits, another for
/// one, and the main thread releases three, one by one. Both must be
/// served and no permit may be left over or missing, in every order of
/// arrival (a large request at the head is served before the small one
/// behind it, so handoff must hand over the right counts).
///
/// Mutation: in `RawSemaphore::dispatch`'s filter, did not subtract the
/// request from the permits still available after choosing to wake a
/// waiter (`available.set(Some(avail))` on the `Unpark` path) → loom found
/// a schedule where both waiters were woken from two permits and the final
/// count was off (`left: 1, right: 0` on `available_permits`).
#[test]
fn mixed_requests_conserve_permits() {
    check(DEFAULT, || {
        let sem = Arc::new(Semaphore::new(0));
        let big = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire_n(2))
        };
        let small = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire())
        };
        for _ in 0..3 {
            sem.release_one();
        }
        big.join().unwrap();
        small.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
        assert!(!sem.try_acquire());
    });
}

/// A thread asks for two permits with a timeout and queues; then another
/// asks for one without, and one permit is released, while the model timer
/// may fire at any moment. The timed request can never be met, so it times
/// out; the untimed one, queued behind it (or arriving after the release,
/// when it must not bypass the timed one either), must then get the permit
/// that the head could not use.
///
/// Mutation: in `RawSemaphore::acquire_slow`, skipped the `dispatch(0)`
/// that a timed-out waiter runs when others remain queued → loom found the
/// schedule where the small request slept on behind the departed head with
/// a free permit ("deadlock": every thread blocked).
#[test]
fn timed_out_head_passes_permits_on() {
    check(DEFAULT, || {
        let sem = Arc::new(Semaphore::new(0));
        let timed = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire_n_timeout(2, Duration::from_millis(1)))
        };
        // Only a tick after the timed request took its deadline ends it.
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        let untimed = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire())
        };
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        sem.release_one();
        assert!(!timed.join().unwrap());
        untimed.join().unwrap();
        timer.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
    });
}

/// A thread holding the Gil waits for a permit through its guard. The main
/// thread interrupts it if it has published its `ThreadState` yet (and then
/// releases no permit), or else releases one. An interrupted wait must end
/// `Err(Interrupted)` wherever the interrupt lands (before the waiter
/// queued, or while it sleeps), consume the interrupt, hold the Gil again,
/// and leave the semaphore as if it had never waited: no `WAITERS` bit
/// left behind to push later acquirers off the fast path.
///
/// Mutation: in `RawSemaphore::acquire_slow`, skipped the `dispatch(0)`
/// that an interrupted waiter runs to tidy up → loom found the schedule
/// where the interrupt took the waiter out of the queue and `WAITERS`
/// stayed set (the `has_waiters: false` assertion failed).
#[test]
fn interrupted_gil_waiter_leaves_no_trace() {
    use gilock::{Gil, Interrupted, ThreadState};
    use loom::sync::Mutex;

    /// Executions in which the interrupt was sent: the model must reach
    /// that branch, or it checks nothing about interrupts.
    static INTERRUPTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    check(DEFAULT, || {
        let shared = Arc::new((Gil::new(), Semaphore::new(0)));
        let published: Arc<Mutex<Option<std::sync::Arc<ThreadState>>>> = Arc::new(Mutex::new(None));
        let waiter = {
            let (shared, published) = (shared.clone(), published.clone());
            thread::spawn(move || {
                let (gil, sem) = &*shared;
                let mut guard = gil.acquire();
                *published.lock().unwrap() = Some(gil.current_thread_state());
                let result = sem.acquire_with(&mut guard);
                (result, gil.is_held_by_current_thread())
            })
        };
        let (_, sem) = &*shared;
        let target = published.lock().unwrap().clone();
        match &target {
            Some(target) => target.interrupt(),
            None => sem.release_one(),
        }
        let (result, held) = waiter.join().unwrap();
        assert!(held, "the Gil is held again when the wait returns");
        match &target {
            Some(target) => {
                assert_eq!(result, Err(Interrupted));
                assert!(!target.eval_breaker().is_interrupt_pending(), "consumed");
                assert_eq!(
                    format!("{sem:?}"),
                    "Semaphore { available_permits: 0, has_waiters: false }"
                );
                sem.release_one();
                assert!(sem.try_acquire());
                INTERRUPTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            None => {
                assert_eq!(result, Ok(()));
                assert_eq!(sem.available_permits(), 0);
            }
        }
    });
    assert!(INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// Permits left over after a hand-out carry the releaser's writes: a
/// waiter asks for one permit and queues; the main thread writes the
/// guarded data and releases two, so `dispatch` hands one to the waiter
/// (through the park queue) and puts the other into the word, where a
/// newcomer takes it with the fast path's compare-and-swap and reads the
/// data.
///
/// Mutation: the store of the leftover permits in `RawSemaphore::dispatch`'s
/// callback `Relaxed` instead of `Release` → "Causality violation:
/// Concurrent read and write accesses to `UnsafeCell`" (the newcomer's
/// read).
#[test]
fn leftover_permits_carry_the_releasers_writes() {
    check(DEFAULT, || {
        let shared = Arc::new((Semaphore::new(0), Guarded::new()));
        let waiter = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (sem, data) = &*shared;
                sem.acquire();
                data.get()
            })
        };
        let (sem, data) = &*shared;
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        let newcomer = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (sem, data) = &*shared;
                sem.try_acquire().then(|| data.get())
            })
        };
        data.bump();
        sem.release(2);
        assert_eq!(waiter.join().unwrap(), 1);
        if let Some(seen) = newcomer.join().unwrap() {
            assert_eq!(seen, 1);
        }
    });
}

/// The same when nobody is queued any more but the `WAITERS` bit still
/// says so: a waiter holding the Gil queues for a permit and is taken out
/// of the queue by an interrupt, which does not touch the semaphore's word
/// (the waiter tidies it up itself a moment later). A release in that
/// moment goes through `dispatch`, finds nobody, and adds the permit to the
/// word (the `fetch_update`); a newcomer takes it with the fast path and
/// reads what the releaser wrote.
///
/// Mutation: that `fetch_update` with `Relaxed` instead of `Release` →
/// "Causality violation: Concurrent read and write accesses to
/// `UnsafeCell`" (the newcomer's read).
#[test]
fn a_permit_released_past_a_departed_waiter_carries_the_releasers_writes() {
    use gilock::Gil;
    check(DEFAULT, || {
        let shared = Arc::new((Gil::new(), Semaphore::new(0), Guarded::new()));
        let slot = loom_tests::slot();
        let waiter = {
            let (shared, slot) = (shared.clone(), slot.clone());
            thread::spawn(move || {
                let (gil, sem, _) = &*shared;
                let mut guard = gil.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                sem.acquire_with(&mut guard).is_ok()
            })
        };
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        let interrupter = loom_tests::interrupter(&slot);
        let newcomer = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (_, sem, data) = &*shared;
                sem.try_acquire().then(|| data.get())
            })
        };
        let (_, sem, data) = &*shared;
        data.bump();
        sem.release_one();
        let took = waiter.join().unwrap();
        assert!(interrupter.join().unwrap());
        let seen = newcomer.join().unwrap();
        if let Some(seen) = seen {
            assert_eq!(seen, 1);
        }
        // The one permit went to exactly one place.
        assert_eq!(
            usize::from(took) + usize::from(seen.is_some()) + sem.available_permits(),
            1
        );
    });
}
