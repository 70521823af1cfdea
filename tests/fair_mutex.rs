//! Integration tests of `FairMutex` / `RawFairMutex` against the public API:
//! exclusion, `try_lock`, timed locking, fair unlock and `bump`, handoff
//! after a drop request, bounded waiting, unwinding, the switch interval,
//! `Debug` and size.
//!
//! They also run on the spinning backend
//! (`cargo test --no-default-features --test fair_mutex`), with a clock
//! installed through `gilock::set_clock`; the timed-locking tests need
//! `lock_api::RawMutexTimed`, which exists only with `std`, and are compiled
//! only with that feature; the `unlock_fair` / `bump` handoff-order tests
//! need to see a waiter asleep in the queue (Linux `/proc`, std backend) and
//! are compiled only there.

use gilock::{DEFAULT_SWITCH_INTERVAL, FairMutex, FairMutexExt, FairMutexGuard, RawFairMutex};
use lock_api::RawMutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

mod common;
/// Upper bound for anything that should happen "soon": generous, so a noisy
/// 2-core machine never makes a test fail, yet a deadlock still does.
use common::BOUND as SOON;
use common::{Bounded, setup, spawn, wait_until};

fn raw<T>(m: &FairMutex<T>) -> &RawFairMutex {
    // SAFETY: only state queries (`Debug`, `is_drop_requested`) are made on
    // the raw mutex; it is never locked or unlocked behind the guard's back.
    unsafe { m.raw() }
}

/// Whether a thread is parked on the mutex, as its `Debug` output tells.
#[cfg(feature = "std")]
fn has_waiters<T>(m: &FairMutex<T>) -> bool {
    format!("{:?}", raw(m)).contains("waiters: true")
}

#[test]
fn mutual_exclusion_8_threads() {
    setup();
    const THREADS: usize = 8;
    // Fewer under Miri, which interprets every step: the same paths, in seconds.
    const ROUNDS: u64 = if cfg!(miri) { 100 } else { 10_000 };
    let m = Arc::new(FairMutex::new(0u64));
    let inside = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (m, inside, start) = (m.clone(), inside.clone(), start.clone());
            spawn(move || {
                start.wait();
                for _ in 0..ROUNDS {
                    let mut g = m.lock();
                    assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0, "two holders");
                    // A read-modify-write in two steps loses updates if
                    // another thread is inside at the same time.
                    let seen = *g;
                    *g = std::hint::black_box(seen) + 1;
                    inside.fetch_sub(1, Ordering::Relaxed);
                    drop(g);
                }
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    assert_eq!(*m.lock(), THREADS as u64 * ROUNDS);
    assert!(!m.is_locked());
}

#[test]
fn try_lock_fails_while_held_and_succeeds_after() {
    setup();
    let m = Arc::new(FairMutex::new(7));
    let g = m.lock();
    assert!(m.try_lock().is_none(), "same thread");
    let other = {
        let m = m.clone();
        spawn(move || m.try_lock().is_none())
    };
    assert!(other.join(), "another thread");
    drop(g);
    let other = {
        let m = m.clone();
        spawn(move || m.try_lock().map(|g| *g))
    };
    assert_eq!(other.join(), Some(7));
    assert_eq!(m.try_lock().map(|g| *g), Some(7));
}

#[test]
fn guards_may_be_released_by_another_thread() {
    setup();
    // Ownership is not tied to a thread (`GuardSend`).
    static M: FairMutex<u32> = FairMutex::new(0);
    let g = M.lock();
    let t = spawn(move || drop(g));
    t.join();
    assert!(M.try_lock().is_some());
}

#[cfg(feature = "std")]
mod timed {
    use super::*;

    #[test]
    fn try_lock_for_never_returns_early() {
        setup();
        // A 1 ms interval makes the longer waits pass through the overdue
        // state (re-park with a drop request) before their deadline.
        let m = FairMutex::from_raw(
            RawFairMutex::with_switch_interval(Duration::from_millis(1)),
            0,
        );
        let g = m.lock();
        for ms in [1, 3, 10, 30] {
            let timeout = Duration::from_millis(ms);
            let start = Instant::now();
            assert!(m.try_lock_for(timeout).is_none());
            let elapsed = start.elapsed();
            assert!(
                elapsed >= timeout,
                "returned after {elapsed:?} < {timeout:?}"
            );
            assert!(elapsed < SOON);

            let deadline = Instant::now() + timeout;
            assert!(m.try_lock_until(deadline).is_none());
            assert!(Instant::now() >= deadline);
        }
        // The timed-out waiter left nothing behind.
        assert_eq!(
            format!("{:?}", raw(&m)),
            "RawFairMutex { locked: true, waiters: false, drop_requested: false, switch_interval: 1ms }"
        );
        drop(g);
        assert!(m.try_lock().is_some());
    }

    #[test]
    fn try_lock_for_succeeds_when_released_meanwhile() {
        setup();
        let m = Arc::new(FairMutex::new(0));
        let g = m.lock();
        let waiter = {
            let m = m.clone();
            spawn(move || {
                let start = Instant::now();
                let got = m.try_lock_for(Duration::from_secs(60)).map(|mut g| {
                    *g += 1;
                });
                (got.is_some(), start.elapsed())
            })
        };
        wait_until("the waiter parks", || has_waiters(&m));
        drop(g);
        let (got, waited) = waiter.join();
        assert!(got);
        assert!(waited < Duration::from_secs(30), "waited {waited:?}");
        assert_eq!(*m.lock(), 1);
    }

    #[test]
    fn zero_timeout() {
        setup();
        let m = FairMutex::new(());
        {
            let _g = m.try_lock_for(Duration::ZERO).expect("free mutex");
            let start = Instant::now();
            assert!(m.try_lock_for(Duration::ZERO).is_none());
            assert!(m.try_lock_until(Instant::now()).is_none());
            assert!(start.elapsed() < SOON);
        }
        assert!(
            m.try_lock_until(Instant::now()).is_some(),
            "past deadline, free mutex"
        );
    }

    #[test]
    fn huge_timeouts_wait_without_overflow() {
        setup();
        // A 1 µs interval sends the waiter through the overdue re-park with
        // its (unrepresentable) deadline too.
        for interval in [DEFAULT_SWITCH_INTERVAL, Duration::ZERO] {
            for timeout in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
                let m = Arc::new(FairMutex::from_raw(
                    RawFairMutex::with_switch_interval(interval),
                    0,
                ));
                let g = m.lock();
                let waiter = {
                    let m = m.clone();
                    spawn(move || m.try_lock_for(timeout).map(|mut g| *g += 1).is_some())
                };
                wait_until("the waiter parks", || has_waiters(&m));
                drop(g);
                assert!(waiter.join(), "a huge timeout is a wait, not a failure");
                assert_eq!(*m.lock(), 1);
            }
        }
    }

    #[test]
    fn timed_out_waiter_does_not_strand_others() {
        setup();
        let m = Arc::new(FairMutex::from_raw(
            RawFairMutex::with_switch_interval(Duration::from_millis(1)),
            Vec::new(),
        ));
        let g = m.lock();
        let patient = {
            let m = m.clone();
            spawn(move || m.lock().push("patient"))
        };
        wait_until("the patient waiter parks", || has_waiters(&m));
        let timed = {
            let m = m.clone();
            spawn(move || m.try_lock_for(Duration::from_millis(30)).is_none())
        };
        assert!(timed.join(), "the timed waiter must time out");
        // The patient waiter is still queued and overdue by now.
        wait_until("a drop request", || raw(&m).is_drop_requested());
        drop(g);
        patient.join();
        assert_eq!(*m.lock(), ["patient"]);
        assert_eq!(
            format!("{:?}", raw(&m)),
            "RawFairMutex { locked: false, waiters: false, drop_requested: false, switch_interval: 1ms }"
        );
    }
}

/// Starts a thread that takes `m` and records `name` in it.
fn start_recorder(m: &Arc<FairMutex<Vec<&'static str>>>, name: &'static str) -> Bounded<()> {
    let m = m.clone();
    spawn(move || m.lock().push(name))
}

/// Starts a thread that takes `m` and records `name`, and waits until it is
/// asleep in the mutex's queue.
///
/// The `waiters` bit goes up just *before* a thread joins the queue, and an
/// unlock in that window rightly finds nobody to hand over to; so the thread
/// is watched until the kernel reports it sleeping (Linux `/proc`), which with
/// the bit up means parked. The spinning backend never sleeps, hence std only.
#[cfg(all(feature = "std", target_os = "linux"))]
fn park_recorder(m: &Arc<FairMutex<Vec<&'static str>>>, name: &'static str) -> Bounded<()> {
    use std::path::PathBuf;
    let (stat_tx, stat) = mpsc::channel();
    let t = {
        let m = m.clone();
        spawn(move || {
            let me = std::fs::read_link("/proc/thread-self").expect("Linux /proc");
            stat_tx
                .send(PathBuf::from("/proc").join(me).join("stat"))
                .unwrap();
            m.lock().push(name);
        })
    };
    let stat = stat.recv_timeout(SOON).expect("the recorder starts");
    let asleep = || {
        let text = std::fs::read_to_string(&stat).expect("the recorder is alive");
        // "pid (comm) S ...": the state follows the last ')'.
        let state = text[text.rfind(')').expect("stat format") + 1..].trim_start();
        state.starts_with('S')
    };
    wait_until("the recorder parks", || has_waiters(m) && asleep());
    t
}

#[cfg(all(feature = "std", target_os = "linux"))]
// Not under Miri: it reads /proc to see that the waiter is parked, which Miri's isolation does not allow
#[cfg(not(miri))]
#[test]
fn unlock_fair_hands_off_to_the_waiter() {
    setup();
    for _ in 0..20 {
        let m = Arc::new(FairMutex::new(Vec::new()));
        let g = m.lock();
        let waiter = park_recorder(&m, "waiter");
        FairMutexGuard::unlock_fair(g);
        // The lock already belongs to the waiter: re-taking it at once must
        // queue behind it.
        m.lock().push("unlocker");
        waiter.join();
        assert_eq!(*m.lock(), ["waiter", "unlocker"]);
    }
}

#[cfg(all(feature = "std", target_os = "linux"))]
// Not under Miri: it reads /proc to see that the waiter is parked, which Miri's isolation does not allow
#[cfg(not(miri))]
#[test]
fn bump_hands_off_to_the_waiter_and_takes_the_lock_back() {
    setup();
    for _ in 0..20 {
        let m = Arc::new(FairMutex::new(Vec::new()));
        let mut g = m.lock();
        let waiter = park_recorder(&m, "waiter");
        FairMutexGuard::bump(&mut g);
        g.push("bumper");
        drop(g);
        waiter.join();
        assert_eq!(*m.lock(), ["waiter", "bumper"]);
    }
}

#[test]
fn bump_without_waiters_keeps_the_lock() {
    setup();
    let m = Arc::new(FairMutex::new(1));
    let mut g = m.lock();
    FairMutexGuard::bump(&mut g);
    *g += 1;
    let probe = {
        let m = m.clone();
        spawn(move || m.try_lock().is_none())
    };
    assert!(probe.join(), "still held after a bump with nobody waiting");
    drop(g);
    assert_eq!(*m.lock(), 2);
}

#[test]
fn drop_request_hands_off_to_the_oldest_waiter() {
    setup();
    let interval = Duration::from_millis(1);
    for _ in 0..5 {
        let m = Arc::new(FairMutex::from_raw(
            RawFairMutex::with_switch_interval(interval),
            Vec::new(),
        ));
        let g = m.lock();
        let first = start_recorder(&m, "first");
        wait_until("the first waiter is overdue", || {
            raw(&m).is_drop_requested()
        });
        let (ready_tx, ready) = mpsc::channel();
        let second = {
            let m = m.clone();
            spawn(move || {
                ready_tx.send(()).unwrap();
                m.lock().push("second");
            })
        };
        ready.recv_timeout(SOON).unwrap();
        // Time for the second waiter to park and run out its interval too;
        // it is younger, so it must still come after the first.
        thread::sleep(Duration::from_millis(100));
        assert!(raw(&m).is_drop_requested());
        // A plain unlock: the drop request makes it a handoff, and the
        // unlocker, a newcomer now, queues behind both.
        drop(g);
        m.lock().push("unlocker");
        first.join();
        second.join();
        assert_eq!(*m.lock(), ["first", "second", "unlocker"]);
        assert!(!raw(&m).is_drop_requested());
    }
}

/// Runs `holder` in a thread until the returned flag is set, then measures
/// how long each of `rounds` lock calls from this thread takes.
fn longest_wait_behind(
    m: &Arc<FairMutex<u64>>,
    rounds: usize,
    holder: impl FnOnce(&FairMutex<u64>, &AtomicBool) + Send + 'static,
) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Barrier::new(2));
    let h = {
        let (m, stop, started) = (m.clone(), stop.clone(), started.clone());
        spawn(move || {
            started.wait();
            holder(&m, &stop);
        })
    };
    started.wait();
    let mut longest = Duration::ZERO;
    for _ in 0..rounds {
        let start = Instant::now();
        let mut g = m.lock();
        longest = longest.max(start.elapsed());
        *g += 1;
        drop(g);
        // Give the holder a moment to get back into its loop.
        thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    h.join();
    longest
}

#[test]
fn waiter_gets_in_behind_a_tight_relocking_loop() {
    setup();
    let m = Arc::new(FairMutex::from_raw(
        RawFairMutex::with_switch_interval(Duration::from_millis(5)),
        0,
    ));
    let longest = longest_wait_behind(&m, 20, |m, stop| {
        while !stop.load(Ordering::Relaxed) {
            let mut g = m.lock();
            for _ in 0..100 {
                *g = std::hint::black_box(*g);
            }
            drop(g);
        }
    });
    assert!(
        longest < Duration::from_secs(2),
        "a waiter waited {longest:?}"
    );
}

#[test]
fn waiter_gets_in_when_the_holder_bumps_on_drop_requests() {
    setup();
    let m = Arc::new(FairMutex::from_raw(
        RawFairMutex::with_switch_interval(Duration::from_millis(5)),
        0,
    ));
    // The interpreter pattern: hold the lock, poll the drop request at
    // checkpoints, bump when it is up.
    let longest = longest_wait_behind(&m, 20, |m, stop| {
        let mut g = m.lock();
        while !stop.load(Ordering::Relaxed) {
            *g = std::hint::black_box(*g);
            if raw(m).is_drop_requested() {
                FairMutexGuard::bump(&mut g);
            }
        }
    });
    assert!(
        longest < Duration::from_secs(2),
        "a waiter waited {longest:?}"
    );
}

#[test]
fn panic_in_critical_section_releases_the_lock() {
    setup();
    let m = Arc::new(FairMutex::new(0));
    let t = {
        let m = m.clone();
        thread::spawn(move || {
            let mut g = m.lock();
            *g += 1;
            panic!("inside the critical section");
        })
    };
    assert!(t.join().is_err());
    assert_eq!(*m.try_lock().expect("released by the unwinding guard"), 1);

    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = m.lock();
        panic!("again");
    }));
    assert!(caught.is_err());
    assert!(!m.is_locked());
    // No poisoning: the mutex is simply usable.
    *m.lock() += 1;
    assert_eq!(*m.lock(), 2);
}

#[test]
fn switch_interval_set_get_and_rounding() {
    setup();
    assert_eq!(DEFAULT_SWITCH_INTERVAL, Duration::from_millis(5));
    assert_eq!(
        RawFairMutex::new().switch_interval(),
        DEFAULT_SWITCH_INTERVAL
    );
    assert_eq!(
        RawFairMutex::default().switch_interval(),
        DEFAULT_SWITCH_INTERVAL
    );
    let init: RawFairMutex = <RawFairMutex as RawMutex>::INIT;
    assert_eq!(init.switch_interval(), DEFAULT_SWITCH_INTERVAL);

    let r = RawFairMutex::with_switch_interval(Duration::ZERO);
    assert_eq!(
        r.switch_interval(),
        Duration::from_micros(1),
        "zero is clamped"
    );
    r.set_switch_interval(Duration::from_millis(3));
    assert_eq!(r.switch_interval(), Duration::from_millis(3));
    r.set_switch_interval(Duration::ZERO);
    assert_eq!(r.switch_interval(), Duration::from_micros(1));
    r.set_switch_interval(Duration::from_nanos(2_500));
    assert_eq!(
        r.switch_interval(),
        Duration::from_micros(2),
        "whole microseconds"
    );
    r.set_switch_interval(Duration::MAX);
    assert_eq!(
        r.switch_interval(),
        Duration::from_micros(u64::from(u32::MAX)),
        "capped at about 71 minutes"
    );

    // Changing the interval while the mutex is in use is allowed.
    let m = FairMutex::from_raw(
        RawFairMutex::with_switch_interval(Duration::from_millis(7)),
        1,
    );
    let g = m.lock();
    raw(&m).set_switch_interval(Duration::from_millis(2));
    assert_eq!(raw(&m).switch_interval(), Duration::from_millis(2));
    drop(g);
}

#[test]
fn constructors_are_const() {
    static RAW: RawFairMutex = RawFairMutex::new();
    static SLOW: RawFairMutex = RawFairMutex::with_switch_interval(Duration::from_secs(1));
    static DATA: FairMutex<Vec<u8>> = FairMutex::new(Vec::new());
    assert!(!RAW.is_locked());
    assert_eq!(SLOW.switch_interval(), Duration::from_secs(1));
    DATA.lock().push(1);
    assert_eq!(*DATA.lock(), [1]);
}

#[test]
fn debug_output() {
    setup();
    let m = FairMutex::new(42);
    assert_eq!(format!("{m:?}"), "Mutex { data: 42 }");
    assert_eq!(
        format!("{:?}", raw(&m)),
        "RawFairMutex { locked: false, waiters: false, drop_requested: false, switch_interval: 5ms }"
    );
    let g = m.lock();
    assert_eq!(format!("{g:?}"), "42");
    assert_eq!(format!("{m:?}"), "Mutex { data: <locked> }");
    assert!(format!("{:?}", raw(&m)).starts_with("RawFairMutex { locked: true,"));
}

#[test]
fn raw_mutex_is_at_most_8_bytes() {
    assert!(std::mem::size_of::<RawFairMutex>() <= 8);
    assert!(std::mem::size_of::<FairMutex<()>>() <= 8);
}

/// `FairMutexExt` reaches the interval and the drop request of a
/// `FairMutex` without `unsafe`: the interval set through it is the one
/// its waiters use, and a holder polling it sees the request of a waiter
/// that outlasted the interval, then hands over with `bump`.
/// Broken variant checked: `FairMutexExt::is_drop_requested` returning
/// `false` → "timed out waiting until the waiter is overdue".
#[test]
fn the_extension_trait_sets_the_interval_and_shows_the_drop_request() {
    setup();
    let mutex = Arc::new(FairMutex::new(0u32));
    mutex.set_switch_interval(Duration::from_micros(1));
    assert_eq!(mutex.switch_interval(), Duration::from_micros(1));
    let mut guard = mutex.lock();
    assert!(!mutex.is_drop_requested(), "nobody waits");
    let waiter = {
        let mutex = mutex.clone();
        spawn(move || *mutex.lock() += 1)
    };
    // The waiter parks for one interval (1 µs), then asks.
    wait_until("the waiter is overdue", || {
        FairMutexGuard::mutex(&guard).is_drop_requested()
    });
    FairMutexGuard::bump(&mut guard);
    // `bump` handed the lock over and took it back after the waiter.
    assert_eq!(*guard, 1);
    assert!(!mutex.is_drop_requested());
    drop(guard);
    waiter.join();
}
