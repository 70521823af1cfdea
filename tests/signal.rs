//! `gilock::signal::SigintBridge`: a real SIGINT, raised in the test's
//! thread with `raise(SIGINT)`, interrupts a thread blocked in
//! `Lock::acquire_with`; dropping the bridge restores the handler before.
//!
//! Signal handlers are process-wide, so the tests of this file run one at
//! a time (`SERIAL`). Not under Miri (it cannot call `kill` or `signal`).
#![cfg(all(unix, feature = "std", not(miri)))]

use gilock::signal::SigintBridge;
use gilock::{Gil, Interrupted, Lock};
use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

mod common;
use common::{BOUND, setup, spawn, wait_until, wait_until_queued};

const SIGINT: c_int = 2;
const SIG_DFL: usize = 0;

unsafe extern "C" {
    fn raise(signum: c_int) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;
}

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends SIGINT, as a Ctrl-C in the terminal does, to the calling thread
/// (`raise`), which runs the handler before `raise` returns. A signal sent
/// to the whole process (`kill(getpid())`) may go to the bridge's own
/// thread, blocked in `read`; ThreadSanitizer defers a handler until such a
/// call returns, which here it never did (a delivery that never came failed
/// the TSan step once).
fn ctrl_c() {
    // SAFETY:
    // - `raise(3)` with a valid signal number;
    // - every caller has a handler installed (a bridge, or the test's own),
    //   so the signal does not end the test process.
    assert_eq!(unsafe { raise(SIGINT) }, 0, "raise failed");
}

/// The test's own SIGINT handler: counts.
static OWN_HANDLER_CALLS: AtomicU64 = AtomicU64::new(0);
extern "C" fn own_handler(_: c_int) {
    OWN_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// The user's scenario: an interpreter thread, holding the Gil, blocks in
/// `Lock::acquire_with` on a lock another thread holds; the user presses
/// Ctrl-C. The call returns `Err(Interrupted)` with the Gil held again, and
/// the lock was not taken (its holder still has it, and after its release
/// it is free).
/// The bridge counts the delivery before it interrupts, so the count is
/// seen by whoever saw the wait end (the interpreter demo once found it not
/// counted yet, when the bridge counted after `interrupt`).
/// Broken variant checked: the handler not writing to the pipe (the
/// waiter stayed blocked; the bounded join failed after 10 s).
#[test]
fn sigint_interrupts_a_thread_blocked_in_lock_acquire_with() {
    let _serial = serial();
    setup();
    let bridge = SigintBridge::install().expect("install the bridge");
    let gil = Arc::new(Gil::new());
    let lock = Arc::new(Lock::new());
    lock.acquire(); // held by this thread, which holds no Gil
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let (gil, lock) = (gil.clone(), lock.clone());
        spawn(move || {
            let mut guard = gil.acquire();
            tx.send(gil.current_thread_state()).unwrap();
            let result = lock.acquire_with(&mut guard);
            (result, gil.is_held_by_current_thread())
        })
    };
    let state = rx.recv_timeout(BOUND).unwrap();
    wait_until_queued(&state);
    bridge.set_target(Some(state));
    ctrl_c();
    let (result, held) = waiter.join();
    assert_eq!(result, Err(Interrupted));
    assert!(held, "the call returned with the Gil held");
    assert!(lock.locked(), "still held by its holder");
    lock.release().unwrap();
    assert!(lock.try_acquire(), "the interrupted waiter did not take it");
    assert_eq!(bridge.received(), 1);
    assert_eq!(bridge.delivered(), 1);
    assert!(bridge.last_delivery().is_some());
}

/// Dropping the bridge puts back the handler that was installed before it;
/// while it is installed, that handler does not see SIGINT.
/// Broken variant checked: `Drop` not calling `signal` (the test's handler
/// was never called; the bounded wait for it failed).
#[test]
fn dropping_the_bridge_restores_the_previous_handler() {
    let _serial = serial();
    setup();
    let own: extern "C" fn(c_int) = own_handler;
    // SAFETY: `signal(2)` with a valid number and an `extern "C"` handler
    // that only touches an atomic.
    let before = unsafe { signal(SIGINT, own as usize) };
    let calls = OWN_HANDLER_CALLS.load(Ordering::SeqCst);
    let bridge = SigintBridge::install().expect("install the bridge");
    ctrl_c();
    wait_until("the bridge saw it", || bridge.received() == 1);
    assert_eq!(OWN_HANDLER_CALLS.load(Ordering::SeqCst), calls);
    drop(bridge);
    ctrl_c();
    wait_until("the restored handler saw it", || {
        OWN_HANDLER_CALLS.load(Ordering::SeqCst) == calls + 1
    });
    // SAFETY: as above, putting back what was there before the test.
    unsafe {
        signal(
            SIGINT,
            if before == usize::MAX {
                SIG_DFL
            } else {
                before
            },
        )
    };
}

/// One bridge at a time; a SIGINT with no target is counted and harms
/// nobody; the target can be set afterwards, and changed.
/// Broken variant checked: `install` not refusing a second bridge (the
/// second `install` returned `Ok`).
#[test]
fn one_bridge_at_a_time_and_the_target_is_set_at_run_time() {
    let _serial = serial();
    setup();
    let bridge = SigintBridge::install().expect("install the bridge");
    assert_eq!(bridge.received(), 0, "a new bridge has seen nothing");
    let again = SigintBridge::install().map(drop);
    assert_eq!(
        again.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::AlreadyExists)
    );
    ctrl_c();
    wait_until("the bridge saw it", || bridge.received() == 1);
    assert_eq!(bridge.delivered(), 0, "no target: nothing delivered");
    let gil = Gil::new();
    let me = gil.current_thread_state();
    assert!(bridge.set_target(Some(me.clone())).is_none());
    ctrl_c();
    wait_until("delivered", || bridge.delivered() == 1);
    assert_eq!(bridge.received(), 2, "both SIGINTs counted");
    // The interrupt is pending: the next Gil-releasing wait reports it at
    // once, and consumes it.
    let mut guard = gil.acquire();
    let lock = Lock::new();
    assert_eq!(lock.acquire_with(&mut guard), Err(Interrupted));
    assert_eq!(lock.acquire_with(&mut guard), Ok(()));
    assert_eq!(bridge.set_target(None).map(|t| t.ident()), Some(me.ident()));
    drop(bridge);
    // Installed again once the first is gone.
    drop(SigintBridge::install().expect("a second bridge after the first"));
}
