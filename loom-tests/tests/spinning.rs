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
use loom_tests::{DEFAULT, LONG, check};

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

/// Under `SwitchPolicy::Interactive` a holder that lends the Gil at a
/// checkpoint to a thread back from a voluntary release waits for it in
/// place and spins for its return (`Gil::spin_for_handoff`), which spins
/// only when the spin limit is not 0 (at 0, loom's default, it looks once).
/// V takes the Gil and detaches; the main thread takes the Gil; V comes
/// back from its detach, so it asks for the Gil at once; once V is parked,
/// the main thread's checkpoint lends V the Gil and spins for it while V
/// holds it, then gets it back. Data that only the Gil guards must see no
/// overlap, and the Gil must end free.
///
/// (No model timer: with spinning on, a spin round is a `yield_now`, after
/// which loom runs the other threads first, and a timer thread's one step
/// then always came before the waiter's timed park.)
///
/// Mutation: in `Gil::spin_for_handoff`, the spinning load of the state
/// word (`look_at_word`) `Relaxed` instead of `Acquire` → "Causality violation: Concurrent write
/// accesses to `UnsafeCell`" (V's critical section not ordered before the
/// main thread's). With the spin limit left at 0 the same mutant passes:
/// the spin is skipped. (Taking any holder for its own handoff, `!= 0` for
/// `== me`, is caught too, as a spin that never ends: loom's branch limit.)
#[test]
fn a_lender_spins_for_the_gil_under_interactive() {
    check(LONG, || {
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
