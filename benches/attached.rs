//! What waiting while attached and Gil-bound data cost, side by side with
//! the peers they replace, in one run:
//!
//! - (a) `GilCell::borrow_mut` through a guard, against a raw `UnsafeCell`
//!   access (what the examples did before, with `unsafe`): ns per access
//!   and the ns added (target: at most 1.5 ns);
//! - (b) uncontended `Lock::acquire_with` + release with the Gil held,
//!   against `Lock::acquire` + release (target: at most 1.1x);
//! - (c) a contended handoff: two threads holding the Gil in turn pass a
//!   baton through two locks, so that every acquire blocks:
//!   `acquire_with` against `detach(|| lock.acquire())`, ns per handoff.
//!
//! ```sh
//! cargo bench --bench attached                  # about 20 s
//! cargo bench --bench attached -- --quick       # a smoke run, a few seconds
//! GILOCK_BENCH_ONLY=gil_cell cargo bench --bench attached
//! ```
//!
//! Each figure is the median of rounds that alternate between the two
//! sides, so both see the same machine; the load average and CPU steal are
//! printed, and numbers taken while other processes compete for the CPUs
//! are indicative only.

use gilock::{Gil, GilCell, Lock};
use std::cell::UnsafeCell;
use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/machine.rs"]
mod machine;

struct Config {
    rounds: usize,
    round: Duration,
}

fn config() -> Config {
    if std::env::args().any(|a| a == "--quick") {
        Config {
            rounds: 3,
            round: Duration::from_millis(20),
        }
    } else {
        Config {
            rounds: 11,
            round: Duration::from_millis(100),
        }
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// How many calls of `f(n)` make one round: sized once, so that every
/// round of both sides does the same work.
fn calibrate(round: Duration, f: &mut impl FnMut(u64)) -> u64 {
    let mut n = 1_000u64;
    loop {
        let t = Instant::now();
        f(n);
        let took = t.elapsed();
        if took >= round / 4 {
            return (n as f64 * round.as_secs_f64() / took.as_secs_f64()) as u64;
        }
        n *= 4;
    }
}

/// ns per operation of `a` and of `b`: medians of alternating rounds.
fn side_by_side(cfg: &Config, mut a: impl FnMut(u64), mut b: impl FnMut(u64)) -> (f64, f64) {
    let (na, nb) = (calibrate(cfg.round, &mut a), calibrate(cfg.round, &mut b));
    let time = |f: &mut dyn FnMut(u64), n: u64| {
        let t = Instant::now();
        f(n);
        t.elapsed().as_secs_f64() * 1e9 / n as f64
    };
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..cfg.rounds {
        ta.push(time(&mut a, na));
        tb.push(time(&mut b, nb));
    }
    (median(ta), median(tb))
}

// ------------------------------------------------------------------ (a)

fn gil_cell(cfg: &Config) {
    let gil = Gil::new();
    let guard = gil.acquire();
    let cell = GilCell::new(0u64);
    let raw = UnsafeCell::new(0u64);
    let (cell_ns, raw_ns) = side_by_side(
        cfg,
        |n| {
            for _ in 0..n {
                *black_box(&cell).borrow_mut(&guard) += 1;
            }
        },
        |n| {
            for _ in 0..n {
                // SAFETY: `raw` is local to this thread; no other reference
                // to it exists while this one is used.
                unsafe { *black_box(&raw).get() += 1 };
            }
        },
    );
    let (read_ns, raw_read_ns) = side_by_side(
        cfg,
        |n| {
            let mut sum = 0u64;
            for _ in 0..n {
                sum = sum.wrapping_add(*black_box(&cell).borrow(&guard));
            }
            black_box(sum);
        },
        |n| {
            let mut sum = 0u64;
            for _ in 0..n {
                // SAFETY: as above.
                sum = sum.wrapping_add(unsafe { *black_box(&raw).get() });
            }
            black_box(sum);
        },
    );
    println!("(a) GilCell through a guard vs a raw UnsafeCell, ns per access:");
    println!(
        "    borrow_mut + increment   {cell_ns:6.2}  vs raw {raw_ns:6.2}   added {:5.2} ns  (target <= 1.5)",
        cell_ns - raw_ns
    );
    println!(
        "    borrow + read            {read_ns:6.2}  vs raw {raw_read_ns:6.2}   added {:5.2} ns",
        read_ns - raw_read_ns
    );
    drop(guard);
}

// ------------------------------------------------------------------ (b)

fn uncontended(cfg: &Config) {
    let gil = Gil::new();
    let lock = Lock::new();
    let mut guard = gil.acquire();
    let (with_ns, plain_ns) = side_by_side(
        cfg,
        |n| {
            for _ in 0..n {
                black_box(&lock).acquire_with(&mut guard).unwrap();
                lock.release().unwrap();
            }
        },
        |n| {
            for _ in 0..n {
                black_box(&lock).acquire();
                lock.release().unwrap();
            }
        },
    );
    println!("(b) uncontended Lock acquire + release, the Gil held:");
    println!(
        "    acquire_with {with_ns:6.2} ns  vs acquire {plain_ns:6.2} ns   ratio {:.3}x  (target <= 1.1)",
        with_ns / plain_ns
    );
}

// ------------------------------------------------------------------ (c)

/// ns per handoff of two threads passing a baton through two locks, each
/// holding the Gil in turn: A takes `ping` (which B released) and releases
/// `pong`; B takes `pong` and releases `ping`. Every acquire finds its lock
/// taken and blocks, so every round trip is two handoffs of a lock and two
/// of the Gil. `with`: `acquire_with`; otherwise `detach(|| acquire())`.
fn baton(round_trips: u64, with: bool) -> f64 {
    let gil = Arc::new(Gil::new());
    let (ping, pong) = (Arc::new(Lock::new()), Arc::new(Lock::new()));
    ping.acquire();
    pong.acquire();
    let take = move |lock: &Lock, guard: &mut gilock::GilGuard<'_>| {
        if with {
            lock.acquire_with(guard).unwrap();
        } else {
            guard.detach(|| lock.acquire());
        }
    };
    let start = Instant::now();
    let a = {
        let (gil, ping, pong) = (gil.clone(), ping.clone(), pong.clone());
        thread::spawn(move || {
            let mut guard = gil.acquire();
            for _ in 0..round_trips {
                take(&ping, &mut guard);
                pong.release().unwrap();
            }
        })
    };
    let b = thread::spawn(move || {
        let mut guard = gil.acquire();
        for _ in 0..round_trips {
            ping.release().unwrap();
            take(&pong, &mut guard);
        }
    });
    a.join().unwrap();
    b.join().unwrap();
    start.elapsed().as_secs_f64() * 1e9 / (2 * round_trips) as f64
}

fn contended(cfg: &Config) {
    // Size a round once.
    let mut n = 100u64;
    while Duration::from_secs_f64(baton(n, true) * 2.0 * n as f64 / 1e9) < cfg.round / 4 {
        n *= 4;
    }
    let (mut with, mut detach) = (Vec::new(), Vec::new());
    for _ in 0..cfg.rounds {
        with.push(baton(n, true));
        detach.push(baton(n, false));
    }
    let (with, detach) = (median(with), median(detach));
    println!("(c) contended handoff: a baton passed through two Locks by 2 threads on one Gil:");
    println!(
        "    acquire_with {with:8.0} ns  vs detach(|| acquire()) {detach:8.0} ns per handoff   \
         ratio {:.2}x",
        with / detach
    );
}

fn main() {
    machine::start();
    let cfg = config();
    let only = std::env::var("GILOCK_BENCH_ONLY").unwrap_or_default();
    println!(
        "{} ({} rounds of {:?}, medians)\n",
        machine::conditions(),
        cfg.rounds,
        cfg.round
    );
    if only.is_empty() || only == "gil_cell" {
        gil_cell(&cfg);
    }
    if only.is_empty() || only == "lock" {
        uncontended(&cfg);
        contended(&cfg);
    }
    println!("\nat the end: {}", machine::conditions());
}
