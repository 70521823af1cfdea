//! `GilCell`: data that only the Gil's holder touches, with `RefCell`'s rules
//! across every guard of the thread, bound to one Gil, and never alive while
//! its thread lets go of the Gil. Also `Gil::with_attached`.
//!
//! Every test runs under Miri too:
//! `MIRIFLAGS=-Zmiri-permissive-provenance cargo +nightly miri test --test gil_cell`.

use gilock::{
    BorrowError, Condition, Event, Gil, GilCell, GilGuard, Lock, RLock, Semaphore, ThreadStatus,
};
use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;
use common::{setup, spawn, wait_until, wait_until_queued};

/// The message of a caught panic.
fn message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

/// Runs `f`, which must panic, and returns its message.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    message(payload)
}

/// RefCell's rules between borrows made through an outer guard and a
/// nested `ensure()` guard: they share one flag per cell.
/// Broken variant checked: `try_borrow_mut` not refusing while shared
/// borrows live (the nested guard's `try_borrow_mut` succeeded).
#[test]
fn refcell_rules_hold_across_nested_guards() {
    setup();
    let gil = Gil::new();
    let cell = GilCell::new(vec![1]);
    let outer = gil.acquire();
    let inner = gil.ensure();
    {
        let a = cell.borrow(&outer);
        let b = cell.borrow(&inner);
        assert_eq!(*a, *b, "shared borrows coexist across guards");
        assert_eq!(
            cell.try_borrow_mut(&inner).err(),
            Some(BorrowError::Borrowed)
        );
        assert_eq!(
            cell.try_borrow_mut(&outer).err(),
            Some(BorrowError::Borrowed)
        );
    }
    {
        let mut w = cell.borrow_mut(&outer);
        w.push(2);
        assert_eq!(
            cell.try_borrow(&inner).err(),
            Some(BorrowError::MutablyBorrowed)
        );
        assert_eq!(
            cell.try_borrow_mut(&inner).err(),
            Some(BorrowError::MutablyBorrowed)
        );
    }
    // Both borrows ended: the cell is free again, through either guard.
    cell.borrow_mut(&inner).push(3);
    assert_eq!(*cell.borrow(&outer), [1, 2, 3]);
}

/// A conflicting `borrow_mut` panics with RefCell's words, and the flag is
/// restored when the borrow unwinds, so the cell and the thread's rule are
/// usable afterwards.
/// Broken variant checked: `GilRefMut::drop` not resetting the flag (the
/// later `borrow` panicked "already mutably borrowed").
#[test]
fn a_conflicting_borrow_mut_panics_and_unwinding_ends_borrows() {
    setup();
    let gil = Gil::new();
    let cell = GilCell::new(0);
    let mut guard = gil.acquire();
    let msg = panic_message(|| {
        let _r = cell.borrow(&guard);
        let _w = cell.borrow_mut(&guard);
    });
    assert!(msg.contains("already borrowed"), "{msg}");
    let msg = panic_message(|| {
        let _w = cell.borrow_mut(&guard);
        panic!("user code panics while it holds a borrow");
    });
    assert!(msg.contains("user code panics"), "{msg}");
    *cell.borrow_mut(&guard) += 1;
    assert_eq!(*cell.borrow(&guard), 1);
    // No borrow is alive any more: the thread may let go of the Gil.
    assert_eq!(guard.detach(|| 7), 7);
}

/// A cell is bound to the first Gil whose guard borrows it; another Gil's
/// guard panics, the `try_` forms too (misuse, not a conflict).
/// Broken variant checked: `bind` accepting any Gil (no panic).
#[test]
fn a_guard_of_another_gil_panics_and_the_try_forms_too() {
    setup();
    let (first, second) = (Gil::new(), Gil::new());
    let cell = GilCell::new(0u8);
    let g1 = first.acquire();
    *cell.borrow_mut(&g1) = 1;
    let g2 = second.acquire();
    for what in ["borrow", "borrow_mut", "try_borrow", "try_borrow_mut"] {
        let msg = panic_message(|| match what {
            "borrow" => drop(cell.borrow(&g2)),
            "borrow_mut" => drop(cell.borrow_mut(&g2)),
            "try_borrow" => drop(cell.try_borrow(&g2)),
            _ => drop(cell.try_borrow_mut(&g2)),
        });
        assert!(msg.contains("bound to another Gil"), "{what}: {msg}");
    }
    // The first Gil still reaches it.
    assert_eq!(*cell.borrow(&g1), 1);
}

/// Through a nested guard the compiler cannot see the outer guard's
/// borrow: a checkpoint keeps the Gil (reports no switch) while it lives,
/// and switches once it has ended.
/// Broken variant checked: no `borrows.any()` test in `checkpoint_slow`
/// (the nested checkpoint switched while the borrow lived).
#[test]
fn a_checkpoint_keeps_the_gil_while_an_outer_borrow_lives() {
    setup();
    let gil = Arc::new(Gil::with_switch_interval(Duration::from_millis(1)));
    let cell = Arc::new(GilCell::new(0u32));
    let mut outer = gil.acquire();
    let waiter = {
        let (gil, cell) = (gil.clone(), cell.clone());
        spawn(move || {
            let g = gil.acquire();
            *cell.borrow_mut(&g) += 1;
        })
    };
    // The waiter asks for the Gil after one interval.
    wait_until("the waiter asks for a switch", || outer.should_yield());
    {
        let value = cell.borrow(&outer);
        let mut inner = gil.ensure();
        let cp = inner.checkpoint();
        assert!(!cp.switched, "switched while a borrow was alive");
        assert!(gil.is_held_by_current_thread());
        assert_eq!(*value, 0, "the waiter did not run");
    }
    // The borrow has ended: the next checkpoint hands over.
    while !outer.checkpoint().switched {
        wait_until("the request is renewed", || outer.should_yield());
    }
    assert_eq!(*cell.borrow(&outer), 1, "the waiter ran in the switch");
    drop(outer);
    waiter.join();
}

/// `yield_now` through a nested guard keeps the Gil while an outer borrow
/// lives, and yields once it has ended.
/// Broken variant checked: no `borrows.any()` test in `yield_now` (it
/// yielded with the borrow alive).
#[test]
fn yield_now_keeps_the_gil_while_an_outer_borrow_lives() {
    setup();
    let gil = Arc::new(Gil::new());
    let cell = Arc::new(GilCell::new(0u32));
    let mut outer = gil.acquire();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = {
        let (gil, cell) = (gil.clone(), cell.clone());
        spawn(move || {
            tx.send(gil.current_thread_state()).unwrap();
            let g = gil.acquire();
            *cell.borrow_mut(&g) += 1;
        })
    };
    let state = rx.recv_timeout(common::BOUND).unwrap();
    wait_until_queued(&state);
    {
        let value = cell.borrow(&outer);
        let mut inner = gil.ensure();
        assert!(!inner.yield_now(), "yielded while a borrow was alive");
        assert_eq!(*value, 0);
    }
    // (It may be between showing `Waiting` and parking: retry.)
    wait_until("yielded to the waiter", || outer.yield_now());
    assert_eq!(*cell.borrow(&outer), 1);
    drop(outer);
    waiter.join();
}

/// `detach` through a nested guard panics while an outer borrow lives,
/// naming where it was made (in debug builds; release builds say how many
/// are alive), before it lets go of anything:
/// the Gil is still held after the panic.
/// Broken variant checked: no `check_none` in `suspend_quietly` (detach
/// ran its closure with the borrow alive).
#[test]
fn detach_panics_naming_the_live_borrow() {
    setup();
    let gil = Gil::new();
    let cell = GilCell::new(String::from("state"));
    let outer = gil.acquire();
    let ran = AtomicBool::new(false);
    let value = cell.borrow(&outer);
    let line = line!() - 1;
    let msg = panic_message(|| {
        let mut inner = gil.ensure();
        inner.detach(|| ran.store(true, Ordering::Relaxed));
    });
    assert!(
        !ran.load(Ordering::Relaxed),
        "the closure ran without the Gil"
    );
    assert!(msg.contains("detach"), "{msg}");
    if cfg!(debug_assertions) {
        assert!(
            msg.contains(&format!("tests/gil_cell.rs:{line}")),
            "names the borrow's place: {msg}"
        );
    } else {
        assert!(msg.contains("(1 of them)"), "says how many: {msg}");
    }
    assert!(gil.is_held_by_current_thread());
    assert_eq!(gil.thread_states()[0].status(), ThreadStatus::Attached);
    drop(value);
    let mut inner = gil.ensure();
    inner.detach(|| ran.store(true, Ordering::Relaxed));
    assert!(ran.load(Ordering::Relaxed));
}

/// Every wait through a guard panics while a borrow of the thread lives,
/// also when it would not have had to wait (the lock free, the event set):
/// a live borrow is a bug whatever the contention. Nothing is taken.
/// Broken variant checked: no `check_none` in `Attached::new` (the
/// uncontended `acquire_with` took the lock and returned).
#[test]
fn every_wait_through_a_guard_panics_while_a_borrow_lives() {
    setup();
    let gil = Gil::new();
    let cell = GilCell::new(0);
    let (lock, rlock, sem, event, cond) = (
        Lock::new(),
        RLock::new(),
        Semaphore::new(1),
        Event::new(),
        Condition::new(),
    );
    event.set();
    let outer = gil.acquire();
    let _value = cell.borrow(&outer);
    let short = Duration::from_millis(1);
    type Wait<'a> = Box<dyn Fn(&mut GilGuard<'_>) + 'a>;
    let waits: Vec<(&str, Wait)> = vec![
        (
            "Lock::acquire_with",
            Box::new(|g| {
                let _ = lock.acquire_with(g);
            }),
        ),
        (
            "Lock::acquire_timeout_with",
            Box::new(|g| {
                let _ = lock.acquire_timeout_with(g, short);
            }),
        ),
        (
            "RLock::acquire_with",
            Box::new(|g| {
                let _ = rlock.acquire_with(g);
            }),
        ),
        (
            "Semaphore::acquire_with",
            Box::new(|g| {
                let _ = sem.acquire_with(g);
            }),
        ),
        (
            "Event::wait_with",
            Box::new(|g| {
                let _ = event.wait_with(g);
            }),
        ),
        (
            "Condition wait",
            Box::new(|g| {
                let _ = cond.wait_timeout(g, short);
            }),
        ),
    ];
    for (what, wait) in waits {
        let msg = panic_message(|| wait(&mut gil.ensure()));
        assert!(msg.contains("GilCell borrow"), "{what}: {msg}");
        assert!(gil.is_held_by_current_thread(), "{what}");
    }
    assert!(!lock.locked(), "the lock was not taken");
    assert!(!rlock.is_owned(), "nor the RLock");
    assert!(sem.try_acquire(), "nor the permit");
}

/// A guard smuggled into its own `detach` closure (through a
/// thread-local: guards are not `Send`) cannot borrow: the thread does not
/// hold the Gil through it there.
/// Broken variant checked: no `is_attached` test in `GilCell::enter` (the
/// borrow succeeded with the Gil released).
#[test]
fn a_smuggled_guard_cannot_borrow() {
    setup();
    static GIL: Gil = Gil::new();
    static CELL: GilCell<u32> = GilCell::new(0);
    thread_local! {
        static STASH: RefCell<Option<GilGuard<'static>>> = const { RefCell::new(None) };
    }
    let mut outer = GIL.acquire();
    STASH.with(|s| *s.borrow_mut() = Some(GIL.ensure()));
    let result = catch_unwind(AssertUnwindSafe(|| {
        outer.detach(|| {
            STASH.with(|s| {
                let stashed = s.borrow();
                drop(CELL.try_borrow(stashed.as_ref().unwrap()));
            })
        })
    }));
    let msg = message(result.expect_err("borrowed through a guard without the Gil"));
    assert!(
        msg.contains("does not hold the Gil through this guard"),
        "{msg}"
    );
    assert!(GIL.is_held_by_current_thread());
    STASH.with(|s| drop(s.borrow_mut().take()));
    assert_eq!(*CELL.borrow(&outer), 0);
}

/// `with_attached` reaches the thread's attachment as a nested guard: its
/// borrows follow the same rules, its checkpoint switches, dropping it
/// releases nothing; it is `None` (and `f` is not called) when the thread
/// does not hold the Gil, also while another thread does.
/// Broken variant checked: `with_attached` returning `Some` without
/// checking `is_held_by_current_thread` (the first assertion failed).
#[test]
fn with_attached_reaches_the_attachment_or_is_none() {
    setup();
    let gil = Arc::new(Gil::new());
    let cell = Arc::new(GilCell::new(0u32));
    assert_eq!(gil.with_attached(|_| unreachable!()), None::<()>);
    let outer = gil.acquire();
    {
        let gil = gil.clone();
        spawn(move || assert_eq!(gil.with_attached(|_| unreachable!()), None::<()>)).join();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = {
        let (gil, cell) = (gil.clone(), cell.clone());
        spawn(move || {
            tx.send(gil.current_thread_state()).unwrap();
            let g = gil.acquire();
            *cell.borrow_mut(&g) += 10;
        })
    };
    let state = rx.recv_timeout(common::BOUND).unwrap();
    let value = cell.borrow(&outer);
    assert_eq!(
        gil.with_attached(|g| cell.try_borrow_mut(g).err()),
        Some(Some(BorrowError::Borrowed)),
        "the outer borrow is seen through the nested guard"
    );
    drop(value);
    wait_until_queued(&state);
    gil.with_attached(|g| *cell.borrow_mut(g) += 1).unwrap();
    // Its yield_now switches (retried: the waiter may be between showing
    // `Waiting` and parking).
    wait_until("yielded to the waiter", || {
        gil.with_attached(|g| g.yield_now()) == Some(true)
    });
    assert!(
        gil.is_held_by_current_thread(),
        "the nested guard released nothing"
    );
    assert_eq!(*cell.borrow(&outer), 11);
    drop(outer);
    assert!(!gil.is_locked());
    waiter.join();
}

/// Threads that take turns on the Gil update a plain counter through
/// borrows made via their own guard, a nested `ensure()` guard and
/// `with_attached`, with checkpoints and detaches in between: no update is
/// lost. Under Miri its data-race detector checks every access too.
#[test]
fn threads_taking_turns_lose_no_update() {
    setup();
    const THREADS: usize = 3;
    let rounds: u64 = if cfg!(miri) { 30 } else { 5_000 };
    let gil = Arc::new(Gil::with_switch_interval(Duration::from_micros(100)));
    let counter = Arc::new(GilCell::new(0u64));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (gil, counter) = (gil.clone(), counter.clone());
            spawn(move || {
                let mut guard = gil.acquire();
                for round in 0..rounds {
                    match round % 3 {
                        0 => {
                            let mut c = counter.borrow_mut(&guard);
                            let v = *c;
                            std::hint::black_box(v);
                            *c = v + 1;
                        }
                        1 => *counter.borrow_mut(&gil.ensure()) += 1,
                        _ => gil
                            .with_attached(|g| *counter.borrow_mut(g) += 1)
                            .expect("attached"),
                    }
                    guard.checkpoint();
                    if round % 16 == 0 {
                        guard.detach(std::thread::yield_now);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    let guard = gil.acquire();
    assert_eq!(*counter.borrow(&guard), THREADS as u64 * rounds);
}

/// Exclusive access to the cell needs no Gil, and `Debug` never reads the
/// value.
#[test]
fn get_mut_into_inner_and_debug_need_no_gil() {
    setup();
    let mut cell = GilCell::new(vec![1]);
    cell.get_mut().push(2);
    assert_eq!(format!("{cell:?}"), "GilCell { bound: false, .. }");
    let gil = Gil::new();
    drop(cell.borrow(&gil.acquire()));
    assert_eq!(format!("{cell:?}"), "GilCell { bound: true, .. }");
    assert_eq!(cell.into_inner(), [1, 2]);
}

/// The panic names a borrow that is still alive, whichever order borrows
/// ended in.
/// Broken variant checked: ending a borrow forgetting the latest place
/// recorded whatever it was (after `a`, `b`, drop `a`, the panic named
/// `a`'s line).
// Debug builds only: release builds keep no places.
#[cfg(debug_assertions)]
#[test]
fn the_panic_names_a_borrow_that_is_still_alive() {
    setup();
    let gil = Gil::new();
    let (x, y) = (GilCell::new(1), GilCell::new(2));
    let outer = gil.acquire();
    let detach_message = || panic_message(|| gil.ensure().detach(|| ()));
    let a = x.borrow(&outer);
    let a_line = line!() - 1;
    let b = y.borrow(&outer);
    let b_line = line!() - 1;
    drop(a);
    let msg = detach_message();
    assert!(msg.contains(&format!("gil_cell.rs:{b_line}:")), "{msg}");
    assert!(msg.contains("1 alive in all"), "{msg}");
    let a = x.borrow(&outer);
    let a2_line = line!() - 1;
    drop(b);
    let msg = detach_message();
    assert!(msg.contains(&format!("gil_cell.rs:{a2_line}:")), "{msg}");
    assert!(!msg.contains(&format!("gil_cell.rs:{a_line}:")), "{msg}");
    drop(a);
}

/// Borrows dropped out of order leave the list of live borrow sites
/// exact: with A, B and C alive, dropping A and then C leaves B, and the
/// panic names B, never a dropped one. (A cargo-mutants survivor: clearing
/// the wrong slot after an out-of-order drop, `kept + 1` for `kept - 1`,
/// left C's site behind and the panic named it.)
// Debug builds only: release builds keep no places.
#[cfg(debug_assertions)]
#[test]
fn the_panic_never_names_a_borrow_dropped_out_of_order() {
    setup();
    let gil = Gil::new();
    let (x, y, z) = (GilCell::new(1), GilCell::new(2), GilCell::new(3));
    let outer = gil.acquire();
    let a = x.borrow(&outer);
    let b = y.borrow(&outer);
    let b_line = line!() - 1;
    let c = z.borrow(&outer);
    let c_line = line!() - 1;
    drop(a);
    drop(c);
    let msg = panic_message(|| gil.ensure().detach(|| ()));
    assert!(msg.contains(&format!("gil_cell.rs:{b_line}:")), "{msg}");
    assert!(!msg.contains(&format!("gil_cell.rs:{c_line}:")), "{msg}");
    assert!(msg.contains("1 alive in all"), "{msg}");
    drop(b);
}
