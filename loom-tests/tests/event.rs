#![cfg(loom)]
//! Loom models of `Event`: `set` is one step (linearizable) and wakes every
//! waiter that queued before it.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test event -- --test-threads=1`.

use gilock::Event;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use loom_tests::{DEFAULT, EXHAUSTIVE, Guarded, check};
use std::time::Duration;

/// A waiter is parked (so `set` must wake someone); a setter sets once; a
/// third thread that sees the flag on clears it and then starts a timed
/// wait. That wait began after the set and the clear, so with no other set
/// it must time out — and the parked waiter must be woken.
///
/// Mutation: `Event::set` raising the flag with a `fetch_or` first and
/// waking the parked threads in a second step (the code before the fix) →
/// loom found the schedule where the late wake-up caught the wait that
/// began after the `clear`, which returned true.
#[test]
fn a_wait_after_set_and_clear_does_not_see_the_set() {
    check(EXHAUSTIVE, || {
        let event = Arc::new(Event::new());
        let parked = {
            let event = event.clone();
            thread::spawn(move || event.wait())
        };
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        let setter = {
            let event = event.clone();
            thread::spawn(move || event.set())
        };
        // Ticks until the checking thread is done, so that its wait can
        // time out whenever it starts.
        let done = Arc::new(AtomicBool::new(false));
        let timer = {
            let done = done.clone();
            thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    gilock::model::fire_timeouts();
                    thread::yield_now();
                }
            })
        };
        if event.is_set() {
            event.clear();
            assert!(
                !event.wait_timeout(Duration::from_millis(1)),
                "a wait that began after set and clear saw the set"
            );
        }
        done.store(true, Ordering::Release);
        setter.join().unwrap();
        parked.join().unwrap();
        timer.join().unwrap();
    });
}

/// Timed and untimed waiters together: one thread waits without a timeout,
/// another with 1 ms, the model timer steps once at any moment, and the
/// main thread sets the event at any moment. The untimed waiter must be
/// woken (whatever the timed one did to the event's word on its way out);
/// a timed wait that began after `set` returned returns true, and one that
/// returns false saw its whole timeout pass.
///
/// Mutation: in `Event::park_until_set`'s `timed_out`, cleared `PARKED`
/// even when other waiters remained (`if true` for `if was_last`) → loom
/// found the timed waiter leaving first, the `set` taking the fast path
/// past the untimed one, and reported a deadlock.
#[test]
fn timed_and_untimed_waiters_together() {
    check(DEFAULT, || {
        let event = Arc::new(Event::new());
        let set_done = Arc::new(AtomicBool::new(false));
        let untimed = {
            let event = event.clone();
            thread::spawn(move || event.wait())
        };
        let timed = {
            let (event, set_done) = (event.clone(), set_done.clone());
            thread::spawn(move || {
                let set_before = set_done.load(Ordering::SeqCst);
                let start = gilock::model::now();
                let got = event.wait_timeout(Duration::from_millis(1));
                if set_before {
                    assert!(got, "a wait that began after the set returned false");
                }
                if !got {
                    assert!(gilock::model::now() - start >= Duration::from_millis(1));
                }
            })
        };
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        event.set();
        set_done.store(true, Ordering::SeqCst);
        untimed.join().unwrap();
        timed.join().unwrap();
        timer.join().unwrap();
        assert!(event.is_set());
    });
}

/// `set` publishes what the setter wrote before it: the main thread writes
/// data (a loom `UnsafeCell`) and sets the event; two threads wait and then
/// read the data. Each of them finds the flag up by one of three paths: the
/// first look (`is_set`, an Acquire load), the look in `validate` (the
/// `fetch_or` that announces it), or being woken by the `set` (the park
/// queue orders that one); all three must order the read after the write,
/// whether `set` took its fast path (the compare-and-swap) or its slow one
/// (the store inside the unpark).
///
/// Mutation: `Event::is_set`'s load `Relaxed` instead of `Acquire`; the
/// `fetch_or(PARKED)` of `park_until_set`'s `validate` `Relaxed` instead of
/// `Acquire`; `set`'s compare-and-swap `Acquire` instead of `AcqRel` (no
/// Release); the store of `SET` in `set`'s unpark callback `Relaxed`
/// instead of `Release` (a waiter that had not parked yet then read the
/// flag from it) → each: "Causality violation: Concurrent read and write
/// accesses to `UnsafeCell`".
#[test]
fn set_publishes_what_was_written_before_it() {
    check(EXHAUSTIVE, || {
        let event = Arc::new(Event::new());
        let data = Arc::new(Guarded::new());
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (event, data) = (event.clone(), data.clone());
                thread::spawn(move || {
                    event.wait();
                    data.get()
                })
            })
            .collect();
        data.bump();
        event.set();
        for r in readers {
            assert_eq!(r.join().unwrap(), 1);
        }
    });
}
