//! The Gil-releasing (`_with`) forms of the lock primitives, as an
//! interpreter's `threading` module uses them: an uncontended call costs no
//! Gil switch; a blocked call lets go of the Gil, so a lock holder that
//! needs the Gil to reach its release is not deadlocked; an interrupt ends
//! the wait with the Gil held and the primitive not taken; a pending
//! interrupt ends the call before its first try; timed forms never return
//! early. (Semaphore, Event and Barrier have theirs in their own files.)
//!
//! Seen to catch: the fair mutex's slow path not letting go of the Gil
//! (`waiter.detach` removed) fails the three "holder that needs the Gil"
//! tests by deadlock; `wait::run` not checking for a pending interrupt
//! first fails `lock_pending_interrupt_ends_acquire_with_before_the_first_try`.

mod common;

use common::{BOUND, Bounded, setup, spawn, wait_until, wait_until_queued};
use gilock::{
    Condition, FairMutex, Gil, GilGuard, Interrupted, Lock, MutexExt, RLock, ReleaseError,
    ThreadState, WaitError,
};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Short enough to keep the suite quick; only ever a lower bound.
const TIMEOUT: Duration = Duration::from_millis(20);

/// Runs `f` on a new thread that holds `gil` through the guard it passes;
/// returns the thread's state (to interrupt it) and its result with whether
/// it held the Gil afterwards.
fn interpreter<T: Send + 'static>(
    gil: &Arc<Gil>,
    f: impl FnOnce(&mut GilGuard<'_>) -> T + Send + 'static,
) -> (Arc<ThreadState>, Bounded<(T, bool)>) {
    let gil = gil.clone();
    let (state_tx, state_rx) = mpsc::channel();
    let t = spawn(move || {
        let mut guard = gil.acquire();
        state_tx.send(gil.current_thread_state()).unwrap();
        let result = f(&mut guard);
        (result, gil.is_held_by_current_thread())
    });
    (state_rx.recv_timeout(BOUND).unwrap(), t)
}

/// How many times the thread let go of the Gil voluntarily so far.
fn releases(guard: &GilGuard<'_>) -> u64 {
    guard.thread_state().stats().voluntary_releases
}

/// A thread that takes `take` plainly, tells us, then needs the Gil (held
/// by the caller) before it can `give_back`: the classic deadlock if the
/// caller blocked on the lock still holding the Gil.
fn holder_needing_the_gil(
    gil: &Arc<Gil>,
    take: impl FnOnce() + Send + 'static,
    give_back: impl FnOnce() + Send + 'static,
) -> Bounded<()> {
    let gil = gil.clone();
    let (taken_tx, taken_rx) = mpsc::channel();
    let t = spawn(move || {
        take();
        taken_tx.send(()).unwrap();
        let _g = gil.acquire();
        give_back();
    });
    taken_rx.recv_timeout(BOUND).unwrap();
    t
}

#[test]
fn lock_uncontended_acquire_with_costs_no_switch() {
    setup();
    let gil = Gil::new();
    let lock = Lock::new();
    let mut guard = gil.acquire();
    let (before, switches) = (releases(&guard), gil.stats().switches);
    assert_eq!(lock.acquire_with(&mut guard), Ok(()));
    lock.release().unwrap();
    assert_eq!(lock.acquire_timeout_with(&mut guard, TIMEOUT), Ok(true));
    assert_eq!(releases(&guard), before);
    assert_eq!(gil.stats().switches, switches);
    assert!(gil.is_held_by_current_thread());
}

#[test]
fn lock_acquire_with_lets_a_holder_that_needs_the_gil_release() {
    setup();
    let gil = Arc::new(Gil::new());
    let lock = Arc::new(Lock::new());
    let g = gil.clone();
    let l = lock.clone();
    let waiter = spawn(move || {
        let mut guard = g.acquire();
        let l2 = l.clone();
        let holder = holder_needing_the_gil(&g, move || l2.acquire(), {
            let l = l.clone();
            move || l.release().unwrap()
        });
        let result = l.acquire_with(&mut guard);
        holder.join();
        (result, l.locked(), g.is_held_by_current_thread())
    });
    assert_eq!(waiter.join(), (Ok(()), true, true));
}

#[test]
fn lock_interrupted_acquire_with_ends_with_the_gil_and_without_the_lock() {
    setup();
    let gil = Arc::new(Gil::new());
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let l = lock.clone();
    let (state, t) = interpreter(&gil, move |guard| l.acquire_with(guard));
    wait_until_queued(&state);
    state.interrupt();
    assert_eq!(t.join(), (Err(Interrupted), true));
    // The interrupt was consumed, the lock is still the main thread's, and
    // it is usable: the next waiter gets it.
    assert!(!state.eval_breaker().is_interrupt_pending());
    let l = lock.clone();
    let (state, t) = interpreter(&gil, move |guard| l.acquire_with(guard));
    wait_until_queued(&state);
    lock.release().unwrap();
    assert_eq!(t.join(), (Ok(()), true));
    assert!(lock.locked());
}

/// A thread whose Gil-releasing wait was interrupted asks for the Gil at
/// once and gets it ahead of a fresh waiter that queued first: under
/// `Fifo` an interrupted waiter is served first; under `Interactive` it
/// comes back as one back from a voluntary release does, with a sleeper's
/// credit. B waits on a lock without the Gil; A, CPU-bound, takes the free
/// Gil; C queues behind A; then B is interrupted. Nobody's hold was timed
/// (every take was uncontended), and with a 120 s interval C asks for the
/// Gil only after a minute or more, so the order does not depend on how
/// fast anything ran. Returns whether C held the Gil before B had it back.
fn interrupted_waiter_against_a_fresh_one(policy: gilock::SwitchPolicy) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let gil = Arc::new(Gil::with_switch_interval(Duration::from_secs(120)));
    gil.set_policy(policy);
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let c_held = Arc::new(AtomicBool::new(false));
    let (l, c_flag) = (lock.clone(), c_held.clone());
    let (state, b) = interpreter(&gil, move |guard| {
        let result = l.acquire_with(guard);
        (result, c_flag.load(SeqCst))
    });
    wait_until_queued(&state);
    let stop = Arc::new(AtomicBool::new(false));
    let a = common::spawn_cpu_bound(&gil, &stop);
    let c = {
        let (gil, c_held) = (gil.clone(), c_held.clone());
        spawn(move || {
            let _guard = gil.acquire();
            c_held.store(true, SeqCst);
        })
    };
    wait_until("C queues", || format!("{gil:?}").contains("waiters: true"));
    state.interrupt();
    let ((result, c_first), held) = b.join();
    assert_eq!((result, held), (Err(Interrupted), true));
    stop.store(true, SeqCst);
    a.join();
    c.join();
    c_first
}

/// Mutation (2 December, a survivor of cargo-mutants): `find_heir`'s
/// `token & PRIORITY == 0` as `token | PRIORITY == 0` (every waiter in
/// arrival order under `Fifo`) → "C held the Gil before the interrupted B".
///
/// Under Miri this test also caught a lost drop request (3 December, fixed
/// in `GilGuard::checkpoint`): A saw B's request but read the waiters bit
/// from before C queued (two Relaxed loads), cleared the request and ran
/// on, and B waited out its whole 120 s interval ("thread did not finish
/// within 120s", Miri seed 1; `.ci/run` runs it with seeds 0..12). The
/// loom models `gil::a_drop_request_survives_a_stale_look_at_the_waiters`
/// and its borrow twin catch the same bug.
#[test]
fn fifo_serves_an_interrupted_waiter_before_a_fresh_one() {
    setup();
    let c_first = interrupted_waiter_against_a_fresh_one(gilock::SwitchPolicy::Fifo);
    assert!(!c_first, "C held the Gil before the interrupted B");
}

/// Mutation (2 December, a survivor of cargo-mutants): `Wait::INTERRUPTED`
/// without `arrival: Arrival::Returning` (placed as a fresh acquisition)
/// → B ties with C, and C's earlier ticket wins: "C held the Gil before
/// the interrupted B".
#[test]
fn interactive_serves_an_interrupted_waiter_before_a_fresh_one() {
    setup();
    let c_first = interrupted_waiter_against_a_fresh_one(gilock::SwitchPolicy::Interactive);
    assert!(!c_first, "C held the Gil before the interrupted B");
}

#[test]
fn lock_pending_interrupt_ends_acquire_with_before_the_first_try() {
    setup();
    let gil = Gil::new();
    let lock = Lock::new();
    let mut guard = gil.acquire();
    guard.thread_state().interrupt();
    assert_eq!(lock.acquire_with(&mut guard), Err(Interrupted));
    assert!(!lock.locked(), "the lock was free, yet must not be taken");
    guard.thread_state().interrupt();
    assert_eq!(
        lock.acquire_timeout_with(&mut guard, TIMEOUT),
        Err(Interrupted)
    );
    assert!(!lock.locked());
    // Consumed: the next call takes the lock.
    assert_eq!(lock.acquire_with(&mut guard), Ok(()));
}

#[test]
fn lock_acquire_timeout_with_never_returns_early() {
    setup();
    let gil = Gil::new();
    let lock = Lock::new();
    lock.acquire();
    let mut guard = gil.acquire();
    let start = Instant::now();
    assert_eq!(lock.acquire_timeout_with(&mut guard, TIMEOUT), Ok(false));
    assert!(start.elapsed() >= TIMEOUT);
    assert!(gil.is_held_by_current_thread());
    // A zero timeout on a contended lock only tries: no switch.
    let before = releases(&guard);
    assert_eq!(
        lock.acquire_timeout_with(&mut guard, Duration::ZERO),
        Ok(false)
    );
    assert_eq!(releases(&guard), before);
}

#[test]
fn rlock_reentry_and_uncontended_acquire_with_cost_no_switch() {
    setup();
    let gil = Gil::new();
    let lock = RLock::new();
    let mut guard = gil.acquire();
    let before = releases(&guard);
    assert_eq!(lock.acquire_with(&mut guard), Ok(()));
    assert_eq!(lock.acquire_with(&mut guard), Ok(()));
    assert_eq!(lock.acquire_timeout_with(&mut guard, TIMEOUT), Ok(true));
    assert_eq!(lock.recursion_count(), 3);
    assert_eq!(releases(&guard), before);
    for _ in 0..3 {
        lock.release().unwrap();
    }
}

#[test]
fn rlock_acquire_with_lets_a_holder_that_needs_the_gil_release() {
    setup();
    let gil = Arc::new(Gil::new());
    let lock = Arc::new(RLock::new());
    let g = gil.clone();
    let l = lock.clone();
    let waiter = spawn(move || {
        let mut guard = g.acquire();
        let (take, give) = (l.clone(), l.clone());
        let holder =
            holder_needing_the_gil(&g, move || take.acquire(), move || give.release().unwrap());
        let result = l.acquire_with(&mut guard);
        holder.join();
        (result, l.is_owned(), g.is_held_by_current_thread())
    });
    assert_eq!(waiter.join(), (Ok(()), true, true));
}

#[test]
fn rlock_interrupted_acquire_with_takes_nothing() {
    setup();
    let gil = Arc::new(Gil::new());
    let lock = Arc::new(RLock::new());
    let (held_tx, held_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let owner = {
        let lock = lock.clone();
        spawn(move || {
            let _guard = lock.lock();
            held_tx.send(()).unwrap();
            done_rx.recv_timeout(BOUND).unwrap();
        })
    };
    held_rx.recv_timeout(BOUND).unwrap();
    let l = lock.clone();
    let (state, t) = interpreter(&gil, move |guard| {
        let result = l.acquire_timeout_with(guard, BOUND * 2);
        (result, l.recursion_count())
    });
    wait_until_queued(&state);
    state.interrupt();
    assert_eq!(t.join(), ((Err(Interrupted), 0), true));
    done_tx.send(()).unwrap();
    owner.join();
    assert!(!lock.locked());
}

#[test]
fn fair_mutex_lock_with() {
    setup();
    let gil = Arc::new(Gil::new());
    let m = Arc::new(FairMutex::new(0u32));
    {
        let mut guard = gil.acquire();
        let before = releases(&guard);
        *m.lock_with(&mut guard).unwrap() += 1;
        assert!(m.try_lock_for_with(&mut guard, TIMEOUT).unwrap().is_some());
        assert_eq!(releases(&guard), before);
    }
    // Contended by a holder that needs the Gil.
    let g = gil.clone();
    let mm = m.clone();
    let waiter = spawn(move || {
        let mut guard = g.acquire();
        let holder = {
            let (m, g) = (mm.clone(), g.clone());
            let (taken_tx, taken_rx) = mpsc::channel();
            let t = spawn(move || {
                let mut data = m.lock();
                taken_tx.send(()).unwrap();
                let _g = g.acquire();
                *data += 10;
            });
            taken_rx.recv_timeout(BOUND).unwrap();
            t
        };
        let value = *mm.lock_with(&mut guard).unwrap();
        holder.join();
        (value, g.is_held_by_current_thread())
    });
    assert_eq!(waiter.join(), (11, true));
    // Timed out and interrupted: the mutex is not taken.
    let guard = m.lock();
    let (mm, mm2) = (m.clone(), m.clone());
    let (state, t) = interpreter(&gil, move |g| {
        mm.try_lock_for_with(g, TIMEOUT).map(|o| o.is_some())
    });
    assert_eq!(t.join(), (Ok(false), true));
    drop(state);
    let (state, t) = interpreter(&gil, move |g| mm2.lock_with(g).map(|_| ()));
    wait_until_queued(&state);
    state.interrupt();
    assert_eq!(t.join(), (Err(Interrupted), true));
    drop(guard);
    assert_eq!(*m.try_lock().expect("free again"), 11);
}

#[test]
fn condition_wait_on_lock_with_lets_the_notifier_take_the_gil_and_the_lock() {
    setup();
    let gil = Arc::new(Gil::new());
    let shared = Arc::new((Lock::new(), Condition::new()));
    let s = shared.clone();
    let g = gil.clone();
    let waiter = spawn(move || {
        let (lock, cond) = &*s;
        let mut guard = g.acquire();
        lock.acquire_with(&mut guard).unwrap();
        let notifier = {
            let (s, g) = (s.clone(), g.clone());
            spawn(move || {
                let (lock, cond) = &*s;
                // Needs the Gil and the lock: both let go by the waiter.
                let mut guard = g.acquire();
                lock.acquire_with(&mut guard).unwrap();
                let woken = cond.notify_on_lock(lock, 1).unwrap();
                lock.release().unwrap();
                woken
            })
        };
        let result = cond.wait_on_lock_timeout_with(lock, &mut guard, BOUND * 2);
        let locked = lock.locked();
        lock.release().unwrap();
        drop(guard);
        (result, locked, notifier.join())
    });
    assert_eq!(waiter.join(), (Ok(true), true, 1));
}

#[test]
fn condition_interrupted_wait_on_lock_with_takes_the_lock_back() {
    setup();
    let gil = Arc::new(Gil::new());
    let shared = Arc::new((Lock::new(), Condition::new()));
    let s = shared.clone();
    let (state, t) = interpreter(&gil, move |guard| {
        let (lock, cond) = &*s;
        lock.acquire();
        let result = cond.wait_on_lock_with(lock, guard);
        let locked = lock.locked();
        lock.release().unwrap();
        (result, locked)
    });
    wait_until_queued(&state);
    state.interrupt();
    assert_eq!(t.join(), ((Err(WaitError::Interrupted), true), true));
    assert_eq!(
        shared.1.notify_all(),
        0,
        "the interrupted waiter left the queue"
    );
}

#[test]
fn condition_interrupted_wait_on_rlock_with_restores_every_level() {
    setup();
    let gil = Arc::new(Gil::new());
    let shared = Arc::new((RLock::new(), Condition::new()));
    let s = shared.clone();
    let (state, t) = interpreter(&gil, move |guard| {
        let (lock, cond) = &*s;
        for _ in 0..3 {
            lock.acquire_with(guard).unwrap();
        }
        let result = cond.wait_on_rlock_with(lock, guard);
        let levels = lock.recursion_count();
        for _ in 0..levels {
            lock.release().unwrap();
        }
        (result, levels)
    });
    wait_until_queued(&state);
    // All three levels are let go of while it waits: once it is queued,
    // so perhaps a moment after it shows `Waiting` (Miri saw that moment).
    wait_until("the waiter let go of every level", || {
        shared.0.try_acquire()
    });
    shared.0.release().unwrap();
    state.interrupt();
    assert_eq!(t.join(), ((Err(WaitError::Interrupted), 3), true));
}

#[test]
fn condition_waits_with_the_gil_report_misuse_without_letting_go() {
    setup();
    let gil = Arc::new(Gil::new());
    let cond = Condition::new();
    let lock = Lock::new();
    let rlock = Arc::new(RLock::new());
    let mut guard = gil.acquire();
    let before = releases(&guard);
    assert_eq!(
        cond.wait_on_lock_with(&lock, &mut guard),
        Err(WaitError::NotLocked)
    );
    assert_eq!(
        cond.wait_on_rlock_timeout_with(&rlock, &mut guard, TIMEOUT),
        Err(WaitError::NotLocked)
    );
    let r = rlock.clone();
    let (held_tx, held_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let owner = spawn(move || {
        let _g = r.lock();
        held_tx.send(()).unwrap();
        done_rx.recv_timeout(BOUND).unwrap();
    });
    held_rx.recv_timeout(BOUND).unwrap();
    assert_eq!(
        cond.wait_on_rlock_with(&rlock, &mut guard),
        Err(WaitError::NotOwner)
    );
    assert_eq!(cond.notify_on_rlock(&rlock, 1), Err(ReleaseError::NotOwner));
    done_tx.send(()).unwrap();
    owner.join();
    assert_eq!(releases(&guard), before, "misuse let go of the Gil");
    assert_eq!(
        cond.notify_on_lock(&lock, usize::MAX),
        Err(ReleaseError::NotLocked)
    );
}

#[test]
fn condition_wait_on_rlock_timeout_with_never_returns_early() {
    setup();
    let gil = Gil::new();
    let (lock, cond) = (RLock::new(), Condition::new());
    let mut guard = gil.acquire();
    lock.acquire_with(&mut guard).unwrap();
    lock.acquire_with(&mut guard).unwrap();
    let start = Instant::now();
    assert_eq!(
        cond.wait_on_rlock_timeout_with(&lock, &mut guard, TIMEOUT),
        Ok(false)
    );
    assert!(start.elapsed() >= TIMEOUT);
    assert_eq!(lock.recursion_count(), 2);
    assert!(gil.is_held_by_current_thread());
    lock.release().unwrap();
    lock.release().unwrap();
}

thread_local! {
    /// A nested guard smuggled into its own attachment's `detach` closure
    /// (the closure must be `Send`, so only a thread-local carries it).
    static SMUGGLED: std::cell::RefCell<Option<GilGuard<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// On a new thread: takes `gil`, stashes a nested guard in `SMUGGLED`,
/// and inside `detach` (holding the Gil again through a fresh attachment
/// if `fresh_inside`) waits on a free lock through the stashed guard.
/// Returns that wait's panic message and whether `gil` was locked after
/// the thread let go of everything.
fn wait_through_a_smuggled_guard(gil: &'static Gil, fresh_inside: bool) -> (String, bool) {
    spawn(move || {
        let mut outer = gil.acquire();
        SMUGGLED.with(|s| *s.borrow_mut() = Some(gil.ensure()));
        let caught = outer.detach(|| {
            let fresh = fresh_inside.then(|| gil.acquire());
            let caught = std::panic::catch_unwind(|| {
                SMUGGLED.with(|s| {
                    let mut stash = s.borrow_mut();
                    let inner = stash.as_mut().unwrap();
                    let _ = Lock::new().acquire_with(inner);
                })
            });
            drop(fresh);
            caught
        });
        let message = caught
            .expect_err("a wait through a suspended guard must panic")
            .downcast::<String>()
            .map(|s| *s)
            .unwrap_or_default();
        SMUGGLED.with(|s| drop(s.borrow_mut().take()));
        drop(outer);
        (message, gil.is_locked())
    })
    .join()
}

/// A wait through a guard whose thread does not hold the Gil through it
/// (smuggled into its own `detach` closure through a thread-local) panics
/// with a message, before anything is let go.
#[test]
fn a_wait_through_a_suspended_guard_panics_clearly() {
    setup();
    static GIL: Gil = Gil::new();
    let (message, locked) = wait_through_a_smuggled_guard(&GIL, false);
    assert!(message.contains("does not hold the Gil"), "{message}");
    assert!(!locked);
}

/// The same with the Gil held again inside the `detach` closure, through a
/// fresh attachment: the thread holds the Gil, but not through the
/// smuggled guard, whose attachment is suspended. A wait through it must
/// still panic, even on a free lock (which the uncontended path would
/// take at once).
///
/// Mutation (4 December): `GilGuard::is_attached` with `||` for `&&` → "a
/// wait through a suspended guard must panic" (it took the free lock).
#[test]
fn a_wait_through_a_suspended_guard_panics_while_a_fresh_one_holds_the_gil() {
    setup();
    static GIL: Gil = Gil::new();
    let (message, locked) = wait_through_a_smuggled_guard(&GIL, true);
    assert!(message.contains("does not hold the Gil"), "{message}");
    assert!(!locked);
}
