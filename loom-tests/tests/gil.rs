#![cfg(loom)]
//! Loom models of the `Gil`: mutual exclusion, forced switching
//! (invariant 4), drop requests only without a switch (invariant 5), even
//! while the switch count lags a new holder, and never lost to a stale
//! look at the waiters bit,
//! detach/attach, interrupts (invariant 8) and timed acquisition racing the
//! model timer (invariant 7).
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test gil`.
//!
//! Switch intervals and timeouts run out only when a timer thread calls
//! `gilock::model::fire_timeouts()`; loom explores that tick at every point
//! where the timer thread can run.

use gilock::{Gil, GilGuard, Interrupted, ThreadState};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use loom_tests::{DEFAULT, LONG, check};
use std::time::Duration;

/// Data that only the Gil protects; loom's `UnsafeCell` reports any access
/// that is not ordered after the previous one, i.e. two holders at once.
struct Shared(UnsafeCell<usize>);

// SAFETY: accessed only through `bump`/`get`, which require a guard of the
// one Gil each model uses with it.
unsafe impl Sync for Shared {}

impl Shared {
    fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    fn bump(&self, _guard: &GilGuard<'_>) {
        // SAFETY: the caller holds the Gil (loom checks it).
        self.0.with_mut(|p| unsafe { *p += 1 });
    }

    fn get(&self, _guard: &GilGuard<'_>) -> usize {
        // SAFETY: as `bump`.
        self.0.with(|p| unsafe { *p })
    }
}

/// Two threads take the Gil, update data it protects, pass a checkpoint and
/// let go; a timer may fire at any moment, so drop requests and forced
/// switches happen in some executions.
///
/// Mutation: in `Gil::wake_heir`'s callback, handed the Gil over
/// (`TOKEN_HANDOFF`) but left the word unlocked (`state = 0`) → loom
/// reported "Concurrent write accesses to `UnsafeCell`": the heir and the
/// dropper, re-taking the free word at its checkpoint, both held the Gil.
#[test]
fn mutual_exclusion() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let data = Arc::new(Shared::new());
        let worker = {
            let (gil, data) = (gil.clone(), data.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                data.bump(&guard);
                guard.checkpoint();
                data.bump(&guard);
            })
        };
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        {
            let mut guard = gil.acquire();
            data.bump(&guard);
            guard.checkpoint();
            data.bump(&guard);
        }
        worker.join().unwrap();
        timer.join().unwrap();
        let guard = gil.acquire();
        assert_eq!(data.get(&guard), 4);
    });
}

/// The main thread holds the Gil; a waiter waits a (model) interval, asks
/// for the Gil, and the main thread passes one checkpoint. Each thread logs
/// its name when it gets the Gil. If the checkpoint reports a switch, the
/// waiter must have held the Gil in between (invariant 4: the dropper does
/// not take the Gil back before another thread held it). Some execution
/// must take the forced-switch path, or the model checks nothing.
///
/// Mutation: in `Gil::wake_heir`'s callback, released the Gil (`state = 0`,
/// no holder) and woke the heir with `DEFAULT_UNPARK_TOKEN` to compete for
/// it, instead of handing it over → the dropper re-took the Gil by
/// compare-and-swap before the heir ran: the log read `["main", "main"]`.
#[test]
fn forced_switching() {
    static SWITCHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut guard = gil.acquire();
        log.lock().unwrap().push("main");
        let waiter = {
            let (gil, log) = (gil.clone(), log.clone());
            thread::spawn(move || {
                let _guard = gil.acquire();
                log.lock().unwrap().push("waiter");
            })
        };
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        if guard.checkpoint().switched {
            log.lock().unwrap().push("main");
            SWITCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let log = log.lock().unwrap();
            assert_eq!(*log, ["main", "waiter", "main"]);
        }
        drop(guard);
        waiter.join().unwrap();
        timer.join().unwrap();
    });
    assert!(SWITCHED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// The main thread holds the Gil while two threads wait; then it lets go and
/// one of them (H) gets it. The model timer ticks once. If the tick came
/// before the main thread let go, every waiter's interval that ran out began
/// before the switch to H, so no drop request may reach H (invariant 5: a
/// drop request only if no switch happened during the interval) — although
/// one may reach the main thread, and in some executions does.
///
/// Mutation: in `Gil::wait_for_gil`'s `validate`, dropped the re-check that
/// the switch number is still the one the interval began with → a waiter
/// that timed out before the switch set the drop request on H after it
/// ("drop request on a thread that took over during the interval").
#[test]
fn drop_request_only_without_a_switch() {
    static REQUESTED_FROM_MAIN: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);
    check(LONG, || {
        let gil = Arc::new(Gil::new());
        let fired = Arc::new(AtomicBool::new(false));
        let tick_before_switch = Arc::new(AtomicBool::new(false));
        let guard = gil.acquire();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (gil, tick_before_switch) = (gil.clone(), tick_before_switch.clone());
                thread::spawn(move || {
                    let guard = gil.acquire();
                    if tick_before_switch.load(Ordering::SeqCst) {
                        assert!(
                            !guard.thread_state().eval_breaker().is_drop_requested(),
                            "drop request on a thread that took over during the interval"
                        );
                    }
                })
            })
            .collect();
        let timer = {
            let fired = fired.clone();
            thread::spawn(move || {
                gilock::model::fire_timeouts();
                fired.store(true, Ordering::SeqCst);
            })
        };
        if fired.load(Ordering::SeqCst) {
            tick_before_switch.store(true, Ordering::SeqCst);
        }
        if guard.thread_state().eval_breaker().is_drop_requested() {
            REQUESTED_FROM_MAIN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        drop(guard);
        for w in waiters {
            w.join().unwrap();
        }
        timer.join().unwrap();
    });
    assert!(REQUESTED_FROM_MAIN.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// The one window where the switch count lags the holder, under `Fifo`:
/// the main thread holds the Gil; W, a timed waiter (which waits between
/// two parks in transit, not in a slot), has its interval run out (the
/// timer ticks once); the main thread lets go, which frees the word, as
/// nobody is parked; H takes the free word by compare-and-swap and counts
/// its switch only after. If the tick came before the main thread let go,
/// W's interval began under the main thread, so no drop request may reach
/// H, even from a look W takes between H's compare-and-swap and its count.
///
/// Mutation (4 December): in `Gil::wait_for_gil`'s `validate`, ignored the
/// holder the interval began under (`began_under.is_none_or(|h| h ==
/// holder)` → `true`, leaving only the switch-count check) → "drop request
/// on a thread that took the free word after the interval began under
/// another", at preemption bound 3 (it passes at bound 2, so CI runs it at
/// 3: 15 s). Every other model passed that mutant.
#[test]
fn no_drop_request_on_a_holder_that_took_the_free_word_after_the_interval() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let fired = Arc::new(AtomicBool::new(false));
        let tick_before_switch = Arc::new(AtomicBool::new(false));
        let guard = gil.acquire();
        let timed = {
            let gil = gil.clone();
            thread::spawn(move || {
                // Long enough that the one tick ends its interval, never
                // the wait itself.
                drop(gil.try_acquire_for(Duration::from_secs(3600)));
            })
        };
        let newcomer = {
            let (gil, tick_before_switch) = (gil.clone(), tick_before_switch.clone());
            thread::spawn(move || {
                let guard = gil.acquire();
                if tick_before_switch.load(Ordering::SeqCst) {
                    assert!(
                        !guard.thread_state().eval_breaker().is_drop_requested(),
                        "drop request on a thread that took the free word after the interval \
                         began under another"
                    );
                }
            })
        };
        let timer = {
            let fired = fired.clone();
            thread::spawn(move || {
                gilock::model::fire_timeouts();
                fired.store(true, Ordering::SeqCst);
            })
        };
        if fired.load(Ordering::SeqCst) {
            tick_before_switch.store(true, Ordering::SeqCst);
        }
        drop(guard);
        timed.join().unwrap();
        newcomer.join().unwrap();
        timer.join().unwrap();
    });
}

/// The main thread holds the Gil and a waiter's interval runs out (the
/// timer ticks once it is parked), so the waiter asks the main thread to
/// drop the Gil. The main thread sees the request (`should_yield`): its next
/// checkpoint must switch, whatever its look at the waiters bit returns.
/// That look is Relaxed, and may be older than the request.
///
/// Mutation (3 December): `GilGuard::checkpoint` back to clearing the
/// request on its first look at the waiters bit (no Acquire clear and second
/// look), and `ask_to_drop` back to Relaxed → "the checkpoint after a drop
/// request did not switch" (the look saw the word from before the waiter
/// queued, and the request was dropped; under Miri one seed of 48 of
/// `tests/attached.rs` `fifo_serves_an_interrupted_waiter_before_a_fresh_one`
/// then waited out the whole interval).
#[test]
fn a_drop_request_survives_a_stale_look_at_the_waiters() {
    drop_request_after_a_stale_look(After::Checkpoint);
}

/// The same, with a `GilCell` borrow alive through a second guard at the
/// first checkpoint after the request: that checkpoint keeps the Gil
/// (invariant 10), and the request stands for the next one.
///
/// Mutation (3 December): in `GilGuard::checkpoint`, the request not put
/// back when the second look finds a waiter → "the checkpoint after a drop
/// request did not switch" (the first look was stale, the clear took the
/// request, and the borrow kept the Gil without it).
#[test]
fn a_drop_request_kept_for_a_borrow_survives_a_stale_look_at_the_waiters() {
    drop_request_after_a_stale_look(After::CheckpointUnderABorrow);
}

/// The same with `yield_now` for the checkpoint: a thread that saw a drop
/// request knows a thread waits, so its yield must switch.
///
/// Mutations (4 December): `yield_now` back to one Relaxed look at the
/// waiters bit, as before the fix (no second look after reading a pending
/// request); and the read of the request Relaxed instead of Acquire → each:
/// "a yield after a drop request did not switch" (the look saw the word
/// from before the waiter queued, and the yield kept the Gil).
#[test]
fn a_yield_after_a_drop_request_switches_despite_a_stale_look() {
    drop_request_after_a_stale_look(After::Yield);
}

/// What the main thread does once it sees the drop request.
#[derive(Clone, Copy, PartialEq)]
enum After {
    Checkpoint,
    CheckpointUnderABorrow,
    Yield,
}

fn drop_request_after_a_stale_look(after: After) {
    check(DEFAULT, move || {
        let gil = Arc::new(Gil::new());
        let cell = gilock::GilCell::new(0usize);
        let mut guard = gil.acquire();
        let waiter = {
            let gil = gil.clone();
            thread::spawn(move || drop(gil.acquire()))
        };
        let timer = thread::spawn(|| {
            while gilock::model::fire_timeouts() == 0 {
                thread::yield_now();
            }
        });
        while !guard.should_yield() {
            thread::yield_now();
        }
        if after == After::Yield {
            assert!(
                guard.yield_now(),
                "a yield after a drop request did not switch"
            );
            drop(guard);
            waiter.join().unwrap();
            timer.join().unwrap();
            return;
        }
        if after == After::CheckpointUnderABorrow {
            // A borrow through a second guard keeps the Gil, and must keep
            // the request for the checkpoint after it.
            let inner = gil.ensure();
            let borrow = cell.borrow_mut(&inner);
            assert!(!guard.checkpoint().switched, "switched under a borrow");
            drop(borrow);
            drop(inner);
        }
        assert!(
            guard.checkpoint().switched,
            "the checkpoint after a drop request did not switch"
        );
        drop(guard);
        waiter.join().unwrap();
        timer.join().unwrap();
    });
}

/// The main thread detaches and, inside `detach`, joins a thread that needs
/// the Gil: it must get it (no deadlock), exclusively, and the main thread
/// must have it back afterwards.
///
/// Mutation: in `GilGuard::release_for_wait` (the start of `detach`),
/// skipped `gil.release(..)` → loom reported a deadlock (the worker waits
/// for a Gil the detached thread still holds).
#[test]
fn detach_and_attach() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let data = Arc::new(Shared::new());
        let mut guard = gil.acquire();
        data.bump(&guard);
        let worker = {
            let (gil, data) = (gil.clone(), data.clone());
            thread::spawn(move || {
                let guard = gil.acquire();
                data.bump(&guard);
            })
        };
        guard.detach(|| worker.join().unwrap());
        assert!(gil.is_held_by_current_thread());
        data.bump(&guard);
        assert_eq!(data.get(&guard), 3);
    });
}

/// A waiter blocks in `acquire_interruptible` while the main thread holds
/// the Gil; the main thread interrupts it (if it has published its state
/// yet) and then joins it still holding the Gil. An interrupted waiter must
/// return `Err(Interrupted)` without the Gil, wherever the interrupt lands
/// (before the call, before it parks, while parked), and the Gil must stay
/// the main thread's, then be free (invariant 8).
///
/// Mutation: in `Gil::wait_for_gil`'s `validate`, dropped the
/// `interrupt_pending` check → loom found the interleaving where the
/// interrupt came between the waiter's last look at the flag and its
/// joining the queue, and `interrupt`'s unpark found nobody: deadlock.
#[test]
fn interrupt() {
    static INTERRUPTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let published: Arc<Mutex<Option<std::sync::Arc<ThreadState>>>> = Arc::new(Mutex::new(None));
        let guard = gil.acquire();
        let waiter = {
            let (gil, published) = (gil.clone(), published.clone());
            thread::spawn(move || {
                *published.lock().unwrap() = Some(gil.current_thread_state());
                let result = gil.acquire_interruptible().map(|_| ());
                assert!(!gil.is_held_by_current_thread());
                result
            })
        };
        let target = published.lock().unwrap().clone();
        if let Some(target) = target {
            target.interrupt();
            // Still holding the Gil: only the interrupt can end the wait.
            assert_eq!(waiter.join().unwrap(), Err(Interrupted));
            INTERRUPTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assert!(!target.eval_breaker().is_interrupt_pending());
            assert!(gil.is_held_by_current_thread());
            drop(guard);
        } else {
            drop(guard);
            assert_eq!(waiter.join().unwrap(), Ok(()));
        }
        assert!(!gil.is_locked());
        assert!(gil.try_acquire().is_some());
    });
    assert!(INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// Invariant 8, second half: an interrupt changes nothing for anyone but
/// the wait it was meant for. The main thread holds the Gil; a waiter calls
/// `acquire_interruptible`, lets go of the Gil if it got it, then takes the
/// same Gil with a plain `acquire`; a third thread interrupts the waiter
/// once, at any moment; the main thread lets go, takes the Gil once more
/// and lets go. An interrupt that reads the waiter's wait slot while it is
/// in the interruptible call and wakes it only later (a *late* interrupt)
/// must not end the plain acquire, which carries no interruptible token;
/// the interrupt is consumed exactly when the first call says
/// `Err(Interrupted)`, and stays pending (for a checkpoint) otherwise.
///
/// Mutation: in `Gil::wait_for_gil`, parked every wait with the `ATTACHED`
/// token bit (`token |= ATTACHED` whether or not the wait is
/// interruptible, the tokens of the code before the attached-wait rework)
/// → at preemption bound 3 (it passes at bound 2, so CI runs it at 3)
/// loom found a schedule where the interrupt read the waiter's wait slot
/// during the first call and its wake-up reached the plain acquire: "an
/// untimed, uninterruptible wait ends with the Gil" (`unreachable!` in
/// `Gil::acquire_slow`), the panic `tests/bad_input.rs` saw on the std
/// build before the rework.
#[test]
fn a_late_interrupt_never_ends_the_next_plain_acquire() {
    static INTERRUPTED: loom_tests::Reached = loom_tests::Reached::new();
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let slot = loom_tests::slot();
        let guard = gil.acquire();
        let waiter = {
            let (gil, slot) = (gil.clone(), slot.clone());
            thread::spawn(move || {
                *slot.lock().unwrap() = Some(gil.current_thread_state());
                let first = gil.acquire_interruptible().map(drop);
                drop(gil.acquire());
                first
            })
        };
        let interrupter = loom_tests::interrupter(&slot);
        drop(guard);
        drop(gil.acquire());
        let first = waiter.join().unwrap();
        let interrupted = interrupter.join().unwrap();
        let target = slot.lock().unwrap().clone().expect("published");
        let pending = target.eval_breaker().is_interrupt_pending();
        if interrupted {
            assert_eq!(first.is_err(), !pending, "consumed exactly when reported");
            if first.is_err() {
                INTERRUPTED.hit();
            }
        } else {
            assert_eq!(first, Ok(()));
            assert!(!pending);
        }
        assert!(!gil.is_locked());
    });
    INTERRUPTED.assert_reached("an interrupted first call");
}

/// The main thread holds the Gil; one waiter waits with a timeout, another
/// without; the model timer may fire at any moment, and the main thread lets
/// go at some point. Whichever side wins each race, the untimed waiter gets
/// the Gil, the timed one gets it or times out, and at the end the Gil is
/// free (invariant 7).
///
/// Mutation: in `Gil::wait_for_gil`'s `timed_out` callback, cleared `PARKED`
/// even when other waiters remained (`if true` for `if was_last`) → the main
/// thread's release took the fast path past the untimed waiter, which slept
/// forever: loom reported a deadlock.
#[test]
fn timed_acquire_races_the_timer() {
    check(LONG, || {
        let gil = Arc::new(Gil::new());
        let data = Arc::new(Shared::new());
        let guard = gil.acquire();
        let timed = {
            let (gil, data) = (gil.clone(), data.clone());
            thread::spawn(
                move || match gil.try_acquire_for(Duration::from_millis(1)) {
                    Some(guard) => {
                        data.bump(&guard);
                        true
                    }
                    None => false,
                },
            )
        };
        let untimed = {
            let (gil, data) = (gil.clone(), data.clone());
            thread::spawn(move || {
                let guard = gil.acquire();
                data.bump(&guard);
            })
        };
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        drop(guard);
        let got = timed.join().unwrap();
        untimed.join().unwrap();
        timer.join().unwrap();
        assert!(!gil.is_locked());
        let guard = gil.try_acquire().expect("the Gil is free");
        assert_eq!(data.get(&guard), 1 + usize::from(got));
    });
}

loom::lazy_static! {
    static ref STATIC_GIL: Gil = Gil::new();
}

/// A Gil in a loom `lazy_static`, as a user's model may keep it: loom drops
/// it with the other statics when the model ends, in any order, and that
/// must not fail; meanwhile it works like any other.
///
/// Mutation: listed every Gil's thread states in one global
/// `loom::lazy_static` registry, as an earlier version did under loom,
/// instead of a list per Gil → loom panicked "attempted to access
/// lazy_static during shutdown" when the Gil was dropped after the registry.
#[test]
fn gil_in_a_lazy_static() {
    check(DEFAULT, || {
        let worker = thread::spawn(|| {
            let _guard = STATIC_GIL.acquire();
        });
        drop(STATIC_GIL.acquire());
        worker.join().unwrap();
        assert_eq!(STATIC_GIL.thread_states().len(), 2);
    });
}

/// Under `SwitchPolicy::Interactive`, a thread back from `detach` asks for
/// the Gil at once and outranks waiters that were there before it (it comes
/// back with a sleeper's credit of virtual runtime, see `fair_share`). The
/// main thread detaches and comes back while V holds the Gil (passing one
/// checkpoint) and W waits; no timer runs, so only the main thread's
/// request can make V switch, and then the Gil must go to the main thread,
/// even when W queued first. Some execution must take that path.
///
/// Mutation: in `fair_share::Candidate::before`, ordered waiters by ticket
/// alone (ignoring their virtual runtime) → V's forced switch handed the
/// Gil to W, which had queued first: the log read `["V", "W", "main"]`.
#[test]
fn interactive_priority() {
    static SWITCHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    check(LONG, || {
        let gil = Arc::new(Gil::new());
        gil.set_policy(gilock::SwitchPolicy::Interactive);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut guard = gil.acquire();
        let v = {
            let (gil, log) = (gil.clone(), log.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                log.lock().unwrap().push("V");
                if guard.checkpoint().switched {
                    SWITCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let log = log.lock().unwrap();
                    let me = log.iter().position(|&who| who == "V").unwrap();
                    assert_eq!(log[me + 1], "main", "{:?}", *log);
                }
            })
        };
        let w = {
            let (gil, log) = (gil.clone(), log.clone());
            thread::spawn(move || {
                let _guard = gil.acquire();
                log.lock().unwrap().push("W");
            })
        };
        guard.detach(|| {});
        log.lock().unwrap().push("main");
        drop(guard);
        v.join().unwrap();
        w.join().unwrap();
    });
    assert!(SWITCHED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// Under `SwitchPolicy::Interactive`, `detach` hands the Gil to a waiter,
/// and the thread coming back asks for it at once and waits for it in place
/// (a slot a release hands the Gil to without a wake-up; loom's zero spin
/// limit makes the thread take the slot and leave it at its next look, so
/// both the handoff in place and the park after it are explored). The main
/// thread holds the Gil, two waiters queue (or not yet), the main thread
/// detaches and comes back; every thread updates data only the Gil
/// protects. Loom checks that no two threads hold the Gil at once whoever
/// wins each race, and that no waiter is left waiting with nobody to hand
/// it the Gil (every thread ends; no timer runs, so a lost handoff is a
/// deadlock).
///
/// Mutation: in `Gil::find_heir` and `Gil::wake_heir`, handed the Gil to a
/// waiter in place without emptying its slot (`in_place.holds` for
/// `in_place.take`) → loom reported a deadlock: the stale slot made a later
/// release hand the Gil back to its own releaser, and the main thread's
/// last `acquire` waited for ever.
#[test]
fn interactive_detach_and_return() {
    check(LONG, || {
        let gil = Arc::new(Gil::new());
        gil.set_policy(gilock::SwitchPolicy::Interactive);
        let data = Arc::new(Shared::new());
        let mut guard = gil.acquire();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (gil, data) = (gil.clone(), data.clone());
                thread::spawn(move || {
                    let guard = gil.acquire();
                    data.bump(&guard);
                })
            })
            .collect();
        data.bump(&guard);
        guard.detach(|| {});
        data.bump(&guard);
        drop(guard);
        for w in waiters {
            w.join().unwrap();
        }
        let guard = gil.acquire();
        assert_eq!(data.get(&guard), 4);
    });
}

/// Invariant 3 for the Gil: after a drop request, the Gil goes to the
/// oldest waiter. The main thread holds the Gil; the first waiter parks
/// (takes the earlier ticket), then a second; the model timer ends their
/// intervals, so each leaves the queue for a moment to re-park (and asks
/// for a drop). If the main thread's checkpoint switches, the first waiter
/// must be the one that got the Gil — also when it was between two parks
/// just then.
///
/// Mutation: in `Gil::wake_heir`, dropped the in-transit check made with
/// the queue locked (keeping only the quick look in `checkpoint_slow`, as
/// the code before the fix did) → loom found the schedule where the first
/// waiter went into transit between the quick look and the release, and
/// the second got the Gil (`["second", "first"]`).
///
/// Found at preemption bound 3 (it passes at bound 2): `Gil::release_slow`
/// chose the heir in one look at the queue (`find_heir`) and woke it in a
/// second (`wake_heir`); the first waiter, in transit at the first look,
/// re-parked before the second, which then found no one in transit and
/// handed the Gil to the second waiter (`left: Some("second")`).
///
/// Today a waiter between two parks waits in one of two slots, where a
/// release sees it, and only a third one at once is in transit; with two
/// waiters the model reaches the transit path when the slots are taken
/// away. Mutation (1 December): in `wait_for_gil`'s `timed_out`, never
/// took a slot (every waiter between parks counted in transit) and dropped
/// the count of departures from transit that `wake_heir` compares
/// (`transit_leaves`) → `left: Some("second")` at bound 3 in 54 s; with the
/// slots still taken away but the count back, it passes (99 s). So the
/// count closes the window for the third waiter that the slots leave.
#[test]
fn forced_switch_goes_to_the_oldest_waiter_even_between_parks() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut guard = gil.acquire();
        let waiter = |name: &'static str| {
            let (gil, log) = (gil.clone(), log.clone());
            thread::spawn(move || {
                let _guard = gil.acquire();
                log.lock().unwrap().push(name);
            })
        };
        let first = waiter("first");
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        let second = waiter("second");
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        if guard.checkpoint().switched {
            assert_eq!(log.lock().unwrap().first(), Some(&"first"));
        }
        drop(guard);
        first.join().unwrap();
        second.join().unwrap();
        timer.join().unwrap();
    });
}

/// A pending call carries what its requester wrote before it: a thread
/// writes data (a loom `UnsafeCell`) and then requests a pending call on
/// the Gil holder's eval breaker; the holder, once it takes the request,
/// reads the data. Only the request orders the two accesses.
///
/// Mutation: `EvalBreaker::request_pending_call` with `Relaxed` instead of
/// `Release` (and, separately, `take_pending_call` with `Relaxed` instead
/// of `Acquire`) → "Causality violation: Concurrent read and write accesses
/// to `UnsafeCell`".
#[test]
fn a_pending_call_carries_what_was_written_before_it() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let payload = Arc::new(loom_tests::Guarded::new());
        let guard = gil.acquire();
        let target = gil.current_thread_state();
        let requester = {
            let payload = payload.clone();
            thread::spawn(move || {
                payload.bump();
                target.eval_breaker().request_pending_call();
            })
        };
        while !guard.thread_state().eval_breaker().take_pending_call() {
            thread::yield_now();
        }
        assert_eq!(payload.get(), 1);
        requester.join().unwrap();
    });
}
