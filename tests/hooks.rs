//! Event hooks and statistics: the order of each thread's events under
//! contention, unregistering while threads run, and counters that agree with
//! the events and with each other.
#![cfg(feature = "std")]

mod common;

use common::{spawn_named, wait_until};
use gilock::{Gil, GilEvent, GilEventKind, GilHook, WaitHistogram};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

type Log = Arc<Mutex<Vec<(u64, GilEventKind, Instant)>>>;

fn logging_hook() -> (Log, Arc<GilHook>) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let hook: Arc<GilHook> = Arc::new(move |e: &GilEvent<'_>| {
        sink.lock().unwrap().push((e.thread.ident(), e.kind, e.at));
    });
    (log, hook)
}

/// The kinds of event a logging hook hears while `during` runs: registered
/// before it, unregistered after, so a later acquire is not heard.
fn kinds_heard(gil: &Gil, during: impl FnOnce()) -> Vec<GilEventKind> {
    let (log, hook) = logging_hook();
    gil.set_event_hook(Some(hook));
    during();
    gil.set_event_hook(None);
    drop(gil.acquire()); // not heard
    log.lock().unwrap().iter().map(|e| e.1).collect()
}

/// Checks one thread's events against the documented order
/// `Started (Ready (Resumed Suspended | GaveUp) | Resumed Suspended)* Exited?`
/// for a thread that did not hold the Gil when the hook was registered.
fn check_order(ident: u64, kinds: &[GilEventKind]) {
    #[derive(Debug, PartialEq)]
    enum S {
        New,
        Idle,
        Waiting,
        Holding,
        Gone,
    }
    let mut s = S::New;
    for (i, k) in kinds.iter().enumerate() {
        s = match (s, k) {
            (S::New, GilEventKind::Started) => S::Idle,
            (S::Idle, GilEventKind::Ready) => S::Waiting,
            (S::Idle | S::Waiting, GilEventKind::Resumed) => S::Holding,
            (S::Waiting, GilEventKind::GaveUp) => S::Idle,
            (S::Holding, GilEventKind::Suspended { .. }) => S::Idle,
            (S::Idle, GilEventKind::Exited) => S::Gone,
            (s, k) => panic!(
                "thread {ident}: event {i} is {k:?} in state {s:?}; events: {:?}",
                &kinds[i.saturating_sub(4)..(i + 2).min(kinds.len())]
            ),
        };
    }
}

#[test]
// Not under Miri: it needs forced switches within 150 ms of real time at a
// 0.2 ms interval; Miri's virtual clock and scheduler do not give waiters'
// interval timers that cadence (the event order itself is checked under
// Miri by the other tests of this file).
#[cfg(not(miri))]
fn each_threads_events_come_in_order_under_contention() {
    common::setup();
    const THREADS: usize = 4;
    let gil = Arc::new(Gil::with_switch_interval(Duration::from_micros(200)));
    let (log, hook) = logging_hook();
    assert!(gil.set_event_hook(Some(hook)).is_none());
    assert!(gil.has_event_hook());
    let start = Arc::new(Barrier::new(THREADS));
    let before = gil.stats();
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (gil, start) = (Arc::clone(&gil), Arc::clone(&start));
            spawn_named(Some(&format!("worker-{i}")), move || {
                start.wait();
                let deadline = Instant::now() + Duration::from_millis(150);
                let mut rounds = 0u32;
                while Instant::now() < deadline {
                    rounds += 1;
                    // Every kind of transition: a timed acquire that may
                    // give up, checkpoints that may be forced, a detach, a
                    // yield and the last guard's drop.
                    if let Some(g) = gil.try_acquire_for(Duration::from_micros(50)) {
                        drop(g);
                    }
                    let mut g = gil.acquire();
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_micros(400) {
                        if g.should_yield() {
                            g.checkpoint();
                        }
                    }
                    if rounds.is_multiple_of(3) {
                        g.detach(|| std::thread::sleep(Duration::from_micros(100)));
                    }
                    g.yield_now();
                }
                let me = gil
                    .thread_states()
                    .into_iter()
                    .find(|s| s.name() == std::thread::current().name());
                (format!("worker-{i}"), me.expect("listed").stats())
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
    // `Exited` comes from each thread's thread-local destructor, after its
    // result was sent.
    wait_until("every worker's Exited event", || {
        log.lock()
            .unwrap()
            .iter()
            .filter(|e| e.1 == GilEventKind::Exited)
            .count()
            == THREADS
    });
    gil.set_event_hook(None);
    let after = gil.stats();

    let log = log.lock().unwrap().clone();
    let mut per_thread: HashMap<u64, Vec<GilEventKind>> = HashMap::new();
    for (ident, kind, _) in &log {
        per_thread.entry(*ident).or_default().push(*kind);
    }
    assert_eq!(per_thread.len(), THREADS, "one track per worker");
    let mut forced = 0;
    let mut readies = 0;
    let mut gave_up = 0;
    for (ident, kinds) in &per_thread {
        check_order(*ident, kinds);
        assert_eq!(kinds.last(), Some(&GilEventKind::Exited));
        forced += kinds
            .iter()
            .filter(|k| **k == GilEventKind::Suspended { forced: true })
            .count();
        readies += kinds.iter().filter(|k| **k == GilEventKind::Ready).count();
        gave_up += kinds.iter().filter(|k| **k == GilEventKind::GaveUp).count();
    }
    // The run was contended for real: threads waited and were switched out.
    assert!(readies > 0, "no thread ever waited");
    assert!(
        forced > 0,
        "no forced switch in 150 ms at a 0.2 ms interval"
    );

    // Counters agree with the events: every acquisition is a `Resumed`,
    // every wait that ended with the Gil a `Ready` that was not given up.
    let resumed = log.iter().filter(|e| e.1 == GilEventKind::Resumed).count() as u64;
    assert_eq!(after.acquisitions - before.acquisitions, resumed);
    let waits = after.waits() - before.waits();
    assert_eq!(waits, (readies - gave_up) as u64);
    for (name, stats) in &results {
        assert!(name.starts_with("worker-"));
        assert!(stats.acquisitions > 0);
        assert_eq!(stats.wait_histogram.total(), stats.waits());
    }

    // Timestamps of one thread's events never go backwards.
    for ident in per_thread.keys() {
        let times: Vec<Instant> = log.iter().filter(|e| e.0 == *ident).map(|e| e.2).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }
}

#[test]
fn a_thread_already_holding_sees_started_then_suspended() {
    common::setup();
    let gil = Gil::new();
    let guard = gil.acquire();
    let kinds = kinds_heard(&gil, || {
        drop(guard);
        drop(gil.acquire());
    });
    assert_eq!(
        kinds,
        [
            GilEventKind::Started,
            GilEventKind::Suspended { forced: false },
            GilEventKind::Resumed,
            GilEventKind::Suspended { forced: false },
        ]
    );
}

/// A guard taken inside `detach` and leaked (a `PyGILState_Ensure` with no
/// `PyGILState_Release`) keeps the thread attached: `detach` comes back to a
/// Gil the thread holds already, counts the leaked guard with its own, and
/// tells the hook no second `Resumed` (the inner acquire told it one).
///
/// Mutations (4 December), in `GilGuard::resume`: `inner == 0` → `!=` (a
/// second `Resumed` after the inner one), and `depth - dropped + inner` →
/// `- inner` (no guard left counted, so the outer guard's drop did not
/// leave the Gil to the leaked one).
#[test]
fn a_guard_leaked_inside_detach_keeps_the_thread_attached() {
    common::setup();
    let gil = Arc::new(Gil::new());
    let (log, hook) = logging_hook();
    gil.set_event_hook(Some(hook));
    let (ident, held_after_detach, held_after_drop) = {
        let gil = Arc::clone(&gil);
        spawn_named(None, move || {
            let mut outer = gil.acquire();
            let ident = outer.thread_state().ident();
            outer.detach(|| std::mem::forget(gil.acquire()));
            let held_after_detach = gil.is_held_by_current_thread();
            drop(outer);
            (ident, held_after_detach, gil.is_held_by_current_thread())
        })
        .join()
    };
    gil.set_event_hook(None);
    assert!(held_after_detach);
    assert!(
        held_after_drop,
        "the outer guard's drop let go of the Gil that the leaked guard holds"
    );
    let kinds: Vec<GilEventKind> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.0 == ident && e.1 != GilEventKind::Exited)
        .map(|e| e.1)
        .collect();
    assert_eq!(
        kinds,
        [
            GilEventKind::Started,
            GilEventKind::Resumed,
            GilEventKind::Suspended { forced: false },
            GilEventKind::Resumed,
        ]
    );
}

#[test]
fn a_timed_out_acquire_reports_ready_then_gave_up() {
    common::setup();
    let gil = Arc::new(Gil::new());
    let (log, hook) = logging_hook();
    gil.set_event_hook(Some(hook));
    let guard = gil.acquire();
    let other = Arc::clone(&gil);
    let t = spawn_named(None, move || {
        assert!(other.try_acquire_for(Duration::from_millis(5)).is_none());
    });
    t.join();
    drop(guard);
    gil.set_event_hook(None);
    let log = log.lock().unwrap();
    let others: Vec<_> = {
        let main_ident = log[0].0;
        log.iter()
            .filter(|e| e.0 != main_ident)
            .map(|e| e.1)
            .collect()
    };
    assert_eq!(
        &others[..3],
        [
            GilEventKind::Started,
            GilEventKind::Ready,
            GilEventKind::GaveUp
        ]
    );
}

#[test]
fn unregistering_while_threads_run_stops_the_calls() {
    common::setup();
    const THREADS: usize = 3;
    let gil = Arc::new(Gil::with_switch_interval(Duration::from_micros(200)));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (gil, stop) = (Arc::clone(&gil), Arc::clone(&stop));
            spawn_named(None, move || {
                while !stop.load(Relaxed) {
                    let mut g = gil.acquire();
                    if g.should_yield() {
                        g.checkpoint();
                    }
                    g.yield_now();
                }
            })
        })
        .collect();
    let acquisitions = || gil.stats().acquisitions;
    // Under Miri, fewer rounds and calls: each acquisition is interpreted,
    // and the waits below are bounded in Miri's virtual time.
    let (rounds, calls_seen, go_on) = if cfg!(miri) {
        (4, 10, 20)
    } else {
        (20, 50, 200)
    };
    for round in 0..rounds {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&calls);
        let hook: Arc<GilHook> = Arc::new(move |_: &GilEvent<'_>| {
            counter.fetch_add(1, Relaxed);
        });
        // Every other round replaces the previous hook instead of starting
        // from none.
        if round % 2 == 1 {
            let (_, noop) = logging_hook();
            gil.set_event_hook(Some(noop));
        }
        gil.set_event_hook(Some(hook));
        wait_until("the hook is called", || calls.load(Relaxed) > calls_seen);
        let old = gil.set_event_hook(None).expect("the hook was registered");
        assert!(!gil.has_event_hook());
        // Calls under way when it was removed hold clones; once they are
        // gone, no call can start.
        wait_until("calls in flight finish", || Arc::strong_count(&old) == 1);
        // `strong_count` is a relaxed load: the fence pairs it with the
        // Release of the last caller's drop of its clone, so that its
        // increment of `calls` is seen here (Miri's weak memory showed one
        // arriving late without it).
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let seen = calls.load(Relaxed);
        let now = acquisitions();
        wait_until("the threads go on", || acquisitions() > now + go_on);
        assert_eq!(calls.load(Relaxed), seen, "a removed hook was called");
    }
    stop.store(true, Relaxed);
    for t in threads {
        t.join();
    }
}

#[test]
// Not under Miri: it needs forced switches while two threads spin for
// 60 ms of real time (see `each_threads_events_come_in_order_under_contention`).
#[cfg(not(miri))]
fn stats_move_and_the_histograms_add_up() {
    common::setup();
    let gil = Arc::new(Gil::with_switch_interval(Duration::from_micros(500)));
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (gil, start) = (Arc::clone(&gil), Arc::clone(&start));
            spawn_named(None, move || {
                start.wait();
                let mut g = gil.acquire();
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(60) {
                    if g.should_yield() {
                        g.checkpoint();
                    }
                }
                g.detach(|| ());
                g.thread_state().stats()
            })
        })
        .collect();
    let per_thread: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
    let st = gil.stats();
    assert!(st.acquisitions >= 4, "{st:?}");
    assert!(
        st.forced_switches > 0,
        "two CPU threads, 60 ms, 0.5 ms interval: {st:?}"
    );
    assert!(st.switches >= st.forced_switches);
    assert!(st.drop_requests > 0);
    assert!(st.waits() > 0 && st.waits() <= st.acquisitions);
    assert_eq!(st.wait_histogram.total(), st.waits());
    // The Gil's histogram is the sum of its threads'.
    let mut sum = WaitHistogram::default();
    for t in &per_thread {
        for (s, c) in sum.counts.iter_mut().zip(t.wait_histogram.counts) {
            *s += c;
        }
        assert!(t.forced_releases > 0 || t.voluntary_releases > 0);
        assert!(t.longest_wait >= t.mean_wait());
        // The mean is the total over the count (a cargo-mutants survivor:
        // `ThreadStats::mean_wait` returning zero passed the line above).
        let waits = u32::try_from(t.waits()).unwrap();
        assert!(waits > 0, "{t:?}");
        assert_eq!(t.mean_wait(), t.total_wait / waits, "{t:?}");
        assert!(t.mean_wait() > Duration::ZERO, "{t:?}");
    }
    assert_eq!(sum, st.wait_histogram);
    assert!(st.total_wait > Duration::ZERO);
    assert!(st.longest_wait >= st.mean_wait() && st.longest_wait <= st.total_wait);
    // Forced switches make waits of about an interval: not all in the
    // first bucket (< 0.1 ms).
    assert!(
        st.wait_histogram.counts[1..].iter().sum::<u64>() > 0,
        "{st:?}"
    );
    // Bucket boundaries are exclusive upper bounds.
    assert_eq!(WaitHistogram::bucket_of(Duration::from_micros(99)), 0);
    assert_eq!(WaitHistogram::bucket_of(Duration::from_micros(100)), 1);
    assert_eq!(WaitHistogram::bucket_of(Duration::from_millis(100)), 9);
}

#[test]
fn display_prints_the_counters() {
    common::setup();
    let gil = Gil::new();
    for _ in 0..3 {
        drop(gil.acquire());
    }
    let st = gil.stats();
    let text = st.to_string();
    assert!(text.contains("acquisitions"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("acquisitions"))
        .unwrap();
    assert!(line.trim_end().ends_with(" 3"), "{line}");
    for label in [
        "switches",
        "forced switches",
        "drop requests",
        "total wait",
        "longest wait",
    ] {
        assert!(text.contains(label), "no {label} in\n{text}");
    }
    let me = gil.acquire();
    let text = me.thread_state().stats().to_string();
    for label in [
        "acquisitions",
        "forced releases",
        "voluntary releases",
        "longest wait",
    ] {
        assert!(text.contains(label), "no {label} in\n{text}");
    }
    drop(me);
    // A histogram prints one line per non-empty bucket.
    let mut h = WaitHistogram::default();
    h.counts[0] = 3;
    h.counts[9] = 1;
    let text = h.to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("0 - 0.1"), "{text}");
    assert!(text.contains(">= 100"), "{text}");
    assert!(text.contains("75.0%"), "{text}");
}

/// A histogram's bars are what a reader compares at a glance: their
/// lengths follow the counts, the fullest bucket's bar is the longest, a
/// bucket with half its count has a bar half as long, and a bucket with a
/// single wait still shows one mark.
///
/// Mutation: the bar length `n * BAR` in `WaitHistogram`'s `Display` as
/// `n / BAR` (a survivor of the mutation sample) → the 40-wait bucket got
/// one mark and the others none: "bars [1, 0, 0]: too short to compare".
#[test]
fn a_histograms_bars_are_proportional_to_the_counts() {
    let mut h = WaitHistogram::default();
    h.counts[0] = 40;
    h.counts[3] = 20;
    h.counts[9] = 1;
    let text = h.to_string();
    // Each line ends with its bar; nothing else on a line is a `#`.
    let bars: Vec<usize> = text
        .lines()
        .map(|line| line.len() - line.trim_end_matches('#').len())
        .collect();
    let [full, half, one] = bars[..] else {
        panic!("one line per non-empty bucket, got\n{text}");
    };
    assert!(full >= 10, "bars {bars:?}: too short to compare\n{text}");
    assert_eq!(half * 2, full, "bars {bars:?}\n{text}");
    assert_eq!(one, 1, "bars {bars:?}\n{text}");
}

#[test]
fn a_panicking_hook_is_removed_and_the_gil_keeps_working() {
    common::setup();
    let gil = Arc::new(Gil::new());
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    gil.set_event_hook(Some(Arc::new(move |e: &GilEvent<'_>| {
        counter.fetch_add(1, Relaxed);
        if e.kind == GilEventKind::Resumed {
            panic!("hook panics on purpose");
        }
    })));
    // The panic is caught inside the acquire: the guard is returned and the
    // Gil is held by this thread as it should be.
    let guard = gil.acquire();
    assert!(gil.is_held_by_current_thread());
    assert!(!gil.has_event_hook(), "a panicking hook stays registered");
    drop(guard);
    assert!(!gil.is_locked());
    let seen = calls.load(Relaxed);
    assert_eq!(seen, 2, "Started, then the panicking Resumed");
    // Another thread takes the Gil normally; the hook is not called again.
    let other = Arc::clone(&gil);
    spawn_named(None, move || drop(other.acquire())).join();
    assert_eq!(calls.load(Relaxed), seen);
}

/// A hook may block on another lock: it never runs inside a park callback.
/// Before the fix the `Suspended` hook of a Condition wait through a
/// `GilGuard` ran inside the park's `before_sleep`, so a hook that waited
/// for a contended semaphore parked a second time while still queued on
/// the condition: the wait below returned "notified" with no notify and
/// left a waiter counted (and Miri saw a use-after-free later).
#[test]
fn a_hook_may_wait_for_a_contended_lock_during_a_condition_wait() {
    common::setup();
    let gil = Arc::new(Gil::new());
    // Contended: the hook must park to get a permit.
    let other = Arc::new(gilock::Semaphore::new(0));
    let armed = Arc::new(AtomicBool::new(false));
    let (sem, a) = (Arc::clone(&other), Arc::clone(&armed));
    gil.set_event_hook(Some(Arc::new(move |e: &GilEvent<'_>| {
        if matches!(e.kind, GilEventKind::Suspended { .. }) && a.swap(false, Relaxed) {
            sem.acquire();
        }
    })));
    let holder = {
        let sem = Arc::clone(&other);
        spawn_named(None, move || {
            // Hand over a permit once the hook waits for one.
            wait_until("the hook waits", || {
                format!("{sem:?}").contains("has_waiters: true")
            });
            sem.release_one();
        })
    };
    let cond = gilock::Condition::new();
    let mut guard = gil.acquire();
    armed.store(true, Relaxed);
    let notified = cond.wait_timeout(&mut guard, Duration::from_millis(50));
    holder.join();
    assert_eq!(notified, Ok(false), "nobody notified");
    assert_eq!(cond.notify_all(), 0, "no waiter left behind");
    assert!(format!("{cond:?}").contains("waiters: 0"), "{cond:?}");
    drop(guard);
    gil.set_event_hook(None);
}

/// The message `f` panicked with (a formatted `panic!`), or `None` if it
/// returned or panicked with another payload.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).err()?;
    panic.downcast::<String>().ok().map(|s| *s)
}

/// A hook that uses the Gil it observes gets a clear panic (here caught by
/// the hook itself, which records the message). Before the fix, a
/// `Suspended` hook calling `ensure()` released the Gil inside its own
/// release and recursed until the stack overflowed.
#[test]
fn a_hook_that_uses_its_own_gil_gets_a_clear_panic() {
    common::setup();
    let gil = Arc::new(Gil::new());
    let message = Arc::new(Mutex::new(None));
    let (g, msg) = (Arc::clone(&gil), Arc::clone(&message));
    gil.set_event_hook(Some(Arc::new(move |e: &GilEvent<'_>| {
        if matches!(e.kind, GilEventKind::Suspended { .. })
            && let Some(text) = panic_message(|| drop(g.ensure()))
        {
            *msg.lock().unwrap() = Some(text);
        }
    })));
    drop(gil.acquire());
    gil.set_event_hook(None);
    let text = message
        .lock()
        .unwrap()
        .take()
        .expect("ensure inside the hook panicked");
    assert!(text.contains("inside an event hook"), "{text}");
    assert!(!gil.is_locked());
    assert!(gil.try_acquire().is_some());
}

/// A hook that takes its own Gil while the Gil is free (here `Exited`, sent
/// from the ending thread's thread-local destructor with nobody holding
/// the Gil) gets the clear panic, and the Gil stays free.
///
/// Mutation: the fast path's in-hook check moved back after its
/// compare-and-swap (as it was before the fix) → the Gil is left locked,
/// with no guard to release it, and this test fails at `is_locked`.
#[test]
fn a_hook_that_takes_its_free_gil_gets_a_clear_panic_and_leaves_it_free() {
    common::setup();
    let gil = Arc::new(Gil::new());
    let message = Arc::new(Mutex::new(None));
    let (g, msg) = (Arc::clone(&gil), Arc::clone(&message));
    gil.set_event_hook(Some(Arc::new(move |e: &GilEvent<'_>| {
        if matches!(e.kind, GilEventKind::Exited) {
            let text = panic_message(|| drop(g.try_acquire()))
                .unwrap_or_else(|| "try_acquire returned, or panicked without a message".into());
            *msg.lock().unwrap() = Some(text);
        }
    })));
    let worker = Arc::clone(&gil);
    std::thread::spawn(move || drop(worker.acquire()))
        .join()
        .unwrap();
    wait_until("the worker's Exited event", || {
        message.lock().unwrap().is_some()
    });
    gil.set_event_hook(None);
    let text = message.lock().unwrap().take().unwrap();
    assert!(text.contains("inside an event hook"), "{text}");
    assert!(!gil.is_locked(), "the refused acquire left the Gil locked");
    assert!(gil.try_acquire().is_some());
}

/// A hook registered after the thread took and let go of the Gil with no
/// hook (so that the Gil's word names it, and its next acquire and release
/// would be the uncontended compare-and-swaps) still hears that thread's
/// next acquire and release; once it is unregistered the Gil works as
/// before.
///
/// Mutation: `hooks::set_flag` leaving the word's `HOOKED` bit alone → the
/// hook heard nothing (the uncontended paths do not look for it).
#[test]
fn a_hook_registered_between_uncontended_acquires_hears_the_next_one() {
    common::setup();
    let gil = Gil::new();
    drop(gil.acquire());
    drop(gil.acquire());
    let kinds = kinds_heard(&gil, || drop(gil.acquire()));
    assert_eq!(
        kinds,
        [
            GilEventKind::Started,
            GilEventKind::Resumed,
            GilEventKind::Suspended { forced: false },
        ]
    );
    assert!(!gil.is_locked());
    assert!(gil.try_acquire().is_some());
}

/// A drop request whose asker gave up (its timed acquire ran out) is
/// dropped at the holder's next checkpoint without a release: the hook
/// hears nothing, nothing switches, and the request is gone.
///
/// Mutation (3 December, a survivor of cargo-mutants): in
/// `GilGuard::checkpoint`, the `!` of the first look at the waiters bit
/// deleted (a request with nobody waiting went on to a forced release and a
/// reacquire) → the hook heard `[Started, Suspended { forced: true },
/// Resumed]`.
///
/// Under Miri (the whole file, default seed) the test also caught a timed
/// waiter that left the waiters bit up (3 December, fixed in
/// `Gil::wait_for_gil`): its `timed_out` callback saw only an interval's end,
/// the clock passed the deadline before the waiter looked at the outcome,
/// and it left as timed out with `PARKED` still set; the checkpoint then made
/// the same forced release. Put back (the outcome read from the clock
/// again), the same assertion fails. No loom model reaches that window: the
/// model clock cannot move between the park's return and that look.
#[test]
fn a_request_whose_asker_gave_up_costs_no_release() {
    let gil = Gil::with_switch_interval(Duration::from_millis(1));
    let mut guard = gil.acquire();
    std::thread::scope(|s| {
        s.spawn(|| {
            let refused = gil.try_acquire_for(Duration::from_millis(200));
            assert!(refused.is_none(), "the holder never let go");
        });
    });
    assert!(guard.should_yield(), "the waiter asked before it gave up");
    let (log, hook) = logging_hook();
    gil.set_event_hook(Some(hook));
    let switched = guard.checkpoint().switched;
    gil.set_event_hook(None);
    let heard: Vec<GilEventKind> = log.lock().unwrap().iter().map(|e| e.1).collect();
    assert_eq!((switched, heard), (false, vec![]));
    assert!(!guard.should_yield(), "the stale request is still up");
}
