#![cfg(loom)]
//! Spinning under loom: off by default (every spin round is a scheduling
//! point), on with `gilock::model::set_spin_limit`, so that the branches a
//! waiter takes only while spinning are checked too.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test spinning`.

use gilock::{Gil, RawFairMutex, SwitchPolicy};
use lock_api::RawMutex;
use loom::cell::UnsafeCell;
use loom::sync::{Arc, mpsc};
use loom::thread;
use loom_tests::{DEFAULT, check};

struct Guarded {
    mutex: RawFairMutex,
    data: UnsafeCell<usize>,
}

// SAFETY: `data` is only touched with `mutex` held, or after the other
// thread is joined.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn increment(&self) {
        let guard = self.mutex.lock();
        // SAFETY: the lock is held; loom checks that it really is.
        self.data.with_mut(|p| unsafe { *p += 1 });
        // SAFETY: `guard` came from this mutex.
        unsafe { self.mutex.unlock(guard) };
    }
}

/// Two threads take a `RawFairMutex` twice each with two spin rounds
/// allowed, so a waiter may win the lock while spinning, or spin and then
/// park; the critical sections must never overlap.
///
/// Mutation: in `RawFairMutex::lock_slow`, a spin round that found the lock
/// still held returned `true` (took the lock) instead of looking again →
/// "Causality violation: Concurrent write accesses to `UnsafeCell`". With
/// the spin limit left at its default, 0, the same mutant passes: the
/// branch is never taken, as it never was under the old `#[cfg(loom)]`
/// `SpinWait` that could not spin at all.
#[test]
fn exclusion_while_spinning() {
    check(DEFAULT, || {
        gilock::model::set_spin_limit(2);
        let g = Arc::new(Guarded {
            mutex: RawFairMutex::new(),
            data: UnsafeCell::new(0),
        });
        let other = {
            let g = g.clone();
            thread::spawn(move || {
                g.increment();
                g.increment();
            })
        };
        g.increment();
        g.increment();
        other.join().unwrap();
        // SAFETY: the other thread is joined.
        assert_eq!(g.data.with(|p| unsafe { *p }), 4);
    });
}

/// Under `SwitchPolicy::Interactive` a thread switched out at a checkpoint
/// spins for the Gil before it parks (`Gil::spin_for_gil`, which runs only
/// when the spin limit is not 0). V takes the Gil and detaches; the main
/// thread takes the Gil; V comes back from its detach, so it asks for the
/// Gil at once; once V is parked, the main thread's checkpoint hands the
/// Gil over and spins while V holds it, then takes it back by
/// compare-and-swap. Data that only the Gil guards must see no overlap,
/// and the Gil must end free.
///
/// (No model timer: with spinning on, a spin round is a `yield_now`, after
/// which loom runs the other threads first, and a timer thread's one step
/// then always came before the waiter's timed park.)
///
/// Mutation: in `Gil::spin_for_gil`, took the Gil whenever the
/// compare-and-swap succeeded, locked or not (`state | LOCKED` from a
/// locked `state`) → "Concurrent write accesses to `UnsafeCell`". With the
/// spin limit left at 0 the same mutant passes: the spin is skipped, as it
/// was under the old `cfg!(loom)` fork. Mutation: `gilock::model::
/// set_spin_limit` did nothing → "the preempted thread parked".
#[test]
fn a_preempted_thread_spins_for_the_gil_under_interactive() {
    check(DEFAULT, || {
        gilock::model::set_spin_limit(1);
        let gil = Arc::new(Gil::new());
        gil.set_policy(SwitchPolicy::Interactive);
        let data = Arc::new(loom_tests::Guarded::new());
        let (detached_tx, detached) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        let voluntary = {
            let (gil, data) = (gil.clone(), data.clone());
            thread::spawn(move || {
                let mut guard = gil.acquire();
                guard.detach(move || {
                    detached_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                });
                data.bump_under(&guard);
                // While V holds the Gil, the main thread spins for it: it
                // has not parked (it would have with the spin limit at 0).
                assert_eq!(
                    gilock::model::parked_threads(),
                    0,
                    "the preempted thread parked"
                );
            })
        };
        detached.recv().unwrap();
        let mut guard = gil.acquire();
        data.bump_under(&guard);
        go.send(()).unwrap();
        while gilock::model::parked_threads() == 0 {
            thread::yield_now();
        }
        assert!(guard.checkpoint().switched, "V asked for the Gil at once");
        data.bump_under(&guard);
        drop(guard);
        voluntary.join().unwrap();
        let guard = gil.try_acquire().expect("the Gil is free");
        assert_eq!(data.get_under(&guard), 3);
    });
}
