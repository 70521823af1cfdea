#![cfg(loom)]
//! Loom models of `GilCell` (invariant 10: the Gil is never released while
//! a `GilCell` borrow made by the releasing thread is alive).
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test gil_cell`.
//!
//! The cell's borrow flag is a loom `UnsafeCell`, so loom also reports any
//! two accesses to it that the Gil does not order.

use gilock::{Gil, GilCell};
use loom::sync::Arc;
use loom::thread;
use loom_tests::{DEFAULT, EXHAUSTIVE, check};

/// The main thread borrows the cell through its guard and, with the borrow
/// alive, checkpoints through a nested `ensure()` guard; a waiter wants the
/// Gil and the cell, and a timer may run its interval out at any moment, so
/// a drop request is pending at the nested checkpoint in some executions.
/// The waiter must never find the main thread's borrow: the checkpoint
/// keeps the Gil while it lives.
///
/// Mutation: in `GilGuard::checkpoint_slow`, dropped the `borrows.any()`
/// test → the waiter got the Gil inside the nested checkpoint and its
/// `try_borrow_mut` returned `Err(MutablyBorrowed)`.
#[test]
fn no_switch_while_a_borrow_lives() {
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let cell = Arc::new(GilCell::new(0usize));
        let outer = gil.acquire();
        let waiter = {
            let (gil, cell) = (gil.clone(), cell.clone());
            thread::spawn(move || {
                let guard = gil.acquire();
                let mut value = cell
                    .try_borrow_mut(&guard)
                    .expect("another thread's borrow was alive while this one held the Gil");
                *value += 10;
            })
        };
        let timer = thread::spawn(|| {
            gilock::model::fire_timeouts();
        });
        {
            let mut value = cell.borrow_mut(&outer);
            let mut inner = gil.ensure();
            assert!(!inner.checkpoint().switched);
            *value += 1;
        }
        drop(outer);
        waiter.join().unwrap();
        timer.join().unwrap();
        let guard = gil.acquire();
        assert_eq!(*cell.borrow(&guard), 11);
    });
}

/// Invariant 10 through `yield_now` and `Gil::with_attached`: the main
/// thread borrows the cell mutably through its guard and, with the borrow
/// alive, yields through the nested guard that `with_attached` gives it
/// (as a foreign engine's callback would), while a waiter queues for the
/// Gil and the cell. `yield_now` must keep the Gil (and say so), so that
/// the waiter never finds the borrow alive.
///
/// Mutation: in `GilGuard::yield_now`, dropped the `ts.borrows.any()` test
/// → the nested `yield_now` handed the Gil to the waiter inside the
/// borrow: "another thread's borrow was alive while this one held the
/// Gil".
#[test]
fn no_yield_while_a_borrow_lives() {
    check(EXHAUSTIVE, || {
        let gil = Arc::new(Gil::new());
        let cell = Arc::new(GilCell::new(0usize));
        let outer = gil.acquire();
        let waiter = {
            let (gil, cell) = (gil.clone(), cell.clone());
            thread::spawn(move || {
                let guard = gil.acquire();
                let mut value = cell
                    .try_borrow_mut(&guard)
                    .expect("another thread's borrow was alive while this one held the Gil");
                *value += 10;
            })
        };
        {
            let mut value = cell.borrow_mut(&outer);
            let yielded = gil.with_attached(|inner| inner.yield_now());
            assert_eq!(yielded, Some(false), "a yield inside a live borrow");
            *value += 1;
        }
        drop(outer);
        waiter.join().unwrap();
        let guard = gil.acquire();
        assert_eq!(*cell.borrow(&guard), 11);
    });
}
