#![cfg(loom)]
//! Loom model of waking a thread ahead of its turn (`Gil::wake_ahead`):
//! under `SwitchPolicy::Interactive`, a release that hands the Gil to a
//! thread back from a voluntary release also wakes the next such thread
//! that is parked, into a slot (`in_place`), to spin for the handoff that
//! is likely to come to it next. The woken thread is not the holder: it
//! must still get the Gil only by a handoff, or park again.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test wake_ahead`.

use gilock::{Gil, SwitchPolicy};
use loom::sync::{Arc, mpsc};
use loom::thread;
use loom_tests::{Guarded, LONG, check};
use std::sync::atomic::{AtomicU64, Ordering};

/// Two threads take the Gil and detach; while `main` holds it, both come
/// back (threads back from a voluntary release) and park. `main` lets go:
/// its release hands the Gil to one and wakes the other ahead of its turn.
/// Data that only the Gil guards must see no overlap, both must finish, and
/// the Gil must end free; some execution must wake a thread ahead (else the
/// model checks nothing).
///
/// Mutation: in `Gil::wait_for_gil`, a wake with `TOKEN_AHEAD` returned
/// `Outcome::Done` (taken as the handoff) instead of spinning for it →
/// "Causality violation: Concurrent write accesses to `UnsafeCell`": the
/// thread woken ahead and the heir both held the Gil. (Not putting the
/// woken thread in a slot, `in_place.enter` skipped in `Gil::wake_ahead`'s
/// callback, is no bug, and the model passes with it: out of the queue and
/// in no slot, the thread is no candidate, so the heir's release frees the
/// Gil, and the woken thread takes the free word at its next look.)
#[test]
fn a_thread_woken_ahead_waits_for_its_handoff() {
    static WOKEN: AtomicU64 = AtomicU64::new(0);
    check(LONG, || {
        let gil = Arc::new(Gil::new());
        gil.set_policy(SwitchPolicy::Interactive);
        let data = Arc::new(Guarded::new());
        let (away_tx, away) = mpsc::channel();
        let mut back = Vec::new();
        let returning: Vec<_> = (0..2)
            .map(|_| {
                let (gil, data, away_tx) = (gil.clone(), data.clone(), away_tx.clone());
                let (back_tx, back_rx) = mpsc::channel::<()>();
                back.push(back_tx);
                thread::spawn(move || {
                    let mut guard = gil.acquire();
                    guard.detach(move || {
                        away_tx.send(()).unwrap();
                        back_rx.recv().unwrap();
                    });
                    data.bump_under(&guard);
                })
            })
            .collect();
        away.recv().unwrap();
        away.recv().unwrap();
        let guard = gil.acquire();
        for b in &back {
            b.send(()).unwrap();
        }
        while gilock::model::parked_threads() < 2 {
            thread::yield_now();
        }
        drop(guard);
        for t in returning {
            t.join().unwrap();
        }
        WOKEN.fetch_add(gil.stats().woken_ahead, Ordering::Relaxed);
        let guard = gil.try_acquire().expect("the Gil is free");
        assert_eq!(data.get_under(&guard), 2);
    });
    assert!(WOKEN.load(Ordering::Relaxed) > 0, "nobody was woken ahead");
}
