//! `FairMutex` side by side with `parking_lot::Mutex`, `parking_lot::FairMutex`
//! and `std::sync::Mutex`, in one process, one table.
//!
//! ```sh
//! cargo bench --bench fair_mutex                  # about 15 s
//! GILOCK_BENCH_SECS=5 cargo bench --bench fair_mutex
//! cargo bench --bench fair_mutex -- --secs 0.2    # the same, as an argument
//! ```
//!
//! Scenarios:
//! - uncontended lock + unlock on one thread: ns per pair, the median of
//!   9 rounds of about 20 ms;
//! - 2 and 4 threads incrementing one shared counter for a fixed time:
//!   throughput, each thread's share (min / max, Jain's fairness index) and
//!   the longest single `lock()` call any thread saw.
//!
//! Each figure is taken in rounds, the four mutexes in a rotating order, so
//! load from other processes that comes and goes hits all of them alike;
//! a contended figure sums 4 runs of a quarter of the duration.
//!
//! Every lock call in the contended runs is timed with the CPU's time-stamp
//! counter (a few ns on x86_64; `Instant` elsewhere), and only the maximum is
//! kept, so all four mutexes pay the same small price. Ratios are to
//! `parking_lot::Mutex`; the targets are the README's Benchmarks table.
//! Numbers taken while other processes compete for the 2 CPUs are
//! indicative only.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/machine.rs"]
mod machine;

/// The interval our mutex runs with (its default), for the wait target.
const INTERVAL: Duration = gilock::DEFAULT_SWITCH_INTERVAL;

/// A mutex over a `u64` counter, as the benchmark drives it.
trait BenchMutex: Send + Sync + 'static {
    const NAME: &'static str;
    fn new() -> Self;
    fn increment(&self);
}

impl BenchMutex for gilock::FairMutex<u64> {
    const NAME: &'static str = "gilock::FairMutex";
    fn new() -> Self {
        gilock::FairMutex::new(0)
    }
    #[inline]
    fn increment(&self) {
        *self.lock() += 1;
    }
}

impl BenchMutex for parking_lot::Mutex<u64> {
    const NAME: &'static str = "parking_lot::Mutex";
    fn new() -> Self {
        parking_lot::Mutex::new(0)
    }
    #[inline]
    fn increment(&self) {
        *self.lock() += 1;
    }
}

impl BenchMutex for parking_lot::FairMutex<u64> {
    const NAME: &'static str = "parking_lot::FairMutex";
    fn new() -> Self {
        parking_lot::FairMutex::new(0)
    }
    #[inline]
    fn increment(&self) {
        *self.lock() += 1;
    }
}

impl BenchMutex for std::sync::Mutex<u64> {
    const NAME: &'static str = "std::sync::Mutex";
    fn new() -> Self {
        std::sync::Mutex::new(0)
    }
    #[inline]
    fn increment(&self) {
        *self.lock().unwrap() += 1;
    }
}

/// A cheap timestamp: the time-stamp counter on x86_64 (invariant on every
/// CPU of the last 15 years), the monotonic clock elsewhere; converted to
/// time with a rate measured over the whole run.
mod stamp {
    use std::time::Instant;

    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn now() -> u64 {
        // SAFETY: `rdtsc` has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    pub fn now() -> u64 {
        use std::sync::OnceLock;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    /// Stamps per nanosecond, measured against `Instant` over `Clock`'s life.
    pub struct Clock {
        instant: Instant,
        stamp: u64,
    }

    impl Clock {
        pub fn start() -> Self {
            Self {
                instant: Instant::now(),
                stamp: now(),
            }
        }

        pub fn per_ns(&self) -> f64 {
            let stamps = now().wrapping_sub(self.stamp) as f64;
            let ns = self.instant.elapsed().as_nanos() as f64;
            if ns > 0.0 { stamps / ns } else { 1.0 }
        }
    }
}

struct Options {
    /// Time each mutex spends in each contended scenario.
    secs: f64,
}

impl Options {
    fn parse() -> Self {
        let mut secs = match std::env::var("GILOCK_BENCH_SECS") {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("GILOCK_BENCH_SECS={v} is not a number")),
            Err(_) => 1.0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            // `cargo bench` passes `--bench`; ignore what is not ours.
            if arg == "--secs" {
                let v = args.next().expect("--secs needs a value");
                secs = v
                    .parse()
                    .unwrap_or_else(|_| panic!("--secs {v} is not a number"));
            }
        }
        assert!(secs > 0.0, "the duration must be positive");
        Self { secs }
    }
}

// ------------------------------------------------------------- uncontended

/// Iterations of lock + unlock that take about 20 ms on one thread.
fn size_round<M: BenchMutex>() -> u64 {
    let m = M::new();
    let mut iters: u64 = 1 << 12;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(&m).increment();
        }
        if start.elapsed() >= Duration::from_millis(20) {
            return iters;
        }
        iters *= 2;
    }
}

/// ns per lock + unlock on one thread, over `iters` iterations.
fn uncontended<M: BenchMutex>(iters: u64) -> f64 {
    let m = M::new();
    let start = Instant::now();
    for _ in 0..iters {
        black_box(&m).increment();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

// --------------------------------------------------------------- contended

struct Contended {
    /// How long the runs merged here took in all.
    secs: f64,
    ops_per_sec: f64,
    per_thread: Vec<u64>,
    longest_wait: Duration,
}

impl Contended {
    /// Adds another run of the same scenario (thread `i` to thread `i`).
    fn merge(&mut self, other: Contended, secs: f64) {
        let total = self.ops_per_sec * self.secs + other.ops_per_sec * secs;
        self.secs += secs;
        self.ops_per_sec = total / self.secs;
        for (mine, theirs) in self.per_thread.iter_mut().zip(other.per_thread) {
            *mine += theirs;
        }
        self.longest_wait = self.longest_wait.max(other.longest_wait);
    }

    fn jain(&self) -> f64 {
        let n = self.per_thread.len() as f64;
        let sum: f64 = self.per_thread.iter().map(|&x| x as f64).sum();
        let squares: f64 = self.per_thread.iter().map(|&x| (x as f64).powi(2)).sum();
        if squares == 0.0 {
            0.0
        } else {
            sum * sum / (n * squares)
        }
    }
}

/// `threads` threads increment one counter for `secs`; each thread counts
/// its increments and keeps the longest time one `lock()` took it.
fn contended<M: BenchMutex>(threads: usize, secs: f64) -> Contended {
    let m = Arc::new(M::new());
    let stop = Arc::new(AtomicBool::new(false));
    let go = Arc::new(Barrier::new(threads + 1));
    let clock = stamp::Clock::start();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (m, stop, go) = (m.clone(), stop.clone(), go.clone());
            thread::spawn(move || {
                go.wait();
                let mut count = 0u64;
                let mut longest = 0u64;
                while !stop.load(Relaxed) {
                    let before = stamp::now();
                    m.increment();
                    let took = stamp::now().wrapping_sub(before);
                    longest = longest.max(took);
                    count += 1;
                }
                (count, longest)
            })
        })
        .collect();
    go.wait();
    let start = Instant::now();
    thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Relaxed);
    let results: Vec<(u64, u64)> = workers
        .into_iter()
        .map(|w| w.join().expect("bench thread"))
        .collect();
    let elapsed = start.elapsed();
    let per_ns = clock.per_ns();
    let per_thread: Vec<u64> = results.iter().map(|r| r.0).collect();
    let longest = results.iter().map(|r| r.1).max().unwrap_or(0);
    Contended {
        secs: elapsed.as_secs_f64(),
        ops_per_sec: per_thread.iter().sum::<u64>() as f64 / elapsed.as_secs_f64(),
        per_thread,
        longest_wait: Duration::from_nanos((longest as f64 / per_ns) as u64),
    }
}

// ------------------------------------------------------------------ report

struct Row {
    name: &'static str,
    uncontended_ns: f64,
    contended: Vec<Contended>,
}

/// One scenario for one mutex type, as a function the interleaving loop
/// can call in any order.
struct Contender {
    name: &'static str,
    size: fn() -> u64,
    uncontended: fn(u64) -> f64,
    contended: fn(usize, f64) -> Contended,
}

fn contender<M: BenchMutex>() -> Contender {
    Contender {
        name: M::NAME,
        size: size_round::<M>,
        uncontended: uncontended::<M>,
        contended: contended::<M>,
    }
}

/// Every figure is measured in rounds, the mutexes in a different order in
/// each round, so that load from other processes that comes and goes falls
/// on all of them alike.
fn measure(contenders: &[Contender], secs: f64, thread_counts: &[usize]) -> Vec<Row> {
    const UNCONTENDED_ROUNDS: usize = 9;
    const CONTENDED_ROUNDS: usize = 4;
    let n = contenders.len();
    let order = |round: usize| (0..n).map(move |i| (i + round) % n);

    let iters = contenders.iter().map(|c| (c.size)()).max().unwrap_or(1);
    let mut samples = vec![Vec::new(); n];
    for round in 0..UNCONTENDED_ROUNDS {
        for i in order(round) {
            samples[i].push((contenders[i].uncontended)(iters));
        }
    }

    let mut contended: Vec<Vec<Option<Contended>>> = (0..n)
        .map(|_| thread_counts.iter().map(|_| None).collect())
        .collect();
    let slice = secs / CONTENDED_ROUNDS as f64;
    for (t, &threads) in thread_counts.iter().enumerate() {
        for round in 0..CONTENDED_ROUNDS {
            for i in order(round) {
                let run = (contenders[i].contended)(threads, slice);
                match &mut contended[i][t] {
                    Some(acc) => acc.merge(run, slice),
                    slot => *slot = Some(run),
                }
            }
        }
    }

    contenders
        .iter()
        .zip(samples)
        .zip(contended)
        .map(|((c, mut samples), runs)| {
            samples.sort_by(f64::total_cmp);
            Row {
                name: c.name,
                uncontended_ns: samples[samples.len() / 2],
                contended: runs.into_iter().map(|r| r.expect("measured")).collect(),
            }
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn main() {
    let options = Options::parse();
    let thread_counts = [2, 4];
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "FairMutex bench: {cpus} CPUs, {} s per mutex per contended scenario (4 interleaved runs), FairMutex interval {:?}",
        options.secs, INTERVAL
    );
    println!("(contended lock calls are each timed with the TSC; all mutexes pay that alike)\n");

    machine::start();
    let rows = measure(
        &[
            contender::<gilock::FairMutex<u64>>(),
            contender::<parking_lot::Mutex<u64>>(),
            contender::<parking_lot::FairMutex<u64>>(),
            contender::<std::sync::Mutex<u64>>(),
        ],
        options.secs,
        &thread_counts,
    );
    let peer = &rows[1];

    print!("{:<24} {:>15}", "mutex", "uncontended");
    for t in thread_counts {
        print!(
            " | {:>16} {:>17} {:>6} {:>11}",
            format!("{t}T Mops/s"),
            "per-thread min/max",
            "Jain",
            "max wait"
        );
    }
    println!();
    for row in &rows {
        let ratio = row.uncontended_ns / peer.uncontended_ns;
        print!(
            "{:<24} {:>6.2} ns {:>5.2}x",
            row.name, row.uncontended_ns, ratio
        );
        for (c, p) in row.contended.iter().zip(&peer.contended) {
            let min = c.per_thread.iter().min().copied().unwrap_or(0);
            let max = c.per_thread.iter().max().copied().unwrap_or(0);
            print!(
                " | {:>7.2} {:>6.2}x {:>8.2}M/{:>7.2}M {:>6.3} {:>8.2} ms",
                c.ops_per_sec / 1e6,
                c.ops_per_sec / p.ops_per_sec,
                min as f64 / 1e6,
                max as f64 / 1e6,
                c.jain(),
                ms(c.longest_wait)
            );
        }
        println!();
    }

    println!(
        "\nWhile it ran: {} (figures taken with more than a few percent are indicative only)",
        machine::conditions()
    );

    let ours = &rows[0];
    println!("\nTargets for gilock::FairMutex (ratios to parking_lot::Mutex):");
    let ratio = ours.uncontended_ns / peer.uncontended_ns;
    println!(
        "  uncontended lock+unlock    {:>6.2}x  target <= 1.10x  {}",
        ratio,
        verdict(ratio <= 1.1)
    );
    for ((t, c), p) in thread_counts
        .iter()
        .zip(&ours.contended)
        .zip(&peer.contended)
    {
        let ratio = c.ops_per_sec / p.ops_per_sec;
        println!(
            "  {t}-thread throughput        {:>6.2}x  target >= 0.95x  {}",
            ratio,
            verdict(ratio >= 0.95)
        );
        // No waiter waits more than five switch intervals (whatever the
        // number of threads: an overdue waiter is served at the next
        // unlock).
        let bound = INTERVAL * 5;
        println!(
            "  {t}-thread longest wait   {:>7.2} ms  target <= {:.0} ms  {}",
            ms(c.longest_wait),
            ms(bound),
            verdict(c.longest_wait <= bound)
        );
    }
}
