//! Panic safety: a panic inside any critical section releases what the
//! unwinding thread held, and the next thread proceeds.
//!
//! Covered: a `FairMutex` guard (also inside `MutexGuard::unlocked`), a
//! `Lock` guard, `RLock` guards N levels deep, `Gil` guards (also nested
//! with `ensure`), a panicking predicate of
//! `Condition::wait_while` / `wait_timeout_while` for every guard type
//! (after a real wait, so the lock was released and re-taken first), and a
//! panic inside `GilGuard::detach`'s closure, which the docs promise takes
//! the Gil back before the panic leaves `detach`.
//!
//! Every join is bounded, so a deadlock fails the test instead of hanging
//! it. Runs on the std backend and on the spinning no-std backend.

use gilock::{Condition, FairMutex, Gil, Lock, RLock, ThreadStatus};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, mpsc};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::{BOUND, Bounded, spawn};

/// Joins a thread that must have ended with the deliberate panic.
trait JoinPanicked {
    fn join_panicked(self);
}

impl<T> JoinPanicked for Bounded<T> {
    fn join_panicked(self) {
        match self.outcome() {
            Ok(_) => panic!("the thread was expected to panic"),
            Err(payload) => assert!(
                is_deliberate(&*payload),
                "the thread panicked, but not deliberately: {:?}",
                payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or(payload.downcast_ref::<&str>().copied())
            ),
        }
    }
}

/// The message of every panic these tests cause on purpose.
const DELIBERATE: &str = "deliberate panic inside a critical section";

/// Installs the clock and thread identity the no-std build needs, and a
/// panic hook that keeps the deliberate panics out of the test output.
fn setup() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_deliberate(info.payload()) {
                default(info);
            }
        }));
    });
    #[cfg(not(feature = "std"))]
    {
        use std::num::NonZeroU64;
        use std::sync::OnceLock;
        use std::sync::atomic::AtomicU64;
        static START: OnceLock<Instant> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(1);
        START.get_or_init(Instant::now);
        gilock::set_clock(|| START.get().unwrap().elapsed());
        std::thread_local!(static ID: NonZeroU64 =
            NonZeroU64::new(NEXT.fetch_add(1, Ordering::Relaxed)).unwrap());
        gilock::set_thread_id_source(|| ID.with(|id| *id));
    }
}

/// Whether a panic payload is the deliberate panic (`panic!` with format
/// arguments carries a `String`, without them a `&str`).
fn is_deliberate(payload: &(dyn std::any::Any + Send)) -> bool {
    payload
        .downcast_ref::<&str>()
        .is_some_and(|m| *m == DELIBERATE)
        || payload
            .downcast_ref::<String>()
            .is_some_and(|m| m == DELIBERATE)
}

/// A predicate for `wait_while` that asks to wait on its first call and
/// panics on its second (after the wait, with the lock held again).
fn panics_on_second_call<T: ?Sized>(calls: Arc<AtomicUsize>) -> impl FnMut(&mut T) -> bool {
    move |_| {
        if calls.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("{}", DELIBERATE);
        }
        true
    }
}

/// Notifies `cond` once a waiter is there to be woken (`notify_one` returns
/// true only then); fails after `BOUND`.
fn notify_when_waiting(cond: Arc<Condition>) -> Bounded<()> {
    spawn(move || {
        let start = Instant::now();
        while !cond.notify_one() {
            assert!(start.elapsed() < BOUND, "no waiter showed up");
            thread::yield_now();
        }
    })
}

#[test]
fn fair_mutex_guard_is_released_by_a_panic_and_the_data_stays_usable() {
    setup();
    let m = Arc::new(FairMutex::new(0u64));
    {
        let m = m.clone();
        spawn(move || {
            let mut guard = m.lock();
            *guard += 1;
            panic!("{}", DELIBERATE);
        })
        .join_panicked();
    }
    assert!(!m.is_locked());
    // No poisoning: the next thread takes it and sees the write.
    let m2 = m.clone();
    assert_eq!(spawn(move || *m2.lock()).join(), 1);
}

#[test]
fn fair_mutex_contended_holder_panics_and_the_waiter_proceeds() {
    setup();
    let m = Arc::new(FairMutex::new(()));
    let (locked_tx, locked_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let holder = {
        let m = m.clone();
        spawn(move || {
            let _guard = m.lock();
            locked_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            panic!("{}", DELIBERATE);
        })
    };
    locked_rx.recv_timeout(BOUND).unwrap();
    let waiter = {
        let m = m.clone();
        spawn(move || drop(m.lock()))
    };
    go_tx.send(()).unwrap();
    holder.join_panicked();
    waiter.join();
    assert!(!m.is_locked());
}

#[test]
fn panic_inside_fair_mutex_guard_unlocked_takes_the_lock_back() {
    setup();
    // lock_api's `MutexGuard::unlocked` re-locks on unwind, so the guard
    // that the panic then drops must own the lock again (RawFairMutex's
    // `lock` cannot fail or unwind, which lock_api requires here).
    let m = Arc::new(FairMutex::new(0u32));
    let m2 = m.clone();
    spawn(move || {
        let mut guard = m2.lock();
        *guard += 1;
        lock_api::MutexGuard::unlocked(&mut guard, || panic!("{}", DELIBERATE));
    })
    .join_panicked();
    assert!(!m.is_locked());
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let mut guard = m.lock();
        lock_api::MutexGuard::unlocked_fair(&mut guard, || {
            assert!(!m.is_locked());
            panic!("{}", DELIBERATE)
        });
    }));
    assert!(caught.is_err());
    assert!(!m.is_locked());
    let m3 = m.clone();
    assert_eq!(spawn(move || *m3.lock()).join(), 1);
}

#[test]
fn lock_guard_is_released_by_a_panic() {
    setup();
    let lock = Arc::new(Lock::new());
    let (locked_tx, locked_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let holder = {
        let lock = lock.clone();
        spawn(move || {
            let _guard = lock.lock();
            locked_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            panic!("{}", DELIBERATE);
        })
    };
    locked_rx.recv_timeout(BOUND).unwrap();
    let waiter = {
        let lock = lock.clone();
        spawn(move || {
            lock.acquire();
            lock.release()
        })
    };
    go_tx.send(()).unwrap();
    holder.join_panicked();
    assert_eq!(waiter.join(), Ok(()));
    assert!(!lock.locked());
}

#[test]
fn rlock_guards_n_levels_deep_are_all_released_by_a_panic() {
    setup();
    for depth in [1usize, 2, 5] {
        let lock = Arc::new(RLock::new());
        let (locked_tx, locked_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let holder = {
            let lock = lock.clone();
            spawn(move || {
                let guards: Vec<_> = (0..depth).map(|_| lock.lock()).collect();
                assert_eq!(lock.recursion_count(), depth);
                locked_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                let _keep = guards;
                panic!("{}", DELIBERATE);
            })
        };
        locked_rx.recv_timeout(BOUND).unwrap();
        let waiter = {
            let lock = lock.clone();
            spawn(move || {
                let _guard = lock.lock();
                lock.recursion_count()
            })
        };
        go_tx.send(()).unwrap();
        holder.join_panicked();
        assert_eq!(waiter.join(), 1, "depth {depth}");
        assert!(!lock.locked(), "depth {depth}");
    }
}

#[test]
fn rlock_panic_caught_inside_the_thread_leaves_the_outer_levels() {
    setup();
    // Unwinding drops only the guards it passes: a panic caught between
    // levels leaves the outer ones held, with the right count.
    let lock = RLock::new();
    let _outer = lock.lock();
    let _middle = lock.lock();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _inner = lock.lock();
        let _innermost = lock.lock();
        assert_eq!(lock.recursion_count(), 4);
        panic!("{}", DELIBERATE);
    }));
    assert!(caught.is_err());
    assert_eq!(lock.recursion_count(), 2);
    assert!(lock.is_owned());
}

#[test]
fn gil_guard_is_released_by_a_panic_and_the_waiter_gets_it() {
    setup();
    let gil = Arc::new(Gil::new());
    let (locked_tx, locked_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let holder = {
        let gil = gil.clone();
        spawn(move || {
            let _outer = gil.acquire();
            let _nested = gil.ensure();
            locked_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            panic!("{}", DELIBERATE);
        })
    };
    locked_rx.recv_timeout(BOUND).unwrap();
    let waiter = {
        let gil = gil.clone();
        spawn(move || {
            let guard = gil.acquire();
            guard.thread_state().status()
        })
    };
    go_tx.send(()).unwrap();
    holder.join_panicked();
    assert_eq!(waiter.join(), ThreadStatus::Attached);
    assert!(!gil.is_locked());
}

#[test]
fn panic_inside_detach_takes_the_gil_back_before_leaving_detach() {
    setup();
    // `detach` promises: "The Gil is taken back even if `f` panics." So a
    // panic caught around `detach` finds the Gil held again, the guard
    // fully usable, and the thread Attached.
    let gil = Gil::new();
    let mut guard = gil.acquire();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        guard.detach(|| {
            assert!(!gil.is_locked());
            panic!("{}", DELIBERATE);
        })
    }));
    assert!(caught.is_err());
    assert!(gil.is_held_by_current_thread());
    assert_eq!(guard.thread_state().status(), ThreadStatus::Attached);
    assert!(!guard.checkpoint().switched);
    assert_eq!(guard.detach(|| 7), 7);
    drop(guard);
    assert!(!gil.is_locked());
}

#[test]
fn panic_inside_detach_of_a_nested_guard_keeps_the_nesting() {
    setup();
    let gil = Gil::new();
    let outer = gil.acquire();
    let mut inner = gil.ensure();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        inner.detach(|| panic!("{}", DELIBERATE));
    }));
    assert!(caught.is_err());
    drop(inner);
    // Only the last guard releases: the nesting survived the panic.
    assert!(gil.is_held_by_current_thread());
    drop(outer);
    assert!(!gil.is_locked());
}

#[test]
fn panic_inside_detach_waits_for_the_gil_while_another_thread_holds_it() {
    setup();
    // The panicking thread must wait for the Gil (not barge in, not leave
    // without it) while another thread holds it, then unwind with it and
    // release it as its guard drops.
    let gil = Arc::new(Gil::new());
    let (taken_tx, taken_rx) = mpsc::channel::<u64>();
    let (detached_tx, detached_rx) = mpsc::channel::<u64>();
    let other = {
        let gil = gil.clone();
        spawn(move || {
            let ident = detached_rx.recv_timeout(BOUND).unwrap();
            let guard = gil.acquire();
            taken_tx.send(0).unwrap();
            // Hold the Gil until the panicking thread waits for it.
            let start = Instant::now();
            loop {
                let waiting = gil
                    .thread_states()
                    .iter()
                    .any(|s| s.ident() == ident && s.status() == ThreadStatus::Waiting);
                if waiting {
                    break;
                }
                assert!(start.elapsed() < BOUND, "the panicking thread never waited");
                thread::yield_now();
            }
            drop(guard);
        })
    };
    let panicker = {
        let gil = gil.clone();
        spawn(move || {
            let mut guard = gil.acquire();
            let ident = guard.thread_state().ident();
            let caught = catch_unwind(AssertUnwindSafe(|| {
                guard.detach(move || {
                    detached_tx.send(ident).unwrap();
                    taken_rx.recv_timeout(BOUND).unwrap();
                    panic!("{}", DELIBERATE);
                })
            }));
            assert!(caught.is_err());
            let held = gil.is_held_by_current_thread();
            drop(guard);
            held
        })
    };
    assert!(panicker.join(), "detach returned by panic without the Gil");
    other.join();
    assert!(!gil.is_locked());
    let gil2 = gil.clone();
    spawn(move || drop(gil2.acquire())).join();
}

#[test]
fn panicking_wait_while_predicate_with_a_fair_mutex_guard() {
    setup();
    let m = Arc::new(FairMutex::new(0u32));
    let cond = Arc::new(Condition::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let (m, cond, calls) = (m.clone(), cond.clone(), calls.clone());
        spawn(move || {
            let mut guard = m.lock();
            cond.wait_while(&mut guard, panics_on_second_call(calls));
        })
    };
    notify_when_waiting(cond.clone()).join();
    waiter.join_panicked();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!m.is_locked());
    let m2 = m.clone();
    spawn(move || drop(m2.lock())).join();
}

#[test]
fn panicking_wait_while_predicate_with_a_lock_guard() {
    setup();
    let lock = Arc::new(Lock::new());
    let cond = Arc::new(Condition::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let (lock, cond, calls) = (lock.clone(), cond.clone(), calls.clone());
        spawn(move || {
            let mut guard = lock.lock();
            cond.wait_while(&mut guard, panics_on_second_call(calls));
        })
    };
    notify_when_waiting(cond.clone()).join();
    waiter.join_panicked();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!lock.locked());
    let lock2 = lock.clone();
    assert!(spawn(move || lock2.try_acquire()).join());
}

#[test]
fn panicking_wait_while_predicate_with_rlock_guards_three_deep() {
    setup();
    let lock = Arc::new(RLock::new());
    let cond = Arc::new(Condition::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let (lock, cond, calls) = (lock.clone(), cond.clone(), calls.clone());
        spawn(move || {
            let _a = lock.lock();
            let _b = lock.lock();
            let mut c = lock.lock();
            cond.wait_while(&mut c, |data: &mut ()| {
                // The wait restored all three levels before the predicate
                // runs again.
                if calls.load(Ordering::SeqCst) == 1 {
                    assert_eq!(lock.recursion_count(), 3);
                }
                panics_on_second_call(calls.clone())(data)
            });
        })
    };
    notify_when_waiting(cond.clone()).join();
    waiter.join_panicked();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!lock.locked());
    let lock2 = lock.clone();
    assert_eq!(
        spawn(move || {
            let _g = lock2.lock();
            lock2.recursion_count()
        })
        .join(),
        1
    );
}

#[test]
fn panicking_wait_while_predicate_with_a_gil_guard() {
    setup();
    let gil = Arc::new(Gil::new());
    let cond = Arc::new(Condition::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let (gil, cond, calls) = (gil.clone(), cond.clone(), calls.clone());
        spawn(move || {
            let mut guard = gil.acquire();
            let _ = cond.wait_while(&mut guard, panics_on_second_call(calls));
        })
    };
    notify_when_waiting(cond.clone()).join();
    waiter.join_panicked();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!gil.is_locked());
    let gil2 = gil.clone();
    assert!(spawn(move || gil2.try_acquire().is_some()).join());
}

#[test]
fn panicking_wait_timeout_while_predicate_after_a_timeout_releases_every_lock() {
    setup();
    // The predicate panics on its second call, which here comes after the
    // wait timed out (no notify): the timed path re-took the lock too.
    let short = Duration::from_millis(2);
    let m = FairMutex::new(());
    let lock = Lock::new();
    let rlock = RLock::new();
    let gil = Gil::new();
    let cond = Condition::new();

    let calls = Arc::new(AtomicUsize::new(0));
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut g = m.lock();
        // Never returns: the predicate panics on its second call.
        let _ = cond.wait_timeout_while(&mut g, panics_on_second_call(calls.clone()), short);
    }));
    assert!(r.is_err() && !m.is_locked());

    let calls = Arc::new(AtomicUsize::new(0));
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut g = lock.lock();
        // Never returns: the predicate panics on its second call.
        let _ = cond.wait_timeout_while(&mut g, panics_on_second_call(calls.clone()), short);
    }));
    assert!(r.is_err() && !lock.locked());

    let calls = Arc::new(AtomicUsize::new(0));
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _outer = rlock.lock();
        let mut g = rlock.lock();
        // Never returns: the predicate panics on its second call.
        let _ = cond.wait_timeout_while(&mut g, panics_on_second_call(calls.clone()), short);
    }));
    assert!(r.is_err() && !rlock.locked() && rlock.recursion_count() == 0);

    let calls = Arc::new(AtomicUsize::new(0));
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut g = gil.acquire();
        let _ = cond.wait_timeout_while(&mut g, panics_on_second_call(calls.clone()), short);
    }));
    assert!(r.is_err() && !gil.is_locked());

    // Another thread takes each of them at once.
    let (m, lock, rlock, gil) = (Arc::new(m), Arc::new(lock), Arc::new(rlock), Arc::new(gil));
    let all_free = spawn(move || {
        m.try_lock().is_some()
            && lock.try_lock().is_some()
            && rlock.try_lock().is_some()
            && gil.try_acquire().is_some()
    })
    .join();
    assert!(all_free);
}
