#![cfg(loom)]
//! Loom models of `RawFairMutex`: mutual exclusion, handoff after a drop
//! request, timed-out waiters, `unlock_fair` and `bump`.
//!
//! Loom has no clock: switch intervals and `try_lock_for` deadlines run out
//! only when a thread calls `gilock::model::fire_timeouts()`, and loom
//! explores that call at every point where the calling thread can run.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test fair_mutex`.

use gilock::{FairMutex, Gil, Interrupted, MutexExt, RawFairMutex};
use lock_api::{RawMutex, RawMutexFair, RawMutexTimed};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use loom_tests::{DEFAULT, check};
use std::time::Duration;

/// A mutex and the data it guards, in a loom cell: loom reports any two
/// accesses to the data that are not ordered by the lock (an overlap of two
/// critical sections, or a missing Acquire/Release edge).
struct Guarded {
    mutex: RawFairMutex,
    data: UnsafeCell<usize>,
}

// SAFETY: `data` is only touched with `mutex` held (`critical`) or after
// every other thread has been joined (`value`).
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            // `new`, not `INIT`: the state word is created here, inside the
            // model, so no extra synchronisation of lazy creation hides bugs.
            mutex: RawFairMutex::new(),
            data: UnsafeCell::new(0),
        })
    }

    /// The critical section; call it only with the lock held.
    fn critical(&self) {
        // SAFETY: the caller holds the lock; loom checks that it really does.
        self.data.with_mut(|p| unsafe { *p += 1 });
    }

    /// Locks, runs the critical section, unlocks.
    fn increment(&self) {
        let guard = self.mutex.lock();
        self.critical();
        // SAFETY: `guard` came from this mutex.
        unsafe { self.mutex.unlock(guard) };
    }

    /// The data, once every other thread is joined.
    fn value(&self) -> usize {
        // SAFETY: no other thread is left to touch the data.
        self.data.with(|p| unsafe { *p })
    }

    /// `Debug` of the raw mutex: the only window on its state word.
    fn state(&self) -> String {
        format!("{:?}", self.mutex)
    }
}

/// What an idle, unlocked mutex looks like once everyone is done: nobody
/// holds it, nobody is (thought to be) parked, no drop request is left.
const IDLE: &str =
    "RawFairMutex { locked: false, waiters: false, drop_requested: false, switch_interval: 5ms }";

/// A model timer: ticks the model clock once, at any point loom likes.
fn timer() -> thread::JoinHandle<()> {
    thread::spawn(|| {
        gilock::model::fire_timeouts();
    })
}

/// A waiter: takes the lock (blocking), and notes that it had it.
fn spawn_waiter(g: &Arc<Guarded>, had: &Arc<AtomicBool>) -> thread::JoinHandle<()> {
    let (g, had) = (g.clone(), had.clone());
    thread::spawn(move || {
        let guard = g.mutex.lock();
        g.critical();
        had.store(true, Ordering::Relaxed);
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock(guard) };
    })
}

/// A newcomer: tries once to take the lock without queueing. If it gets it
/// after a release that owed the lock to the waiter (`due`), the waiter must
/// have had it first. Whatever the releasing thread stored in `due` before
/// releasing is visible here: the lock's Release/Acquire chain (or the
/// handoff through the park queue) runs from that release to this thread.
fn spawn_newcomer(
    g: &Arc<Guarded>,
    had: &Arc<AtomicBool>,
    due: &Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    let (g, had, due) = (g.clone(), had.clone(), due.clone());
    thread::spawn(move || {
        if let Some(guard) = g.mutex.try_lock() {
            if due.load(Ordering::Relaxed) {
                assert!(
                    had.load(Ordering::Relaxed),
                    "a newcomer barged past the waiter the lock was owed to"
                );
            }
            g.critical();
            // SAFETY: `guard` came from this mutex.
            unsafe { g.mutex.unlock(guard) };
        }
    })
}

/// Two threads increment under the lock while the switch interval may run
/// out at any moment, so the overdue re-park, the drop request and the
/// handoff on plain unlock are all part of what must stay exclusive.
///
/// Mutation: `hand_off`'s callback stored the remaining bits without
/// LOCKED while still sending TOKEN_HANDOFF → loom reported "Causality
/// violation: Concurrent write accesses to `UnsafeCell`" (the other
/// thread's second lock barged in on the heir). Also caught: `wake_to_retry`
/// handing the lock to an overdue heir without first taking LOCKED for it
/// (the `fetch_or` test replaced by `true`) → the same report. Each worker
/// locks twice for that reason: with one lock each, nobody is left to barge.
#[test]
fn exclusion_two_threads_with_timer() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                // Twice: the second lock can barge in on a handoff.
                thread::spawn(move || {
                    g.increment();
                    g.increment();
                })
            })
            .collect();
        let timer = timer();
        for w in workers {
            w.join().unwrap();
        }
        timer.join().unwrap();
        assert_eq!(g.value(), 4);
        assert_eq!(g.state(), IDLE);
    });
}

/// Three contenders (two threads and main) on one mutex: queueing behind
/// a holder, waking with TOKEN_RETRY and competing again, barging.
///
/// Mutation: `lock_slow` treated every wake-up as ownership
/// (`ParkResult::Unparked(_) => return true`) → loom reported "Causality
/// violation: Concurrent write accesses to `UnsafeCell`" (a thread woken to
/// retry entered while a barger held the lock). Also caught: the unlock
/// fast path's CAS, or the slow path's releasing `fetch_and`, with
/// `Relaxed` instead of `Release` → the same report (the next holder's
/// access is not ordered after the last one).
#[test]
fn exclusion_three_threads() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || g.increment())
            })
            .collect();
        g.increment();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(g.value(), 3);
        assert_eq!(g.state(), IDLE);
    });
}

/// The same three contenders with the switch interval running out at any
/// moment (overdue re-parks, drop requests, handoffs on plain unlock).
///
/// Mutation: a waiter whose interval ran out took that for ownership
/// (`return true` after `overdue = true` in `lock_slow`) → loom reported
/// "Causality violation: Concurrent write accesses to `UnsafeCell`".
#[test]
fn exclusion_three_threads_with_timer() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || g.increment())
            })
            .collect();
        let timer = timer();
        g.increment();
        for w in workers {
            w.join().unwrap();
        }
        timer.join().unwrap();
        assert_eq!(g.value(), 3);
        assert_eq!(g.state(), IDLE);
    });
}

/// Handoff after a drop request: main holds the lock; a waiter's interval
/// runs out (the timer fires) and it raises the drop request. If main sees
/// the request before its plain `unlock`, the lock must go to the waiter:
/// main, re-locking at once, and a newcomer trying to barge must both find
/// it taken until the waiter has had it.
///
/// Mutation: plain unlock never hands off (`unlock_slow` branching on
/// `fair` alone, ignoring the drop request, and `wake_to_retry` never
/// handing over to an overdue heir) → "the overdue waiter must get the lock
/// before the releasing holder re-takes it" failed; with that assertion
/// removed, "a newcomer barged past the waiter the lock was owed to" failed
/// instead, so both checks are live.
#[test]
fn drop_request_hands_off_to_the_overdue_waiter() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let waiter_had_it = Arc::new(AtomicBool::new(false));
        let handoff_due = Arc::new(AtomicBool::new(false));
        let guard = g.mutex.lock();

        let waiter = spawn_waiter(&g, &waiter_had_it);
        let newcomer = spawn_newcomer(&g, &waiter_had_it, &handoff_due);
        let timer = timer();

        g.critical();
        // Only a parked overdue waiter raises the request, and it stays
        // parked until an unlock wakes it: if it is up now, the unlock
        // below must hand over.
        let due = g.mutex.is_drop_requested();
        handoff_due.store(due, Ordering::Relaxed);
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock(guard) };
        let guard = g.mutex.lock();
        if due {
            assert!(
                waiter_had_it.load(Ordering::Relaxed),
                "the overdue waiter must get the lock before the releasing holder re-takes it"
            );
        }
        g.critical();
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock(guard) };

        waiter.join().unwrap();
        newcomer.join().unwrap();
        timer.join().unwrap();
        assert_eq!(g.state(), IDLE);
    });
}

/// Invariant 3 with a patient waiter ahead of the overdue one: the main
/// thread holds the lock; O queues, and one step of the model clock ends
/// its interval, so O re-parks at the tail of the queue as overdue and
/// raises the drop request; P queues meanwhile, with an interval still
/// running (patient), ahead of O when O re-parks after it. If the request
/// is up when the main thread unlocks, the lock is owed to the oldest
/// *overdue* waiter: O must have it first, whatever the queue's order.
///
/// Mutation: in `Heir::filter`, handed the lock to the first waiter,
/// overdue or not (`only_overdue` ignored) → loom found the queue
/// `[P, O]` and P got the lock first (`left: "P"`).
#[test]
fn drop_request_hands_off_to_an_overdue_waiter_behind_a_patient_one() {
    static OWED: loom_tests::Reached = loom_tests::Reached::new();
    check(DEFAULT, || {
        let g = Guarded::new();
        let log = Arc::new(loom::sync::Mutex::new(Vec::new()));
        let guard = g.mutex.lock();
        let waiter = |name: &'static str| {
            let (g, log) = (g.clone(), log.clone());
            thread::spawn(move || {
                let guard = g.mutex.lock();
                g.critical();
                log.lock().unwrap().push(name);
                // SAFETY: `guard` came from this mutex.
                unsafe { g.mutex.unlock(guard) };
            })
        };
        let overdue = waiter("O");
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        // O's interval ends (it is the only thread in a timed wait).
        assert_eq!(gilock::model::fire_timeouts(), 1);
        let patient = waiter("P");
        while gilock::model::parked_threads() < 2 {
            thread::yield_now();
        }
        let owed = g.mutex.is_drop_requested();
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock(guard) };
        overdue.join().unwrap();
        patient.join().unwrap();
        if owed {
            OWED.hit();
            assert_eq!(log.lock().unwrap()[0], "O");
        }
        assert_eq!(g.value(), 2);
        assert_eq!(g.state(), IDLE);
    });
    OWED.assert_reached("an unlock with the drop request up");
}

/// A `try_lock_for` waiter whose deadline may pass at any moment (the timer)
/// while main releases the lock and another thread waits untimed: whichever
/// wins each race, the timed waiter either gets the lock or leaves the
/// queue cleanly; the untimed waiter is never stranded (loom reports a
/// deadlock if it stays parked), exclusion holds, and the mutex ends idle.
///
/// Mutation: the `timed_out` callback of `lock_slow` cleared PARKED even
/// when other waiters remained (`was_last` ignored) → loom reported a
/// deadlock: an unlock took the fast path and the untimed waiter stayed
/// parked. (Leaving PARKED set when the *last* waiter times out is not
/// caught, and rightly: the next unlock's slow path clears it, so it only
/// costs time.)
#[test]
fn timed_out_waiter_leaves_the_mutex_consistent() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let guard = g.mutex.lock();
        let timed = {
            let g = g.clone();
            thread::spawn(move || {
                // Any nonzero timeout runs out at the timer's tick.
                if let Some(guard) = g.mutex.try_lock_for(Duration::from_secs(1)) {
                    g.critical();
                    // SAFETY: `guard` came from this mutex.
                    unsafe { g.mutex.unlock(guard) };
                    true
                } else {
                    false
                }
            })
        };
        let untimed = {
            let g = g.clone();
            thread::spawn(move || g.increment())
        };
        let timer = timer();
        g.critical();
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock(guard) };

        let timed_got_it = timed.join().unwrap();
        untimed.join().unwrap();
        timer.join().unwrap();
        assert_eq!(g.value(), 2 + usize::from(timed_got_it));
        assert_eq!(g.state(), IDLE);
        // And it still works.
        assert!(g.mutex.try_lock().is_some());
    });
}

/// Whether the waiter is parked on the mutex right now (in its queue, so
/// an unlock must find it), asked without waking it or moving the clock.
fn waiter_is_parked() -> bool {
    gilock::model::parked_threads() > 0
}

/// `unlock_fair` hands the lock to a parked waiter: main, re-locking at
/// once, and a newcomer trying to barge must both find it taken until the
/// waiter has had it.
///
/// Mutation: `unlock_fair_raw` called `unlock_slow(false)` (a plain unlock)
/// → "unlock_fair must hand the lock to the parked waiter" failed (main
/// re-took the lock while the woken waiter had not run yet); with that
/// assertion removed, "a newcomer barged past the waiter the lock was owed
/// to" failed instead.
#[test]
fn unlock_fair_hands_off() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let waiter_had_it = Arc::new(AtomicBool::new(false));
        let handoff_due = Arc::new(AtomicBool::new(false));
        let guard = g.mutex.lock();
        let waiter = spawn_waiter(&g, &waiter_had_it);
        let newcomer = spawn_newcomer(&g, &waiter_had_it, &handoff_due);
        g.critical();
        let parked = waiter_is_parked();
        handoff_due.store(parked, Ordering::Relaxed);
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock_fair(guard) };
        let guard = g.mutex.lock();
        if parked {
            assert!(
                waiter_had_it.load(Ordering::Relaxed),
                "unlock_fair must hand the lock to the parked waiter"
            );
        }
        g.critical();
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock(guard) };
        waiter.join().unwrap();
        newcomer.join().unwrap();
        assert_eq!(g.state(), IDLE);
    });
}

/// `unlock_fair` with the waiters bit up but nobody queued yet (a waiter
/// is between raising `PARKED` and parking): it hands the lock to nobody
/// and frees the word, and that free must publish the critical section to
/// whoever takes the lock next by compare-and-swap without passing the
/// park queue, a newcomer here (the waiter learns of the free word in its
/// `validate`, with the queue locked, which orders it anyway).
///
/// Mutation: the store that frees the word in `RawFairMutex::hand_off`
/// (nobody unparked, `only_overdue` false) `Relaxed` instead of `Release`
/// → "Causality violation: Concurrent write accesses to `UnsafeCell`"
/// between the main thread's and the newcomer's critical sections. (With
/// the waiter alone, no newcomer, the mutant passes.)
#[test]
fn unlock_fair_with_nobody_queued_yet_publishes_the_critical_section() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let guard = g.mutex.lock();
        let waiter = {
            let g = g.clone();
            thread::spawn(move || g.increment())
        };
        let newcomer = {
            let g = g.clone();
            thread::spawn(move || g.increment())
        };
        g.critical();
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock_fair(guard) };
        waiter.join().unwrap();
        newcomer.join().unwrap();
        assert_eq!(g.value(), 3);
        assert_eq!(g.state(), IDLE);
    });
}

/// An unlock that finds an overdue waiter at the head of the queue after it
/// let go (it raised its drop request too late for this unlock to see it)
/// takes the lock back for that waiter (`wake_to_retry`) and hands it
/// over. A newcomer may have taken and released the lock in between; the
/// waiter must then see the newcomer's critical section too. The main
/// thread holds the lock; O queues and the main thread ends O's interval
/// (O re-parks overdue); N comes by; the main thread unlocks.
///
/// Mutation: the `fetch_or(LOCKED)` in `RawFairMutex::wake_to_retry`
/// `Relaxed` instead of `Acquire` → at preemption bound 3 (it passes at 2,
/// so CI runs it at 3): "Causality violation: Concurrent write accesses to
/// `UnsafeCell`" between the newcomer's critical section and O's.
#[test]
fn a_retaken_handoff_carries_a_newcomers_critical_section() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let guard = g.mutex.lock();
        let overdue = {
            let g = g.clone();
            thread::spawn(move || g.increment())
        };
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        assert_eq!(gilock::model::fire_timeouts(), 1);
        let newcomer = {
            let g = g.clone();
            thread::spawn(move || g.increment())
        };
        g.critical();
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock(guard) };
        overdue.join().unwrap();
        newcomer.join().unwrap();
        assert_eq!(g.value(), 3);
        assert_eq!(g.state(), IDLE);
    });
}

/// `bump` lets a parked waiter run (no newcomer barges in between) and
/// takes the lock back; with nobody parked it may keep the lock. Exclusion
/// holds across it.
///
/// Mutation: `bump_raw` released with `unlock_raw` instead of
/// `unlock_fair_raw` → "bump must let the parked waiter have the lock"
/// failed; with that assertion removed, "a newcomer barged past the waiter
/// the lock was owed to" failed instead.
#[test]
fn bump_lets_the_waiter_run() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let waiter_had_it = Arc::new(AtomicBool::new(false));
        let handoff_due = Arc::new(AtomicBool::new(false));
        let mut guard = g.mutex.lock();
        let waiter = spawn_waiter(&g, &waiter_had_it);
        let newcomer = spawn_newcomer(&g, &waiter_had_it, &handoff_due);
        g.critical();
        let parked = waiter_is_parked();
        handoff_due.store(parked, Ordering::Relaxed);
        // SAFETY: `guard` came from this mutex and is held.
        unsafe { g.mutex.bump(&mut guard) };
        if parked {
            assert!(
                waiter_had_it.load(Ordering::Relaxed),
                "bump must let the parked waiter have the lock"
            );
        }
        g.critical();
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock(guard) };
        waiter.join().unwrap();
        newcomer.join().unwrap();
        assert_eq!(g.state(), IDLE);
    });
}

/// An interrupt that takes a waiter out of the queue must leave an overdue
/// waiter's drop request up: a holder polling `is_drop_requested` at its
/// checkpoints (to `bump`) relies on it to learn that the lock is owed. The
/// main thread holds the lock; O queues, and one step of the model clock
/// ends its interval, so it re-parks overdue and raises the request; I,
/// holding the Gil, queues behind it with `lock_with` and is interrupted
/// there (the interrupter takes it out of the queue without looking at its
/// bits, so I tidies up after itself). The request must still be up, and
/// the unlock must hand the lock to O: a newcomer trying to barge in, and
/// the main thread locking again, find O's increment already done.
///
/// Mutation: in `RawFairMutex::tidy_after_leaving`, deleted the `!` of
/// `!any_overdue.get()` (the request cleared when an overdue waiter is
/// left, kept when none is; a survivor of the mutation sample) → "the
/// interrupted waiter's departure cleared O's drop request"; with that
/// assertion removed, "a newcomer barged past the overdue waiter" failed
/// instead (`left: 0, right: 1`: the plain unlock released the lock and the
/// newcomer took it before the wake-up reached O), so both checks are live.
#[test]
fn an_interrupted_waiter_leaves_an_overdue_waiters_drop_request_up() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let mutex = Arc::new(FairMutex::from_raw(
            RawFairMutex::new(),
            loom_tests::Guarded::new(),
        ));
        // SAFETY:
        // - `raw` is unsafe because locking or unlocking behind the
        //   Mutex's back breaks its guards' promise;
        // - it is only asked about its state here.
        let drop_requested =
            |m: &FairMutex<loom_tests::Guarded>| unsafe { m.raw() }.is_drop_requested();
        let held = mutex.lock();
        let overdue = {
            let mutex = mutex.clone();
            thread::spawn(move || mutex.lock().bump())
        };
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        // O's interval ends (it is the only thread in a timed wait); it
        // re-parks overdue and raises the request.
        assert_eq!(gilock::model::fire_timeouts(), 1);
        while !drop_requested(&mutex) {
            thread::yield_now();
        }
        let slot = loom_tests::slot();
        let leaver = {
            let (gil, mutex, slot) = (gil.clone(), mutex.clone(), slot.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                mutex.lock_with(&mut guard).map(|_| ())
            })
        };
        while gilock::model::parked_threads() < 2 {
            thread::yield_now();
        }
        // I is parked on the mutex (it published its state before it
        // queued): the interrupt takes it out of the queue.
        slot.lock().unwrap().as_ref().unwrap().interrupt();
        assert_eq!(leaver.join().unwrap(), Err(Interrupted));
        assert!(
            drop_requested(&mutex),
            "the interrupted waiter's departure cleared O's drop request"
        );
        // O is owed the lock: neither a newcomer trying to barge in nor
        // the main thread locking again may have it before O.
        let newcomer = {
            let mutex = mutex.clone();
            thread::spawn(move || {
                if let Some(data) = mutex.try_lock() {
                    assert_eq!(data.get(), 1, "a newcomer barged past the overdue waiter");
                    data.bump();
                }
            })
        };
        drop(held);
        assert!(
            mutex.lock().get() >= 1,
            "the main thread took the lock back before the overdue waiter"
        );
        overdue.join().unwrap();
        newcomer.join().unwrap();
        // SAFETY: as above; its `Debug` only reads the state word.
        let raw = unsafe { mutex.raw() };
        assert_eq!(format!("{raw:?}"), IDLE);
        assert!(!gil.is_locked());
    });
}

/// An overdue waiter that times out takes its drop request with it when
/// nobody else is overdue: the request means "a waiter is owed the lock",
/// and a holder polling `is_drop_requested` would otherwise `bump` for
/// nobody, and its next unlock hand the lock to a waiter still within its
/// interval. The main thread holds the lock; T waits with
/// `try_lock_for(7 ms)`, and one step of the model clock ends its 5 ms
/// interval, so it re-parks overdue and raises the request; P queues
/// behind it, untimed, its interval ending at 10 ms; the next step reaches
/// T's deadline. With T gone, only the patient P is parked: no request may
/// be left.
///
/// Mutation: the code before the fix (no `tidy_after_leaving` after an
/// overdue waiter's timeout in `RawFairMutex::lock_slow`: the `timed_out`
/// callback clears the request only when the queue empties) → "an overdue
/// waiter's timeout left its drop request up" (`RawFairMutex { locked:
/// true, waiters: true, drop_requested: true, .. }`). The `!` of
/// `!any_overdue.get()` in `tidy_after_leaving` deleted → the same.
#[test]
fn a_timed_out_overdue_waiter_takes_its_drop_request_with_it() {
    check(DEFAULT, || {
        let g = Guarded::new();
        let guard = g.mutex.lock();
        let timed = {
            let g = g.clone();
            thread::spawn(move || {
                let taken = g.mutex.try_lock_for(Duration::from_millis(7));
                taken.map(|guard| {
                    g.critical();
                    // SAFETY: `guard` came from this mutex.
                    unsafe { g.mutex.unlock(guard) };
                })
            })
        };
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        // T's interval ends (it is the only thread in a timed wait).
        assert_eq!(gilock::model::fire_timeouts(), 1);
        while !g.mutex.is_drop_requested() {
            thread::yield_now();
        }
        let patient = {
            let g = g.clone();
            thread::spawn(move || g.increment())
        };
        while gilock::model::parked_threads() < 2 {
            thread::yield_now();
        }
        // T's deadline (7 ms) comes before P's interval ends (10 ms).
        assert_eq!(gilock::model::fire_timeouts(), 1);
        assert_eq!(timed.join().unwrap(), None, "T got the lock main holds");
        assert!(
            !g.mutex.is_drop_requested(),
            "an overdue waiter's timeout left its drop request up: {}",
            g.state()
        );
        g.critical();
        // SAFETY: `guard` came from this mutex.
        unsafe { g.mutex.unlock(guard) };
        patient.join().unwrap();
        assert_eq!(g.value(), 2);
        assert_eq!(g.state(), IDLE);
    });
}
