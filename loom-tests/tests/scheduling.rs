#![cfg(loom)]
//! Loom models of `SwitchPolicy::Interactive`'s scheduling: the starvation
//! bound (invariant 11: a waiter whose fair share is due is served within
//! the bound, in every interleaving) and the loan that returns to the
//! preempted holder.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test scheduling`.
//!
//! Both models play the same scene, with model time standing for Gil time
//! (it moves only when a thread calls `gilock::model::advance`, and a timed
//! park whose deadline it passes times out then):
//! - `main` holds the Gil and detaches; inside, it starts C and waits
//!   for C's run;
//! - C takes the Gil, starts W (which queues for it), runs for `run` of
//!   model time holding the Gil, and passes one checkpoint;
//! - `main` comes back from its detach: a thread back from a voluntary
//!   release, it asks the holder for the Gil at once, and lets go again
//!   (its guard drops).
//!
//! Loom runs every order of these steps. The models check the executions
//! where W was parked when C ran (W had started timing C's hold, so C's
//! run counts against W) and C's checkpoint switched: who got the Gil at
//! the releases that followed. Each thread logs its name when it gets the
//! Gil, C also its run (`"run"`) and the Gil coming back to it.

use gilock::{Gil, SwitchPolicy};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use loom_tests::{DEFAULT, check};
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// The Gil's switch interval in these models: a waiter is owed the Gil once
/// it is half of it (2.5 ms of the holder's run) below the holder, and a
/// thread back from a voluntary release gets one interval of credit.
const INTERVAL: Duration = Duration::from_millis(5);

/// Plays the scene with C running for `run` of model time; returns the log
/// (who got the Gil, in order; C's run is logged as "run") if W was parked
/// waiting when C ran and C's checkpoint switched, else `None`.
fn scene(run: Duration) -> Option<Vec<&'static str>> {
    let gil = Arc::new(Gil::with_switch_interval(INTERVAL));
    gil.set_policy(SwitchPolicy::Interactive);
    let log = Arc::new(Mutex::new(Vec::new()));
    let ran = Arc::new(AtomicBool::new(false));
    let mut guard = gil.acquire();
    let c = guard.detach(|| {
        let (gil, log, c_ran) = (gil.clone(), log.clone(), ran.clone());
        let c = thread::spawn(move || {
            let mut guard = gil.acquire();
            log.lock().unwrap().push("C");
            let w = {
                let (gil, log) = (gil.clone(), log.clone());
                thread::spawn(move || {
                    let _guard = gil.acquire();
                    log.lock().unwrap().push("W");
                })
            };
            // Parked (the only thread that can be: `main` waits for this
            // run outside the Gil), W has started timing C's hold.
            let w_waited = gilock::model::parked_threads() > 0;
            gilock::model::advance(run);
            log.lock().unwrap().push("run");
            c_ran.store(true, Ordering::SeqCst);
            let switched = guard.checkpoint().switched;
            if switched {
                log.lock().unwrap().push("C");
            }
            drop(guard);
            w.join().unwrap();
            w_waited && switched
        });
        while !ran.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        c
    });
    // Back from the detach: the Gil is ours (lent by C, or free).
    log.lock().unwrap().push("main");
    drop(guard);
    let checked = c.join().unwrap();
    let log = log.lock().unwrap().clone();
    checked.then_some(log)
}

/// Invariant 11, the starvation bound: C ran 10 ms while W waited, so W is
/// owed the Gil (W's vruntime is a granularity below C's); then whoever C
/// hands the Gil to — `main`, back from I/O and below everyone, or W — W
/// gets it before C holds it again. In the loan's terms: a borrower's
/// release returns the Gil to the lender only if no waiter is owed it more,
/// so a thread that keeps lending to interactive threads cannot keep a
/// waiter whose share is due waiting. Some execution must take the path
/// where C's checkpoint switches (else the model checks nothing).
///
/// Mutation: in `fair_share::choose`, returned the lender whenever it
/// waits (`(Some(lender), _) => lender`, dropping the granularity test) →
/// loom found the schedule where C lent the Gil to `main` and got it back
/// at `main`'s release before W: the log read
/// `["C", "run", "main", "C", "W"]`. Second mutation: in `Gil::charge`,
/// skipped charging the releaser its hold → C's 10 ms were never counted,
/// W was never owed anything, and the same log came back.
#[test]
fn a_waiter_whose_share_is_due_is_served_before_the_lender_gets_the_gil_back() {
    static SWITCHED: AtomicUsize = AtomicUsize::new(0);
    check(DEFAULT, || {
        if let Some(log) = scene(Duration::from_millis(10)) {
            SWITCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let back = log.iter().rposition(|&who| who == "C").unwrap();
            let w = log.iter().position(|&who| who == "W");
            assert!(
                w.is_some_and(|w| w < back),
                "C held the Gil again before W, whose share was due: {log:?}"
            );
        }
    });
    assert!(SWITCHED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// The loan returns: C ran 1 ms while W waited, which leaves W below C (it
/// comes first by vruntime) but by less than the granularity, so W is not
/// owed the Gil yet. When C lends the Gil to `main` at its checkpoint and
/// `main` lets go, the Gil goes back to C, and W — a parked CPU-bound
/// thread — is not woken to run in C's place (one runner: the cores stay
/// free for the interactive thread). Some execution must take that path.
///
/// Mutation: in `fair_share::choose`, ignored the lender and the awake
/// waiter (always `first`, the plain lowest vruntime) → at `main`'s release
/// the Gil went to W: the log read `["C", "run", "main", "W", "C"]`.
#[test]
fn the_loan_returns_to_the_lender_unless_a_waiter_is_owed_the_gil() {
    static SWITCHED: AtomicUsize = AtomicUsize::new(0);
    check(DEFAULT, || {
        if let Some(log) = scene(Duration::from_millis(1)) {
            // C ran, then lent the Gil to `main` at its checkpoint.
            if log.windows(2).any(|w| w == ["run", "main"]) {
                SWITCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let main = log.iter().position(|&who| who == "main").unwrap();
                assert_eq!(log[main + 1], "C", "the loan did not return: {log:?}");
            }
        }
    });
    assert!(SWITCHED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}
