//! `Condition`, `RLock` and `Lock` side by side with their peers, in one
//! process, one table of ratios.
//!
//! ```sh
//! cargo bench --bench condition                  # about 4 s
//! GILOCK_BENCH_SECS=2 cargo bench --bench condition
//! cargo bench --bench condition -- --secs 0.1    # the same, as an argument
//! ```
//!
//! Scenarios:
//! - Condition ping-pong: two threads take turns on a counter under a
//!   mutex, each waiting on a condition variable for its turn and notifying
//!   the other; round trips per second for `gilock::Condition` with a
//!   `FairMutex`, `lock_api::Condvar<gilock::RawCondition>`,
//!   `parking_lot::Condvar` and `std::sync::Condvar` (target: ≥ 1.0× parking_lot);
//! - RLock recursive lock + unlock at depth 1 and 2 on one thread, ns per
//!   outermost lock/unlock, vs `parking_lot::ReentrantMutex` (target ≤ 1.2×);
//! - `notify_all` to 8 waiters: the time from the notify (made with the
//!   mutex held) until every waiter has run its critical section and let
//!   go, for `gilock::Condvar` (`lock_api::Condvar<gilock::RawCondition>`,
//!   which requeues the waiters onto the `FairMutex`) and
//!   `parking_lot::Condvar` (target ≤ 1.2× parking_lot);
//! - Lock acquire + release on one thread, ns, vs CPython's
//!   `threading.Lock` through `python3 -c` (for scale; skipped without
//!   python3).
//!
//! Each figure is the median of several rounds. Numbers taken while other
//! processes compete for the 2 CPUs are indicative only.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long each measured round runs, from `--secs` or `GILOCK_BENCH_SECS`
/// (total seconds per figure); short by default.
fn budget() -> Duration {
    let mut args = std::env::args().skip_while(|a| a != "--secs");
    let from_arg = args.nth(1).and_then(|s| s.parse::<f64>().ok());
    let from_env = std::env::var("GILOCK_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok());
    Duration::from_secs_f64(from_arg.or(from_env).unwrap_or(0.4))
}

const ROUNDS: u32 = 5;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// A mutex + condition variable pair that two threads ping-pong through.
trait PingPong: Send + Sync + 'static {
    const NAME: &'static str;
    fn new() -> Self;
    /// Waits until the counter's parity is `parity`, then bumps it and
    /// notifies the other side. Returns false once the counter passes
    /// `limit`.
    fn turn(&self, parity: u64, limit: u64) -> bool;
}

macro_rules! ping_pong_lock_api {
    ($ty:ty, $name:expr, $mutex:expr, $cond:expr, |$c:ident, $g:ident| $wait:expr) => {
        impl PingPong for $ty {
            const NAME: &'static str = $name;
            fn new() -> Self {
                ($mutex, $cond)
            }
            #[inline]
            fn turn(&self, parity: u64, limit: u64) -> bool {
                let $c = &self.1;
                let mut $g = self.0.lock();
                while *$g % 2 != parity && *$g <= limit {
                    $wait;
                }
                if *$g > limit {
                    $c.notify_one();
                    return false;
                }
                *$g += 1;
                drop($g);
                $c.notify_one();
                true
            }
        }
    };
}

type GilockPair = (gilock::FairMutex<u64>, gilock::Condition);
type LockApiPair = (
    gilock::FairMutex<u64>,
    lock_api::Condvar<gilock::RawCondition>,
);
type ParkingLotPair = (parking_lot::Mutex<u64>, parking_lot::Condvar);

ping_pong_lock_api!(
    GilockPair,
    "gilock::Condition",
    gilock::FairMutex::new(0),
    gilock::Condition::new(),
    |c, g| c.wait(&mut g)
);
ping_pong_lock_api!(
    LockApiPair,
    "lock_api::Condvar<RawCondition>",
    gilock::FairMutex::new(0),
    lock_api::Condvar::new(),
    |c, g| c.wait(&mut g)
);
ping_pong_lock_api!(
    ParkingLotPair,
    "parking_lot::Condvar",
    parking_lot::Mutex::new(0),
    parking_lot::Condvar::new(),
    |c, g| c.wait(&mut g)
);

struct StdPair(std::sync::Mutex<u64>, std::sync::Condvar);

impl PingPong for StdPair {
    const NAME: &'static str = "std::sync::Condvar";
    fn new() -> Self {
        StdPair(std::sync::Mutex::new(0), std::sync::Condvar::new())
    }
    #[inline]
    fn turn(&self, parity: u64, limit: u64) -> bool {
        let mut g = self.0.lock().unwrap();
        while *g % 2 != parity && *g <= limit {
            g = self.1.wait(g).unwrap();
        }
        if *g > limit {
            self.1.notify_one();
            return false;
        }
        *g += 1;
        drop(g);
        self.1.notify_one();
        true
    }
}

/// Round trips per second: two threads alternate `rounds` times each.
fn ping_pong_round<P: PingPong>(trips: u64) -> f64 {
    let pair = Arc::new(P::new());
    let limit = trips * 2;
    let other = {
        let pair = Arc::clone(&pair);
        thread::spawn(move || while pair.turn(1, limit) {})
    };
    let start = Instant::now();
    while pair.turn(0, limit) {}
    let elapsed = start.elapsed();
    other.join().unwrap();
    trips as f64 / elapsed.as_secs_f64()
}

fn ping_pong<P: PingPong>(budget: Duration) -> f64 {
    // Calibrate: how many round trips fit in one round's share.
    let probe = ping_pong_round::<P>(2000);
    let per_round = budget.as_secs_f64() / f64::from(ROUNDS);
    let trips = ((probe * per_round) as u64).max(1000);
    median((0..ROUNDS).map(|_| ping_pong_round::<P>(trips)).collect())
}

/// ns per iteration of `f`, the median of several rounds.
fn per_op(budget: Duration, mut f: impl FnMut()) -> f64 {
    let mut n = 1000u64;
    loop {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        if start.elapsed() > Duration::from_millis(10) {
            break;
        }
        n *= 4;
    }
    let per_round = budget.as_secs_f64() / f64::from(ROUNDS);
    let probe_ns = {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_secs_f64() / n as f64
    };
    let iters = ((per_round / probe_ns) as u64).max(1000);
    median(
        (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..iters {
                    f();
                }
                start.elapsed().as_secs_f64() * 1e9 / iters as f64
            })
            .collect(),
    )
}

fn rlock_depth(budget: Duration, depth: usize) -> (f64, f64) {
    let ours = gilock::RLock::new();
    let theirs = parking_lot::ReentrantMutex::new(());
    let a = per_op(budget, || {
        let g1 = black_box(&ours).lock();
        if depth == 2 {
            let g2 = black_box(&ours).lock();
            drop(black_box(g2));
        }
        drop(black_box(g1));
    });
    let b = per_op(budget, || {
        let g1 = black_box(&theirs).lock();
        if depth == 2 {
            let g2 = black_box(&theirs).lock();
            drop(black_box(g2));
        }
        drop(black_box(g1));
    });
    (a, b)
}

/// CPython's `threading.Lock` acquire + release in ns, if python3 runs.
fn cpython_lock_ns() -> Option<f64> {
    let script = "import threading, timeit\n\
                  l = threading.Lock()\n\
                  n = 1000000\n\
                  t = min(timeit.repeat('a(); r()', globals={'a': l.acquire, 'r': l.release}, number=n, repeat=3))\n\
                  print(t / n * 1e9)";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// The waiters of the `notify_all` figure.
const HERD: usize = 8;

/// Rounds of the `notify_all` figure (each spawns its waiters afresh; only
/// the time from the notify until the last waiter let go is measured).
const HERD_ROUNDS: usize = 41;

/// One `notify_all` figure: the median time from a `notify_all` (made with
/// the mutex held) until all `HERD` waiters have run, for one mutex and
/// condition variable pair of the lock_api shape.
macro_rules! herd {
    ($name:ident, $mutex:ty, $cond:ty) => {
        fn $name() -> f64 {
            use std::sync::atomic::{AtomicUsize, Ordering};
            let mut times = Vec::with_capacity(HERD_ROUNDS);
            for _ in 0..HERD_ROUNDS {
                // (the flag, how many wait), the condition, how many ran.
                let shared = Arc::new((
                    <$mutex>::new((false, 0usize)),
                    <$cond>::new(),
                    AtomicUsize::new(0),
                ));
                let waiters: Vec<_> = (0..HERD)
                    .map(|_| {
                        let shared = Arc::clone(&shared);
                        thread::spawn(move || {
                            let (mutex, cond, ran) = &*shared;
                            let mut guard = mutex.lock();
                            guard.1 += 1;
                            while !guard.0 {
                                cond.wait(&mut guard);
                            }
                            drop(guard);
                            ran.fetch_add(1, Ordering::Release);
                        })
                    })
                    .collect();
                let (mutex, cond, ran) = &*shared;
                // Every waiter is in its wait once the count is full and
                // the mutex is free again.
                while mutex.lock().1 < HERD {
                    thread::yield_now();
                }
                let start = Instant::now();
                {
                    let mut guard = mutex.lock();
                    guard.0 = true;
                    cond.notify_all();
                }
                while ran.load(Ordering::Acquire) < HERD {
                    thread::yield_now();
                }
                times.push(start.elapsed().as_secs_f64() * 1e6);
                for waiter in waiters {
                    waiter.join().unwrap();
                }
            }
            median(times)
        }
    };
}

herd!(herd_gilock, gilock::Mutex<(bool, usize)>, gilock::Condvar);
herd!(
    herd_parking_lot,
    parking_lot::Mutex<(bool, usize)>,
    parking_lot::Condvar
);

fn main() {
    let budget = budget();
    println!("gilock condition bench ({budget:?} per figure, median of {ROUNDS} rounds)\n");

    println!(
        "Condition ping-pong, 2 threads (round trips/s; ratio to parking_lot, target >= 1.0):"
    );
    let ours = ping_pong::<GilockPair>(budget);
    let lock_api = ping_pong::<LockApiPair>(budget);
    let pl = ping_pong::<ParkingLotPair>(budget);
    let std = ping_pong::<StdPair>(budget);
    for (name, rate) in [
        (GilockPair::NAME, ours),
        (LockApiPair::NAME, lock_api),
        (ParkingLotPair::NAME, pl),
        (StdPair::NAME, std),
    ] {
        println!(
            "  {name:34} {:>10.0}/s  {:>5.1} us/trip  {:.2}x",
            rate,
            1e6 / rate,
            rate / pl
        );
    }

    println!(
        "\nRLock recursive lock+unlock (ns; ratio to parking_lot::ReentrantMutex, target <= 1.2):"
    );
    for depth in [1, 2] {
        let (ours, theirs) = rlock_depth(budget, depth);
        println!(
            "  depth {depth}: gilock::RLock {ours:6.2} ns   parking_lot {theirs:6.2} ns   {:.2}x",
            ours / theirs
        );
    }

    println!(
        "\nnotify_all to {HERD} waiters, the mutex held: time until all have run (us, median of {HERD_ROUNDS}; target <= 1.2x parking_lot):"
    );
    let (ours, theirs) = (herd_gilock(), herd_parking_lot());
    println!(
        "  gilock::Condvar {ours:7.1} us   parking_lot::Condvar {theirs:7.1} us   {:.2}x",
        ours / theirs
    );

    println!("\nLock acquire+release, one thread (ns):");
    let lock = gilock::Lock::new();
    let ours = per_op(budget, || {
        black_box(&lock).acquire();
        let _ = black_box(&lock).release();
    });
    print!("  gilock::Lock {ours:6.2} ns");
    match cpython_lock_ns() {
        Some(py) => println!(
            "   CPython threading.Lock {py:6.2} ns   ({:.1}x faster)",
            py / ours
        ),
        None => println!("   (python3 not found: no CPython figure)"),
    }
}
