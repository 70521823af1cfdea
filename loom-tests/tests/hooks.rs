#![cfg(loom)]
//! Loom model of the rule that no user code runs inside a park callback:
//! an event hook that blocks on a contended lock, fired while a thread
//! lets go of the Gil for a Condition wait.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test hooks -- --test-threads=1`.

use gilock::{Condition, FairMutex, Gil, GilEvent, GilEventKind, RawFairMutex};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use loom_tests::{DEFAULT, check};

/// The waiter holds the Gil and waits on a condition through its guard; its
/// `Suspended` hook (user code) takes a fair mutex that another thread may
/// hold at that moment, so the hook may park. The other thread then takes
/// the Gil and notifies. The wait must end notified, and nothing may park
/// inside a park callback (the model parking lot panics if it does).
///
/// Mutation: fired the `Suspended` hook inside the condition's
/// `before_sleep` again (`Attached::release_in_park` calling `Gil::release`
/// instead of telling the hook before the park), the code path before the
/// fix → the model lot rejected the hook's park inside `before_sleep`
/// ("park called from inside a park's before_sleep callback"), and the
/// model failed on the hook's recorded panic.
#[test]
fn a_blocking_hook_never_runs_inside_a_park_callback() {
    static HOOK_WAITED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    check(DEFAULT, || {
        let gil = Arc::new(Gil::new());
        let other = Arc::new(FairMutex::from_raw(RawFairMutex::new(), ()));
        let cond = Arc::new(Condition::new());
        let armed = Arc::new(AtomicBool::new(false));
        let notified = Arc::new(AtomicBool::new(false));
        // A panic inside a hook is caught by the Gil (and the hook removed):
        // the hook records its own.
        let hook_panicked = Arc::new(AtomicBool::new(false));
        {
            let (other, armed, panicked) = (other.clone(), armed.clone(), hook_panicked.clone());
            gil.set_event_hook(Some(std::sync::Arc::new(move |e: &GilEvent<'_>| {
                if matches!(e.kind, GilEventKind::Suspended { .. })
                    && armed.swap(false, Ordering::Relaxed)
                {
                    let lock = || match other.try_lock() {
                        Some(guard) => drop(guard),
                        None => {
                            HOOK_WAITED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            drop(other.lock());
                        }
                    };
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(lock)).is_err() {
                        panicked.store(true, Ordering::Relaxed);
                    }
                }
            })));
        }
        let notifier = {
            let (gil, other, cond, notified) =
                (gil.clone(), other.clone(), cond.clone(), notified.clone());
            thread::spawn(move || {
                drop(other.lock());
                // Only once the waiter let go of the Gil, which it does
                // queued on the condition.
                let _guard = gil.acquire();
                notified.store(true, Ordering::Relaxed);
                cond.notify_one();
            })
        };
        let mut guard = gil.acquire();
        if notified.load(Ordering::Relaxed) {
            // The notifier came first: nothing to wait for.
            drop(guard);
            notifier.join().unwrap();
            gil.set_event_hook(None);
            return;
        }
        armed.store(true, Ordering::Relaxed);
        while !notified.load(Ordering::Relaxed) {
            cond.wait(&mut guard).unwrap();
        }
        armed.store(false, Ordering::Relaxed);
        drop(guard);
        notifier.join().unwrap();
        gil.set_event_hook(None);
        assert!(
            !hook_panicked.load(Ordering::Relaxed),
            "the hook parked inside a park callback"
        );
    });
    // The model checks something only if the hook had to wait somewhere.
    assert!(HOOK_WAITED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}
