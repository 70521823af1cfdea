//! `ReentrantMutex<T>`: parking_lot's remutex tests (smoke, is_mutex,
//! trylock_works, debug, bump) adapted to bounded joins and to the no-std
//! build, and what a user of a re-entrant mutex with data relies on beyond
//! them: exclusion between threads with nested levels, a panic releasing
//! every level, `unlocked`, `map`, and use in a `static`.

mod common;

use common::spawn;
use gilock::{MappedReentrantMutexGuard, ReentrantMutex, ReentrantMutexGuard};
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::mpsc;

/// Nested locks on one thread; run on a bounded thread, so that a broken
/// re-entry fails the test instead of hanging it.
#[test]
fn smoke() {
    spawn(|| {
        common::setup();
        let m = ReentrantMutex::new(2);
        {
            let a = m.lock();
            {
                let b = m.lock();
                {
                    let c = m.lock();
                    assert_eq!(*c, 2);
                }
                assert_eq!(*b, 2);
            }
            assert_eq!(*a, 2);
        }
        assert!(!m.is_locked());
    })
    .join();
}

/// parking_lot's `is_mutex`: the child's lock waits until the parent has
/// released its outer level, after 100 nested increments.
#[test]
fn is_mutex() {
    spawn(|| {
        common::setup();
        let m = Arc::new(ReentrantMutex::new(RefCell::new(0)));
        let m2 = Arc::clone(&m);
        let lock = m.lock();
        let child = spawn(move || {
            common::setup();
            let lock = m2.lock();
            *lock.borrow()
        });
        for i in 0..100 {
            let lock = m.lock();
            *lock.borrow_mut() += i;
        }
        drop(lock);
        assert_eq!(child.join(), 4950);
    })
    .join();
}

#[test]
fn trylock_works() {
    common::setup();
    let m = Arc::new(ReentrantMutex::new(()));
    let m2 = Arc::clone(&m);
    let _lock = m.try_lock().unwrap();
    let _lock2 = m.try_lock().unwrap();
    let other = spawn(move || {
        common::setup();
        m2.try_lock().is_none()
    });
    assert!(other.join(), "another thread took a held ReentrantMutex");
    let _lock3 = m.try_lock().unwrap();
}

#[test]
fn debug_shows_the_data() {
    common::setup();
    let mutex = ReentrantMutex::new(vec![0u8, 10]);
    assert_eq!(format!("{mutex:?}"), "ReentrantMutex { data: [0, 10] }");
}

/// parking_lot's `test_reentrant_mutex_bump`: `bump` lets a waiting thread
/// take the lock; without a waiter it returns at once, still holding it.
#[test]
fn bump_lets_a_waiter_run() {
    common::setup();
    let mutex = Arc::new(ReentrantMutex::new(Cell::new(0)));
    let mutex2 = Arc::clone(&mutex);
    let mut guard = mutex.lock();
    ReentrantMutexGuard::bump(&mut guard);
    assert!(mutex.is_owned_by_current_thread(), "bump without a waiter");
    let (tx, rx) = mpsc::channel();
    let waiter = spawn(move || {
        common::setup();
        let guard = mutex2.lock();
        guard.set(guard.get() + 1);
        tx.send(()).unwrap();
    });
    let start = std::time::Instant::now();
    while rx.try_recv().is_err() {
        assert!(
            start.elapsed() < common::BOUND,
            "bump never let the waiter in"
        );
        ReentrantMutexGuard::bump(&mut guard);
    }
    assert!(mutex.is_owned_by_current_thread());
    assert_eq!(guard.get(), 1, "the waiter ran while we were bumped");
    drop(guard);
    waiter.join();
}

/// Threads that each lock three levels deep around a non-atomic
/// read-modify-write lose no update: the outer level excludes the others
/// until the innermost is gone.
#[test]
fn nested_levels_exclude_other_threads() {
    common::setup();
    const THREADS: usize = 4;
    // Without std every waiter spins: four spinning threads on two cores
    // take milliseconds per handoff, so fewer rounds keep the test short.
    const ROUNDS: usize = if cfg!(feature = "std") { 500 } else { 50 };
    let m = Arc::new(ReentrantMutex::new(Cell::new(0usize)));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let m = Arc::clone(&m);
            spawn(move || {
                common::setup();
                for _ in 0..ROUNDS {
                    let a = m.lock();
                    let seen = a.get();
                    let b = m.lock();
                    let c = m.try_lock().expect("the owner re-enters");
                    std::thread::yield_now();
                    c.set(seen + 1);
                    drop(c);
                    drop(b);
                    assert_eq!(a.get(), seen + 1, "another thread ran inside our levels");
                }
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    assert_eq!(m.lock().get(), THREADS * ROUNDS);
}

/// A panic three levels deep releases all three while it unwinds, so the
/// next thread gets the lock and the data as it was left.
#[test]
fn a_panic_releases_every_level() {
    common::setup();
    let m = Arc::new(ReentrantMutex::new(RefCell::new(Vec::new())));
    let m2 = Arc::clone(&m);
    let outcome = spawn(move || {
        common::setup();
        let a = m2.lock();
        let b = m2.lock();
        let _c = m2.lock();
        a.borrow_mut().push(1);
        b.borrow_mut().push(2);
        panic!("inside three levels");
    })
    .outcome();
    assert!(outcome.is_err());
    assert!(!m.is_locked(), "the unwinding guards left a level held");
    let m3 = Arc::clone(&m);
    let seen = spawn(move || {
        common::setup();
        m3.lock().borrow().clone()
    })
    .join();
    assert_eq!(seen, [1, 2]);
}

/// `ReentrantMutexGuard::unlocked` releases the level (the only one held)
/// so another thread can take the lock, and takes it back after.
#[test]
fn unlocked_lets_another_thread_in() {
    common::setup();
    let m = Arc::new(ReentrantMutex::new(Cell::new(0)));
    let mut guard = m.lock();
    let m2 = Arc::clone(&m);
    let other_ran = ReentrantMutexGuard::unlocked(&mut guard, || {
        spawn(move || {
            common::setup();
            let g = m2.lock();
            g.set(g.get() + 1);
            true
        })
        .join()
    });
    assert!(other_ran);
    assert!(m.is_owned_by_current_thread());
    assert_eq!(guard.get(), 1);
}

/// A mapped guard still holds its level; `try_map` gives the guard back
/// when the closure declines.
#[test]
fn mapped_guards_hold_the_level() {
    common::setup();
    let m = ReentrantMutex::new((RefCell::new(String::from("log")), 7u8));
    let guard = m.lock();
    let guard = match ReentrantMutexGuard::try_map(guard, |_| None::<&u8>) {
        Ok(_) => unreachable!("the closure declined"),
        Err(guard) => guard,
    };
    let text: MappedReentrantMutexGuard<'_, RefCell<String>> =
        ReentrantMutexGuard::map(guard, |pair| &pair.0);
    text.borrow_mut().push_str(": one");
    assert!(m.is_owned_by_current_thread());
    let number = MappedReentrantMutexGuard::map(text, |_| &7u8);
    assert_eq!(*number, 7);
    drop(number);
    assert!(!m.is_locked());
    assert_eq!(*m.lock().0.borrow(), "log: one");
}

/// `ReentrantMutex::new` is `const`, so a `static` logger needs no lazy
/// initialisation. A record is written in two parts, the second by a helper
/// that locks again: the outer level keeps other threads out in between, so
/// every header is followed by its own body.
#[test]
fn a_static_logger_keeps_records_whole() {
    common::setup();
    static LOG: ReentrantMutex<RefCell<Vec<String>>> =
        ReentrantMutex::new(RefCell::new(Vec::new()));
    fn body(text: String) {
        LOG.lock().borrow_mut().push(text);
    }
    fn record(thread: usize, i: usize) {
        let guard = LOG.lock();
        guard.borrow_mut().push(format!("[{thread}]"));
        std::thread::yield_now();
        body(format!("[{thread}] line {i}"));
    }
    let threads: Vec<_> = (0..3)
        .map(|t| {
            spawn(move || {
                common::setup();
                for i in 0..50 {
                    record(t, i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    let lines = LOG.lock().borrow().clone();
    assert_eq!(lines.len(), 3 * 50 * 2);
    for pair in lines.chunks(2) {
        assert!(
            pair[1].starts_with(&format!("{} ", pair[0])),
            "a record was split by another thread: {pair:?}"
        );
    }
}

/// With `std`, a timed lock by another thread gives up while the owner
/// holds any level and succeeds once every level is released.
#[cfg(feature = "std")]
#[test]
fn try_lock_for_gives_up_while_held() {
    use std::time::Duration;
    let m = Arc::new(ReentrantMutex::new(()));
    let outer = m.lock();
    let inner = m.try_lock_for(Duration::ZERO).expect("the owner re-enters");
    drop(outer);
    let m2 = Arc::clone(&m);
    let timed_out = spawn(move || m2.try_lock_for(Duration::from_millis(2)).is_none()).join();
    assert!(timed_out, "took the lock while the inner level was held");
    drop(inner);
    let m2 = Arc::clone(&m);
    let took = spawn(move || m2.try_lock_for(common::BOUND).is_some()).join();
    assert!(took);
}
