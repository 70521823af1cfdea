//! Guards that outlive their place: kept in a thread-local whose destructor
//! runs after the crate's own thread-locals are gone, or smuggled into a
//! `detach` closure. Whatever a program does with its guards, the thread
//! stays one thread to the Gil (one `ThreadState`), and the Gil is free
//! once the thread's last guard is gone.
#![cfg(feature = "std")]

mod common;

use common::{BOUND, spawn};
use gilock::{Gil, GilGuard, ThreadState};
use std::cell::RefCell;
use std::sync::{Arc, Weak, mpsc};
use std::time::Duration;

/// One Gil per test, so that parallel tests do not see each other's.
static GIL: Gil = Gil::new();
static LATE_GIL: Gil = Gil::new();
static STASH_GIL: Gil = Gil::new();

/// What a thread-local destructor saw of the Gil.
#[derive(Debug, PartialEq)]
struct Seen {
    held: bool,
    /// `try_acquire_for` on a Gil the thread holds returns `None` at once.
    try_for_is_none: bool,
    /// `ensure` returns a nested guard (it deadlocked on itself before).
    ensured_nested: bool,
    held_after_nested: bool,
}

/// Holds a guard, and at thread exit reports what the Gil looks like from
/// its destructor.
struct Holder {
    guard: Option<GilGuard<'static>>,
    report: Option<mpsc::Sender<Seen>>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        let held = GIL.is_held_by_current_thread();
        // A long timeout: it must not be waited out.
        let try_for_is_none = GIL.try_acquire_for(BOUND * 3).is_none();
        let nested = GIL.ensure();
        let ensured_nested = GIL.is_held_by_current_thread();
        drop(nested);
        let held_after_nested = GIL.is_held_by_current_thread();
        drop(self.guard.take());
        if let Some(report) = self.report.take() {
            let _ = report.send(Seen {
                held,
                try_for_is_none,
                ensured_nested,
                held_after_nested,
            });
        }
    }
}

thread_local! {
    // It has a destructor, registered at first use: before the crate's own
    // thread-locals when it is used first, so destroyed after them
    // (thread-locals are destroyed in reverse order of registration).
    static HOLDER: RefCell<Holder> = const { RefCell::new(Holder { guard: None, report: None }) };
}

/// Before the fix, the destructor found a second `ThreadState` once the
/// crate's thread-locals were gone: `is_held_by_current_thread()` was false
/// while the thread held the Gil, `try_acquire_for` waited its whole
/// timeout, `ensure()` deadlocked on itself, and the dead thread stayed in
/// `thread_states()`.
#[test]
fn a_guard_in_a_thread_local_destructor_is_still_the_threads() {
    let (tx, rx) = mpsc::channel();
    let t = spawn(move || {
        // Registered first, destroyed last.
        HOLDER.with(|h| h.borrow_mut().report = Some(tx));
        let guard = GIL.acquire();
        let ident = guard.thread_state().ident();
        HOLDER.with(|h| h.borrow_mut().guard = Some(guard));
        ident
    });
    let ident = t.join();
    let seen = rx.recv_timeout(BOUND).expect("the destructor reported");
    assert_eq!(
        seen,
        Seen {
            held: true,
            try_for_is_none: true,
            ensured_nested: true,
            held_after_nested: true,
        }
    );
    assert!(!GIL.is_locked(), "the destructor's guard released the Gil");
    assert!(
        GIL.thread_states().iter().all(|s| s.ident() != ident),
        "an ended thread stays listed"
    );
    // The Gil works for everyone else.
    assert!(GIL.try_acquire_for(Duration::from_secs(1)).is_some());
}

thread_local! {
    static LATE: RefCell<Option<mpsc::Sender<LateReport>>> = const { RefCell::new(None) };
    static LATE_USER: LateUser = const { LateUser };
}

/// What `LateUser` saw: whether it held the Gil, whether its state was
/// listed, and its state, not kept alive.
type LateReport = (bool, bool, Weak<ThreadState>);

/// A thread-local destructor that takes the Gil for the first time after
/// the crate's thread-locals are gone.
struct LateUser;

impl Drop for LateUser {
    fn drop(&mut self) {
        let guard = LATE_GIL.acquire();
        let held = LATE_GIL.is_held_by_current_thread();
        let listed = LATE_GIL
            .thread_states()
            .iter()
            .any(|s| s.ident() == guard.thread_state().ident());
        let state = Arc::downgrade(&LATE_GIL.current_thread_state());
        drop(guard);
        LATE.with(|l| {
            if let Some(tx) = l.borrow_mut().take() {
                let _ = tx.send((held, listed, state));
            }
        });
    }
}

#[test]
fn a_thread_local_destructor_may_take_the_gil_and_is_not_listed_afterwards() {
    let (tx, rx) = mpsc::channel();
    spawn(move || {
        LATE.with(|l| *l.borrow_mut() = Some(tx));
        LATE_USER.with(|_| {});
        // The crate's thread-locals come after, and go first.
        drop(LATE_GIL.acquire());
    })
    .join();
    let (held, listed, state) = rx.recv_timeout(BOUND).expect("the destructor reported");
    assert!(held);
    assert!(!listed, "a state made for a destructor is never listed");
    // Freed with its last guard (mutation: `GilGuard::unlist_ended` doing
    // nothing kept it in the registry for good).
    assert!(
        state.upgrade().is_none(),
        "the state made for a destructor outlived its last guard"
    );
    assert!(!LATE_GIL.is_locked());
    // Both acquisitions count, although neither state is listed any more
    // (each thread counts its own; the Gil keeps the counts of the states
    // that left). Mutations: not keeping the count when a thread's state
    // is freed at its end, or when an ended state is unlisted, each make
    // this 1.
    assert_eq!(LATE_GIL.stats().acquisitions, 2);
}

static GIVE_UP_GIL: Gil = Gil::new();

thread_local! {
    static GIVE_UP: RefCell<Option<mpsc::Sender<bool>>> = const { RefCell::new(None) };
    static GIVER_UP: GiverUp = const { GiverUp };
}

/// A thread-local destructor whose wait for the Gil (held by another
/// thread) times out, after the crate's thread-locals are gone.
struct GiverUp;

impl Drop for GiverUp {
    fn drop(&mut self) {
        let got = GIVE_UP_GIL
            .try_acquire_for(Duration::from_millis(20))
            .is_some();
        GIVE_UP.with(|g| {
            if let Some(tx) = g.borrow_mut().take() {
                let _ = tx.send(got);
            }
        });
    }
}

/// The wait of an ended thread's state gives up: the state goes then. It
/// used to be freed inside the wait loop, whose `&ThreadState` argument
/// still pointed at it: undefined behaviour under Rust's aliasing rules,
/// which Miri reports (a reference argument must stay valid until its
/// function returns).
#[test]
fn a_thread_local_destructor_whose_wait_times_out_frees_its_state_afterwards() {
    let (held_tx, held_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let holder = spawn(move || {
        let _guard = GIVE_UP_GIL.acquire();
        held_tx.send(()).unwrap();
        done_rx.recv_timeout(BOUND).unwrap();
    });
    held_rx.recv_timeout(BOUND).unwrap();
    let (tx, rx) = mpsc::channel();
    spawn(move || {
        GIVE_UP.with(|g| *g.borrow_mut() = Some(tx));
        GIVER_UP.with(|_| {});
        // The crate's thread-locals come after, and go first. (Only to
        // register them: the Gil is held elsewhere, so this gets nothing.)
        let _ = GIVE_UP_GIL.try_acquire_for(Duration::ZERO);
    })
    .join();
    let got = rx.recv_timeout(BOUND).expect("the destructor reported");
    assert!(!got, "the Gil was held by another thread all along");
    done_tx.send(()).unwrap();
    holder.join();
    assert!(GIVE_UP_GIL.try_acquire().is_some());
}

thread_local! {
    static STASH: RefCell<Option<GilGuard<'static>>> = const { RefCell::new(None) };
}

/// A nested guard smuggled into its attachment's own `detach` closure (the
/// closure must be `Send`, so only a thread-local can carry it there) and
/// dropped inside: counted against the suspended attachment, so the outer
/// guard's drop releases the Gil. Before the fix the Gil stayed locked for
/// good, with no guard left.
#[test]
fn a_guard_dropped_inside_its_own_detach_is_counted() {
    let t = spawn(|| {
        let mut outer = STASH_GIL.acquire();
        STASH.with(|s| *s.borrow_mut() = Some(STASH_GIL.ensure()));
        outer.detach(|| STASH.with(|s| drop(s.borrow_mut().take())));
        assert!(STASH_GIL.is_held_by_current_thread());
        drop(outer);
        STASH_GIL.is_locked()
    });
    assert!(!t.join(), "the Gil was left locked");
    // And the same with the detach closure panicking.
    let t = spawn(|| {
        let mut outer = STASH_GIL.acquire();
        STASH.with(|s| *s.borrow_mut() = Some(STASH_GIL.ensure()));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            outer.detach(|| {
                STASH.with(|s| drop(s.borrow_mut().take()));
                panic!("deliberate");
            })
        }));
        assert!(caught.is_err());
        drop(outer);
        STASH_GIL.is_locked()
    });
    assert!(!t.join(), "the Gil was left locked");
}

/// A waiter asks the holder to drop the Gil (a write into the holder's
/// eval breaker, made under the park queue's lock); when its interval runs
/// out it leaves the queue for a moment, the last one there, and the word
/// loses `PARKED`. A holder that releases then does so by the fast path,
/// without that lock, and its thread ends and frees its state. That free
/// must come after the waiter's write: under Miri this was a data race
/// (the waiter's `fetch_or` against the `Arc`'s drop) until the waiter
/// cleared `PARKED` with Release and the fast release acquired it. Which
/// release path a round takes depends on the interleaving, so it runs a
/// few rounds; off Miri it only checks the outcome.
#[test]
fn a_holder_ending_after_a_fast_release_frees_its_state_after_the_waiters_drop_request() {
    use std::sync::Arc;
    let rounds = if cfg!(miri) { 20 } else { 50 };
    for _ in 0..rounds {
        let gil = Arc::new(Gil::with_switch_interval(Duration::from_millis(1)));
        let (held_tx, held_rx) = mpsc::channel();
        let holder = {
            let gil = gil.clone();
            spawn(move || {
                let guard = gil.acquire();
                held_tx.send(()).unwrap();
                let breaker = guard.thread_state().eval_breaker();
                while !breaker.is_drop_requested() {
                    std::thread::yield_now();
                }
                drop(guard);
                // The thread ends: its state is freed.
            })
        };
        held_rx.recv_timeout(BOUND).unwrap();
        let waiter = {
            let gil = gil.clone();
            spawn(move || drop(gil.acquire()))
        };
        holder.join();
        waiter.join();
        assert!(!gil.is_locked());
    }
}
