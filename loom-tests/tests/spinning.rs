#![cfg(loom)]
//! Spinning under loom: off by default (every spin round is a scheduling
//! point), on with `gilock::model::set_spin_limit`, so that the branches a
//! waiter takes only while spinning are checked too.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test spinning`.

use gilock::RawFairMutex;
use lock_api::RawMutex;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
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
