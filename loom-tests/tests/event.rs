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
