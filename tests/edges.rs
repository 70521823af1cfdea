//! Edges that the mutation run (`scripts/mutants.sh`, see `MUTANTS.md`)
//! found untested: what a dropped Gil leaves behind, a `yield_now` with
//! nobody waiting, what guards and eval breakers print, and the numeric
//! limits of a semaphore.

mod common;

use common::setup;
use gilock::{Gil, Lock, RLock, Semaphore};
use std::time::Duration;

/// Dropping a Gil lists none of its thread states any more (the global
/// registry lets go of them: only the thread's own cache and this test
/// hold one) and drops its event hook (event hooks need `std`).
#[cfg(feature = "std")]
#[test]
fn a_dropped_gil_forgets_its_threads_and_its_hook() {
    use gilock::{GilEvent, GilHook};
    use std::sync::Arc;
    setup();
    let gil = Gil::new();
    let state = gil.current_thread_state();
    let hook: Arc<GilHook> = Arc::new(|_: &GilEvent<'_>| {});
    gil.set_event_hook(Some(Arc::clone(&hook)));
    drop(gil.acquire());
    let listed = Arc::strong_count(&state);
    assert_eq!(Arc::strong_count(&hook), 2, "the Gil holds the hook");
    drop(gil);
    assert_eq!(
        Arc::strong_count(&state),
        listed - 1,
        "the registry still lists a dropped Gil's thread"
    );
    assert_eq!(Arc::strong_count(&hook), 1, "a dropped Gil kept its hook");
}

/// `yield_now` with nobody waiting keeps the Gil: no release, no fresh
/// acquisition.
#[test]
fn yield_now_without_waiters_keeps_the_gil() {
    setup();
    let gil = Gil::new();
    let mut guard = gil.acquire();
    let before = gil.stats().acquisitions;
    assert!(!guard.yield_now());
    assert_eq!(gil.stats().acquisitions, before, "the Gil was let go");
    assert!(gil.is_held_by_current_thread());
}

/// A `LockGuard` prints the lock it holds.
#[test]
fn a_lock_guard_prints_its_lock() {
    setup();
    let lock = Lock::new();
    let guard = lock.lock();
    assert_eq!(
        format!("{guard:?}"),
        "LockGuard { lock: Lock { locked: true } }"
    );
}

/// An `RLockGuard` prints the lock it holds.
#[test]
fn an_rlock_guard_prints_its_lock() {
    setup();
    let lock = RLock::new();
    let guard = lock.lock();
    assert_eq!(
        format!("{guard:?}"),
        format!("RLockGuard {{ lock: {lock:?} }}")
    );
}

/// A semaphore holds at most `usize::MAX >> 1` permits (the word keeps a
/// flag in bit 0): that many are fine, one more is refused at
/// construction, and a release past it panics.
#[test]
fn a_semaphore_holds_at_most_half_the_word() {
    setup();
    let full = Semaphore::new(usize::MAX >> 1);
    assert_eq!(full.available_permits(), usize::MAX >> 1);
    let more = std::panic::catch_unwind(|| Semaphore::new((usize::MAX >> 1) + 1));
    assert!(more.is_err(), "one permit too many was accepted");
    let over = std::panic::catch_unwind(|| full.release(1));
    assert!(over.is_err(), "a release past the limit was accepted");
}

/// One request carries at most `usize::MAX >> 6` permits (the park token
/// keeps six low bits): a larger one panics before it waits.
#[test]
fn a_semaphore_request_carries_at_most_a_token_s_worth() {
    setup();
    let sem = Semaphore::new(0);
    assert!(!sem.acquire_n_timeout(usize::MAX >> 6, Duration::ZERO));
    let larger =
        std::panic::catch_unwind(|| sem.acquire_n_timeout((usize::MAX >> 6) + 1, Duration::ZERO));
    assert!(
        larger.is_err(),
        "a request too large for a token was accepted"
    );
}

/// An eval breaker prints each of its flags as it is: none on a fresh
/// thread, then only the one requested.
#[test]
fn an_eval_breaker_prints_its_flags() {
    setup();
    let gil = Gil::new();
    let state = gil.current_thread_state();
    let breaker = state.eval_breaker();
    assert_eq!(
        format!("{breaker:?}"),
        "EvalBreaker { drop_request: false, interrupt: false, pending_call: false }"
    );
    breaker.request_pending_call();
    assert_eq!(
        format!("{breaker:?}"),
        "EvalBreaker { drop_request: false, interrupt: false, pending_call: true }"
    );
}
