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
use loom_tests::{DEFAULT, check};
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
    check(DEFAULT, || {
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
