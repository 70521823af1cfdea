//! What primitives leave behind and what they print: checks that the
//! mutation run (`scripts/mutants.sh`, see `MUTANTS.md`) found missing. A
//! dropped Gil forgets its threads and its event hook; a `yield_now` with
//! nobody waiting keeps the Gil; guards print what they guard.

use gilock::{Gil, GilEvent, GilHook, Lock};
use std::sync::Arc;

/// Dropping a Gil lists none of its thread states any more (the global
/// registry lets go of them: only the thread's own cache and this test
/// hold one) and drops its event hook.
#[test]
fn a_dropped_gil_forgets_its_threads_and_its_hook() {
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
    let lock = Lock::new();
    let guard = lock.lock();
    assert_eq!(
        format!("{guard:?}"),
        "LockGuard { lock: Lock { locked: true } }"
    );
}
