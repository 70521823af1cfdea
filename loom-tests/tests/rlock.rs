#![cfg(loom)]
//! Loom models of `RLock`: a release by a thread that does not own the lock
//! is rejected without touching the owner's state, and ownership plus
//! recursion levels stay exclusive.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test rlock -- --test-threads=1`.

use gilock::{RLock, ReleaseError};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use loom_tests::{EXHAUSTIVE, check};

/// An `RLock` and data it guards in a loom cell, so loom reports any two
/// accesses that the lock does not order.
struct Guarded {
    lock: RLock,
    data: UnsafeCell<usize>,
}

// SAFETY: `data` is only touched with `lock` held, or after every other
// thread was joined.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn critical(&self) {
        assert!(self.lock.is_owned());
        // SAFETY: the caller holds the lock; loom checks that it really does.
        self.data.with_mut(|p| unsafe { *p += 1 });
    }
}

/// The owner takes the lock two levels deep and works under it. The main
/// thread tries a stray release at any moment (it must fail: `NotOwner` or
/// `NotLocked`, never `Ok`), then once more at a moment it knows the owner
/// holds both levels (it must be `NotOwner`), then takes the lock itself.
/// The stray releases must not cost the owner a level: the owner still
/// holds and releases exactly two, and the critical sections (a loom cell)
/// never overlap.
///
/// Mutation: in `RLock::release`, only rejected the call when nobody owned
/// the lock (`if owner == NO_OWNER`, the owner-id check dropped) → the
/// second stray release returned `Ok(())` and the model failed with
/// `left: Ok(()), right: Err(NotOwner)`.
#[test]
fn non_owner_release_is_rejected_without_touching_the_state() {
    check(EXHAUSTIVE, || {
        let g = Arc::new(Guarded {
            lock: RLock::new(),
            data: UnsafeCell::new(0),
        });
        let held = Arc::new(AtomicBool::new(false));
        let tried = Arc::new(AtomicBool::new(false));
        let owner = {
            let (g, held, tried) = (g.clone(), held.clone(), tried.clone());
            thread::spawn(move || {
                g.lock.acquire();
                g.lock.acquire();
                g.critical();
                held.store(true, Ordering::Release);
                while !tried.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                assert_eq!(g.lock.recursion_count(), 2);
                g.lock.release().unwrap();
                g.critical();
                assert_eq!(g.lock.recursion_count(), 1);
                g.lock.release().unwrap();
                assert!(!g.lock.is_owned());
            })
        };
        let stray = g.lock.release();
        assert!(stray.is_err(), "a non-owner released: {stray:?}");
        while !held.load(Ordering::Acquire) {
            thread::yield_now();
        }
        assert_eq!(g.lock.release(), Err(ReleaseError::NotOwner));
        assert_eq!(g.lock.recursion_count(), 0);
        tried.store(true, Ordering::Release);
        g.lock.acquire();
        assert_eq!(
            g.lock.recursion_count(),
            1,
            "no level leaked from the owner"
        );
        g.critical();
        g.lock.release().unwrap();
        owner.join().unwrap();
        assert_eq!(g.lock.release(), Err(ReleaseError::NotLocked));
        assert!(!g.lock.locked());
        // SAFETY: every other thread is joined.
        assert_eq!(g.data.with(|p| unsafe { *p }), 3);
    });
}
