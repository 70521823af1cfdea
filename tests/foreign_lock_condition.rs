//! Python's `threading.Condition(lock)` over a lock that is not gilock's.
//!
//! gilock's [`Condition`] releases its lock inside the park layer's
//! `before_sleep` callback, with the park queue locked, so that no notify
//! can slip in between the release and the sleep. No user code may run
//! there (it could park, take the queue's lock again or unwind), so the
//! `Condition` cannot call an arbitrary lock's `release`, and the crate
//! offers no trait for "a lock the Condition knows how to release".
//!
//! An interpreter does what CPython's own `threading.Condition` does, and
//! needs nothing but [`gilock::Lock`] for it: each waiter allocates a
//! `Lock`, takes it, appends it to the condition's queue while it holds the
//! user's lock, releases the user's lock with the user's own `release`
//! (any code may run: this is not a park callback), and then blocks taking
//! its own `Lock` a second time (`acquire_with`, so the Gil is let go of
//! and an interrupt ends the wait). `notify(n)` releases the first `n`
//! waiters' locks. No wake-up is lost: a waiter is queued before the
//! user's lock is released, and its `Lock` remembers a release that comes
//! before the waiter sleeps.
//!
//! `PyCondition` below is that algorithm, written against `PyLock`: what
//! an interpreter knows of a lock object (its `acquire`, `release` and
//! whether the caller owns it). `UserLock` is a lock gilock knows nothing
//! about, built on `std::sync::{Mutex, Condvar}` and counting how often it
//! is released. Two refinements over CPython keep gilock's `Condition`
//! guarantees: a waiter whose timeout passes just as a `notify` picked it
//! reports the notification (CPython reports a timeout that `notify` had
//! already counted), and an interrupted waiter that a `notify` had picked
//! passes the notification on to the next waiter.

#![cfg(feature = "std")]

mod common;

use common::{BOUND, spawn, wait_until, wait_until_queued};
use gilock::{Gil, GilGuard, Interrupted, Lock, Mutex, ReleaseError};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::Duration;

/// What the interpreter knows of a lock object its user handed to
/// `threading.Condition(lock)`: in Python, its `acquire`, `release` and
/// `_is_owned` methods, which may run any code.
trait PyLock: Sync {
    /// Takes the lock, letting go of the Gil while it must wait.
    fn acquire(&self, gil: &mut GilGuard<'_>);
    /// Releases the lock (Python's `RuntimeError` when not held).
    fn release(&self, gil: &mut GilGuard<'_>) -> Result<(), ReleaseError>;
    /// Whether the calling thread holds it (Python's `_is_owned`).
    fn is_owned(&self) -> bool;
}

/// `RuntimeError` and `KeyboardInterrupt`, as the interpreter raises them.
#[derive(Debug, PartialEq, Eq)]
enum PyErr {
    RuntimeError(&'static str),
    KeyboardInterrupt,
}

/// Python's `threading.Condition` over any `PyLock`, with CPython's
/// algorithm: a queue of per-waiter `gilock::Lock`s.
struct PyCondition<L> {
    lock: L,
    /// The waiters' locks, oldest first. Touched only by a thread that
    /// holds `lock` (as in CPython); the `Mutex` is there for Rust's sake,
    /// and nobody blocks while holding it.
    waiters: Mutex<VecDeque<Arc<Lock>>>,
}

impl<L: PyLock> PyCondition<L> {
    fn new(lock: L) -> Self {
        Self {
            lock,
            waiters: Mutex::new(VecDeque::new()),
        }
    }

    /// `Condition.wait(timeout)`: `Ok(true)` when notified, `Ok(false)` on
    /// timeout; the user's lock is held again in every case, errors
    /// included (Python's `finally`).
    fn wait(&self, gil: &mut GilGuard<'_>, timeout: Option<Duration>) -> Result<bool, PyErr> {
        if !self.lock.is_owned() {
            return Err(PyErr::RuntimeError("cannot wait on un-acquired lock"));
        }
        let waiter = Arc::new(Lock::new());
        waiter.acquire(); // a new lock: this never waits
        self.waiters.lock().push_back(Arc::clone(&waiter));
        // The user's own release: any code may run here.
        self.lock
            .release(gil)
            .expect("is_owned said the caller holds the lock");
        let woken = match timeout {
            None => waiter.acquire_with(gil).map(|()| true),
            Some(t) if t > Duration::ZERO => waiter.acquire_timeout_with(gil, t),
            Some(_) => Ok(waiter.try_acquire()),
        };
        self.lock.acquire(gil);
        if woken == Ok(true) {
            return Ok(true);
        }
        // Timed out or interrupted. A waiter still queued was not notified;
        // one that is gone was picked by a notify, which released its lock.
        let mut waiters = self.waiters.lock();
        let queued = waiters.iter().position(|w| Arc::ptr_eq(w, &waiter));
        match (woken, queued) {
            (_, Some(at)) => {
                waiters.remove(at);
                woken.map_err(|Interrupted| PyErr::KeyboardInterrupt)
            }
            (Ok(_), None) => Ok(true), // the notify came with the timeout
            (Err(Interrupted), None) => {
                // Hand the notification on: no wake-up is lost.
                drop(waiters);
                self.notify(1).expect("the lock is held again");
                Err(PyErr::KeyboardInterrupt)
            }
        }
    }

    /// `Condition.notify(n)`: wakes the `n` oldest waiters; returns how
    /// many it woke.
    fn notify(&self, n: usize) -> Result<usize, PyErr> {
        if !self.lock.is_owned() {
            return Err(PyErr::RuntimeError("cannot notify on un-acquired lock"));
        }
        let mut waiters = self.waiters.lock();
        let mut woken = 0;
        while woken < n {
            let Some(waiter) = waiters.pop_front() else {
                break;
            };
            // Each queued waiter's lock is held until a notify releases it.
            waiter.release().expect("a queued waiter's lock is locked");
            woken += 1;
        }
        Ok(woken)
    }

    fn notify_all(&self) -> Result<usize, PyErr> {
        self.notify(usize::MAX)
    }
}

/// A lock gilock knows nothing about: a user's lock on std's `Mutex` and
/// `Condvar`, owned by a thread, counting its releases.
#[derive(Default)]
struct UserLock {
    owner: std::sync::Mutex<Option<ThreadId>>,
    freed: std::sync::Condvar,
    releases: AtomicUsize,
}

impl PyLock for UserLock {
    fn acquire(&self, gil: &mut GilGuard<'_>) {
        let me = thread::current().id();
        {
            let mut owner = self.owner.lock().unwrap();
            match *owner {
                None => {
                    *owner = Some(me);
                    return;
                }
                // Not re-entrant: fail instead of waiting for ever.
                Some(id) => assert_ne!(id, me, "UserLock: this thread holds it already"),
            }
        }
        // It must wait: never with the Gil held, or the holder could not
        // run to its release.
        gil.detach(|| {
            let mut owner = self.owner.lock().unwrap();
            while owner.is_some() {
                owner = self.freed.wait(owner).unwrap();
            }
            *owner = Some(me);
        });
    }

    fn release(&self, _gil: &mut GilGuard<'_>) -> Result<(), ReleaseError> {
        let mut owner = self.owner.lock().unwrap();
        match *owner {
            None => Err(ReleaseError::NotLocked),
            Some(id) if id != thread::current().id() => Err(ReleaseError::NotOwner),
            Some(_) => {
                *owner = None;
                self.releases.fetch_add(1, Ordering::Relaxed);
                self.freed.notify_one();
                Ok(())
            }
        }
    }

    fn is_owned(&self) -> bool {
        *self.owner.lock().unwrap() == Some(thread::current().id())
    }
}

struct Shared {
    gil: Gil,
    cond: PyCondition<UserLock>,
    /// What the waiters wait for; touched only with `cond.lock` held.
    ready: AtomicUsize,
}

fn shared() -> Arc<Shared> {
    Arc::new(Shared {
        gil: Gil::new(),
        cond: PyCondition::new(UserLock::default()),
        ready: AtomicUsize::new(0),
    })
}

/// Starts a thread that takes the Gil and the user's lock and waits on the
/// condition until `ready` is set, as `with cond: while not ready:
/// cond.wait()`; returns once it is blocked in its wait. The thread
/// returns its order of wake-up, checking on the way that it holds the
/// user's lock.
fn waiter(shared: &Arc<Shared>, woken: &Arc<AtomicUsize>) -> common::Bounded<usize> {
    let (shared, woken) = (Arc::clone(shared), Arc::clone(woken));
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = spawn(move || {
        let mut gil = shared.gil.acquire();
        tx.send(shared.gil.current_thread_state()).unwrap();
        shared.cond.lock.acquire(&mut gil);
        while shared.ready.load(Ordering::Relaxed) == 0 {
            assert_eq!(shared.cond.wait(&mut gil, None), Ok(true));
            assert!(shared.cond.lock.is_owned(), "woke without the lock");
        }
        let order = woken.fetch_add(1, Ordering::Relaxed);
        shared.cond.lock.release(&mut gil).unwrap();
        order
    });
    wait_until_queued(&rx.recv_timeout(BOUND).unwrap());
    thread
}

/// Two waiters; `notify(1)` wakes the older one only, `notify_all` the
/// other; each wakes holding the user's lock, which the condition released
/// with the user's own `release` (counted) while the waiters slept, and
/// the Gil was let go of meanwhile (the notifier needs it). Without a
/// waiter, `notify` wakes nobody.
///
/// Seen to fail: with `notify` popping the newest waiter (`pop_back`) →
/// the older waiter was never woken ("did not finish within 10s:
/// deadlock?"); with `wait` not releasing the user's lock → the notifier
/// could not take it (the same), and a waiter taking it back panicked
/// ("this thread holds it already").
#[test]
fn notify_wakes_the_oldest_waiters_holding_the_users_lock() {
    let shared = shared();
    let woken = Arc::new(AtomicUsize::new(0));
    let first = waiter(&shared, &woken);
    let second = waiter(&shared, &woken);
    assert_eq!(shared.cond.lock.releases.load(Ordering::Relaxed), 2);

    let notifier = {
        let shared = Arc::clone(&shared);
        spawn(move || {
            let mut gil = shared.gil.acquire();
            shared.cond.lock.acquire(&mut gil);
            shared.ready.store(1, Ordering::Relaxed);
            assert_eq!(shared.cond.notify(1), Ok(1));
            shared.cond.lock.release(&mut gil).unwrap();
        })
    };
    notifier.join();
    assert_eq!(first.join(), 0, "notify(1) must wake the oldest waiter");

    let mut gil = shared.gil.acquire();
    shared.cond.lock.acquire(&mut gil);
    assert_eq!(shared.cond.notify_all(), Ok(1));
    shared.cond.lock.release(&mut gil).unwrap();
    drop(gil);
    assert_eq!(second.join(), 1);

    let mut gil = shared.gil.acquire();
    shared.cond.lock.acquire(&mut gil);
    assert_eq!(shared.cond.notify_all(), Ok(0));
    assert!(shared.cond.waiters.lock().is_empty());
    shared.cond.lock.release(&mut gil).unwrap();
}

/// A timed wait that nobody notifies returns `Ok(false)` with the user's
/// lock held again and leaves no waiter behind (a later `notify` wakes
/// nobody); a zero timeout only checks. Misuse is Python's
/// `RuntimeError`.
///
/// Seen to fail: with the timed-out waiter left in the queue → `notify`
/// returned 1 with nobody waiting.
#[test]
fn a_timed_wait_times_out_holding_the_users_lock() {
    let shared = shared();
    let mut gil = shared.gil.acquire();
    assert_eq!(
        shared.cond.wait(&mut gil, Some(Duration::from_millis(1))),
        Err(PyErr::RuntimeError("cannot wait on un-acquired lock"))
    );
    assert_eq!(
        shared.cond.notify(1),
        Err(PyErr::RuntimeError("cannot notify on un-acquired lock"))
    );
    shared.cond.lock.acquire(&mut gil);
    for timeout in [Duration::from_millis(5), Duration::ZERO] {
        assert_eq!(shared.cond.wait(&mut gil, Some(timeout)), Ok(false));
        assert!(shared.cond.lock.is_owned());
        assert_eq!(
            shared.cond.notify(1),
            Ok(0),
            "a timed-out waiter stayed queued"
        );
    }
    shared.cond.lock.release(&mut gil).unwrap();
}

/// `ThreadState::interrupt` ends a waiter's untimed wait: `wait` raises
/// `KeyboardInterrupt` with the user's lock held again (Python's
/// `finally`) and no waiter left queued; the condition still works.
///
/// Seen to fail: with `wait` returning the interrupt before taking the
/// user's lock back → "interrupted without the lock".
#[test]
fn an_interrupt_ends_the_wait_holding_the_users_lock() {
    let shared = shared();
    let (tx, rx) = std::sync::mpsc::channel();
    let interrupted = {
        let shared = Arc::clone(&shared);
        spawn(move || {
            let mut gil = shared.gil.acquire();
            tx.send(shared.gil.current_thread_state()).unwrap();
            shared.cond.lock.acquire(&mut gil);
            let result = shared.cond.wait(&mut gil, None);
            assert!(shared.cond.lock.is_owned(), "interrupted without the lock");
            shared.cond.lock.release(&mut gil).unwrap();
            result
        })
    };
    let state = rx.recv_timeout(BOUND).unwrap();
    wait_until_queued(&state);
    state.interrupt();
    assert_eq!(interrupted.join(), Err(PyErr::KeyboardInterrupt));

    let mut gil = shared.gil.acquire();
    shared.cond.lock.acquire(&mut gil);
    assert_eq!(
        shared.cond.notify_all(),
        Ok(0),
        "the interrupted waiter stayed queued"
    );
    shared.cond.lock.release(&mut gil).unwrap();
    drop(gil);
    let woken = Arc::new(AtomicUsize::new(0));
    let next = waiter(&shared, &woken);
    let mut gil = shared.gil.acquire();
    shared.cond.lock.acquire(&mut gil);
    shared.ready.store(1, Ordering::Relaxed);
    assert_eq!(shared.cond.notify(1), Ok(1));
    shared.cond.lock.release(&mut gil).unwrap();
    drop(gil);
    assert_eq!(next.join(), 0);
}

/// The race CPython gets wrong: a `notify` picks a waiter whose wait then
/// ends without the wake-up (here an interrupt, delivered while the
/// notifier holds the user's lock, so the waiter cannot return before the
/// notify). The notification is not lost: the interrupted waiter hands it
/// on, and the other waiter wakes.
///
/// Seen to fail: with the hand-on removed (the interrupted waiter just
/// raises) → the second waiter never woke ("timed out waiting until the
/// second waiter wakes").
#[test]
fn a_notification_that_meets_an_interrupt_is_handed_on() {
    let shared = shared();
    let (tx, rx) = std::sync::mpsc::channel();
    let first = {
        let shared = Arc::clone(&shared);
        spawn(move || {
            let mut gil = shared.gil.acquire();
            tx.send(shared.gil.current_thread_state()).unwrap();
            shared.cond.lock.acquire(&mut gil);
            let result = shared.cond.wait(&mut gil, None);
            shared.cond.lock.release(&mut gil).unwrap();
            result
        })
    };
    let first_state = rx.recv_timeout(BOUND).unwrap();
    wait_until_queued(&first_state);
    let woken = Arc::new(AtomicUsize::new(0));
    let second = waiter(&shared, &woken);

    let mut gil = shared.gil.acquire();
    shared.cond.lock.acquire(&mut gil);
    shared.ready.store(1, Ordering::Relaxed);
    first_state.interrupt(); // it cannot return: the user's lock is held here
    assert_eq!(
        shared.cond.notify(1),
        Ok(1),
        "the oldest waiter, being interrupted"
    );
    shared.cond.lock.release(&mut gil).unwrap();
    drop(gil);
    // The interrupt woke the first waiter before the notify released its
    // lock: it raises, and the second one wakes instead.
    wait_until("the second waiter wakes", || {
        woken.load(Ordering::Relaxed) == 1
    });
    assert_eq!(second.join(), 0);
    assert_eq!(first.join(), Err(PyErr::KeyboardInterrupt));
}
