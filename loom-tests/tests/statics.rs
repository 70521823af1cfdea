#![cfg(loom)]
//! Loom models of gilock primitives in plain `static`s, as a user's model
//! may keep them: `FairMutex::new` and `lock_api::Condvar::new` are `const`
//! under loom too, and their state is created anew in each execution.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test statics`.

use gilock::{FairMutex, RawCondition};
use loom::thread;
use loom_tests::{EXHAUSTIVE, check};

static COUNTER: FairMutex<u32> = FairMutex::new(0);

/// A `static FairMutex` across every execution of a model: two threads
/// increment through it, and each execution starts with the mutex
/// unlocked and no waiter left from the one before (the data inside keeps
/// its value: it is the user's). Some executions must park, or the model
/// would not reach the lazily created parts of the mutex's state.
///
/// Mutation: `StaticAtomicU8` and `StaticAtomicUsize` kept the atomic
/// they created in the first execution (a `OnceLock` of a leaked atomic
/// instead of a per-execution loom lazy static, as `LoomLazy` did) → the
/// second execution panicked at its first use of the mutex, "index out of
/// bounds: the len is 0 but the index is 0" (the new execution's object
/// store does not hold the old atomic).
#[test]
fn a_static_fair_mutex_works_in_every_execution() {
    static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static PARKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    check(EXHAUSTIVE, || {
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(
            !COUNTER.is_locked(),
            "a fresh execution found the static mutex locked"
        );
        let start = *COUNTER.lock();
        let other = thread::spawn(|| *COUNTER.lock() += 1);
        {
            let mut guard = COUNTER.lock();
            if gilock::model::parked_threads() > 0 {
                PARKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            *guard += 1;
        }
        other.join().unwrap();
        assert_eq!(*COUNTER.lock(), start + 2);
    });
    assert!(EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed) > 1);
    assert!(PARKED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

type Condvar = lock_api::Condvar<RawCondition>;

static READY: FairMutex<bool> = FairMutex::new(false);
static SIGNAL: Condvar = Condvar::new();

/// A static mutex and condition variable pair, as `std`'s docs show it:
/// the waiter must see the flag in every execution, and no waiter count
/// may leak from one execution into the next (a leaked count would make
/// `notify_one` report a wake-up with nobody waiting).
///
/// Mutation: as for `a_static_fair_mutex_works_in_every_execution` → the
/// same "index out of bounds" in the second execution.
#[test]
fn a_static_condvar_works_in_every_execution() {
    check(EXHAUSTIVE, || {
        *READY.lock() = false;
        let waiter = thread::spawn(|| {
            let mut ready = READY.lock();
            SIGNAL.wait_while(&mut ready, |ready| !*ready);
        });
        *READY.lock() = true;
        SIGNAL.notify_one();
        waiter.join().unwrap();
        assert!(!SIGNAL.notify_one(), "a waiter count leaked");
    });
}
