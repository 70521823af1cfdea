#![cfg(loom)]
//! Models written as a user of gilock writes them (only the public API):
//! the README's loom recipe, and every Python-API primitive and the `Gil`
//! kept in a global, as a user's code may keep them.
//!
//! Under `--cfg loom` the constructors of `Lock`, `RLock`, `Condition`,
//! `Semaphore`, `BoundedSemaphore`, `Event`, `Barrier` and `Gil` are not
//! `const` (loom's atomics are objects of one execution, created inside
//! it), so a plain `static` of them does not compile there. A global goes
//! in a `loom::lazy_static!`, which loom creates anew in each execution and
//! drops at its end. (`FairMutex` and `lock_api::Condvar<RawCondition>`
//! can be plain statics: see `statics.rs`.)
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release --test user_statics`.

use gilock::{Barrier, BoundedSemaphore, Condition, Event, Gil, Lock, RLock, Semaphore};
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// The README's recipe: a worker sets an `Event` inside a `Lock`'s
/// critical section while the main thread waits for the event at most 1 s;
/// a model timer (loom has no clock) lets that timeout fire at any point.
/// Whichever wins, a `true` means the event was set, and at the end the
/// lock is free. Some executions time out and some see the event: the
/// model explores both.
///
/// Mutation: `Event::wait_timeout` returned `true` however its wait ended
/// (`|| true` on its result) → "woken without the event set", in an
/// execution where the timer fired before the worker ran.
#[test]
fn a_timed_wait_sees_the_event_or_times_out() {
    static TIMED_OUT: AtomicUsize = AtomicUsize::new(0);
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        let shared = Arc::new((Lock::new(), Event::new()));
        let timer = gilock::model::Timer::spawn(1);
        let worker = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (lock, event) = &*shared;
                lock.acquire();
                event.set();
                lock.release().unwrap();
            })
        };
        let (lock, event) = &*shared;
        if event.wait_timeout(Duration::from_secs(1)) {
            assert!(event.is_set(), "woken without the event set");
            SEEN.fetch_add(1, Relaxed);
        } else {
            TIMED_OUT.fetch_add(1, Relaxed);
        }
        worker.join().unwrap();
        assert!(event.is_set());
        assert!(!lock.locked());
        assert!(timer.join() <= 1);
    });
    assert!(TIMED_OUT.load(Relaxed) > 0, "no execution timed out");
    assert!(SEEN.load(Relaxed) > 0, "no execution saw the event");
}

loom::lazy_static! {
    static ref LOCK: Lock = Lock::new();
    static ref RLOCK: RLock = RLock::new();
    static ref COND: Condition = Condition::new();
    static ref SEM: Semaphore = Semaphore::new(1);
    static ref BOUNDED: BoundedSemaphore = BoundedSemaphore::new(1);
    static ref EVENT: Event = Event::new();
    static ref BARRIER: Barrier = Barrier::new(2);
    static ref GIL: Gil = Gil::new();
}

/// Every primitive in a `loom::lazy_static`, across all the executions of
/// a model: each execution finds them as new (unlocked, unset, every
/// permit free, nobody waiting), although the execution before left them
/// taken, set and drained; meanwhile they work between two threads (a
/// barrier round, a handoff through the `Gil`, a condition wait, a
/// permit passed on).
///
/// Mutation: kept the primitives in `std::sync::LazyLock`s instead (one
/// set of primitives for the whole test, as a plain `static` would be) →
/// the second execution panicked at its first use of `LOCK`: "index out
/// of bounds: the len is 0 but the index is 1" (the loom objects it was
/// built of belonged to the first execution).
#[test]
fn every_primitive_in_a_lazy_static_starts_fresh() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        EXECUTIONS.fetch_add(1, Relaxed);
        assert!(!LOCK.locked(), "a new execution found LOCK locked");
        assert_eq!(RLOCK.recursion_count(), 0);
        assert!(!RLOCK.locked());
        assert_eq!(COND.notify_all(), 0);
        assert_eq!(SEM.available_permits(), 1);
        assert_eq!(BOUNDED.available_permits(), 1);
        assert!(!EVENT.is_set());
        assert_eq!(BARRIER.n_waiting(), 0);
        assert!(!GIL.is_locked());
        assert!(
            GIL.thread_states().is_empty(),
            "a new execution found old threads"
        );

        SEM.acquire(); // the one permit: the other thread waits for the next
        let other = thread::spawn(|| {
            let index = BARRIER.wait().unwrap();
            let guard = GIL.acquire();
            drop(guard);
            SEM.acquire(); // the permit the main thread passes on
            let _level = RLOCK.lock();
            COND.notify_all();
            index
        });
        let index = BARRIER.wait().unwrap();
        {
            let mut guard = RLOCK.lock();
            SEM.release(1);
            // Woken by the other thread's notify: it needs the RLock
            // that this wait releases.
            COND.wait(&mut guard);
        }
        assert_eq!(index + other.join().unwrap(), 1, "one index 0, one 1");

        // Leave everything taken, set or drained for the next execution
        // (the other thread took the semaphore's permit).
        LOCK.acquire();
        RLOCK.acquire();
        assert!(BOUNDED.try_acquire());
        EVENT.set();
        // (The Gil keeps the two threads' states listed: `thread_states`.)
    });
    assert!(EXECUTIONS.load(Relaxed) > 1);
}
