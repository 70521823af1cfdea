//! Gil benchmarks, side by side with parking_lot and (when `python3` is on
//! PATH) CPython's GIL running the same scenarios (`benches/gil_cpython.py`).
//!
//! ```sh
//! cargo bench --bench gil                       # about 30 s
//! GILOCK_BENCH_SECS=10 cargo bench --bench gil  # longer timed phases
//! ```
//!
//! Scenarios:
//! - (a) uncontended `acquire` + release vs `parking_lot::Mutex` lock + unlock;
//! - (b) the cost of `GilGuard::should_yield`, the per-bytecode poll;
//! - (c) two CPU-bound threads with a checkpoint after every ~1 µs of work:
//!   switches per second, the wait to get the Gil back, slice lengths, and
//!   the pair's throughput against one thread alone, under each policy;
//! - (d) two CPU-bound threads plus one that sleeps 1 ms inside `detach` in a
//!   loop: that thread's wait to get the Gil back after each sleep, under
//!   each policy;
//! - (f) starvation: two CPU-bound threads against four threads that hold
//!   the Gil about 2 µs and detach about 5 µs (busy) in a loop: each
//!   thread's Gil time in every 1 s window against its max-min fair share
//!   (here 1/6: every thread asks for more than that), under each policy;
//!   with the share of the time the Gil was held, switches per second,
//!   and how long each kind of thread was on a core (the starvation-only
//!   run prints these; the full run prints the shares).
//! - (e) event hooks: uncontended acquire + release with no hook, a no-op
//!   hook and the `TraceRecorder`; and (d) under Interactive with and
//!   without the recorder (`GILOCK_BENCH_ONLY=hooks` runs only this part;
//!   `GILOCK_BENCH_ONLY=starvation` only (f), `GILOCK_BENCH_ONLY=uncontended` only (a); `GILOCK_BENCH_VERBOSE=1` prints
//!   (a)'s rounds and (f)'s share of every thread in every window).
//! - (g) what a loan costs (`GILOCK_BENCH_ONLY=loan` runs only this): one
//!   CPU-bound thread with a checkpoint after every ~1 µs of work, and one
//!   that detaches for 5-6.5 µs of busy work in a loop and does nothing
//!   with the Gil in between. Under Interactive every return from the
//!   detach borrows the Gil at the CPU thread's next checkpoint and gives
//!   it back at once: the CPU thread's work lost per return, against its
//!   work alone, is what a loan costs it. Under Fifo the detaching thread
//!   waits out intervals and barely runs.
//!
//! The interval is 5 ms (CPython's default; `GILOCK_BENCH_INTERVAL_MS`
//! changes it). Numbers taken while other processes compete for the CPUs are
//! indicative only: the first and last lines print the load average and the
//! CPU time stolen by the hypervisor or used by other processes meanwhile.

use gilock::{Gil, SwitchPolicy};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/machine.rs"]
mod machine;

fn env_f64(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of a sorted slice (as the CPython script does).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mean(xs: &[Duration]) -> Duration {
    xs.iter().sum::<Duration>() / xs.len().max(1) as u32
}

// ---------------------------------------------------------------- (a), (b)

/// ns per call of `f`, the best of several rounds of ~50 ms each: the
/// minimum filters out rounds disturbed by other processes.
fn ns_per_op(rounds: usize, mut f: impl FnMut(u64)) -> f64 {
    // Size a round to about 50 ms.
    let mut n = 1_000u64;
    loop {
        let t = Instant::now();
        f(n);
        if t.elapsed() >= Duration::from_millis(20) {
            break;
        }
        n *= 4;
    }
    n = n * 50 / 20;
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f(n);
            t.elapsed().as_secs_f64() * 1e9 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

struct Uncontended {
    gil_ns: f64,
    pl_ns: f64,
    should_yield_ns: f64,
}

fn uncontended() -> Uncontended {
    let gil = Gil::new();
    let pl = parking_lot::Mutex::new(());
    // Touch the Gil once so the thread's ThreadState exists, as it would in
    // any interpreter thread after its first acquire.
    drop(gil.acquire());
    let (mut gil_rounds, mut pl_rounds) = (Vec::new(), Vec::new());
    // Alternate the two so both see the same machine conditions, and take
    // the median of the rounds (each the best of three batches): one
    // disturbed round moves neither figure.
    for _ in 0..7 {
        gil_rounds.push(ns_per_op(3, |n| {
            for _ in 0..n {
                drop(black_box(&gil).acquire());
            }
        }));
        pl_rounds.push(ns_per_op(3, |n| {
            for _ in 0..n {
                drop(black_box(&pl).lock());
            }
        }));
    }
    if std::env::var_os("GILOCK_BENCH_VERBOSE").is_some() {
        let show = |r: &[f64]| {
            r.iter()
                .map(|ns| format!("{ns:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "(a) rounds, ns per op: gil {}; parking_lot {}",
            show(&gil_rounds),
            show(&pl_rounds)
        );
    }
    let (gil_ns, pl_ns) = (median(gil_rounds), median(pl_rounds));
    let guard = gil.acquire();
    // As an interpreter loop calls it: the compiler does not hoist or merge
    // atomic loads, so each iteration pays for one poll.
    let should_yield_ns = ns_per_op(7, |n| {
        let mut yes = 0u64;
        for _ in 0..n {
            yes += guard.should_yield() as u64;
        }
        black_box(yes);
    });
    Uncontended {
        gil_ns,
        pl_ns,
        should_yield_ns,
    }
}

// ---------------------------------------------------------------- (c), (d)

/// Spins for a fixed amount of work; `calibrate` picks the amount that takes
/// about 1 µs, which is a few dozen bytecodes of a real interpreter.
#[inline(never)]
fn work(iters: u32) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..iters {
        x = black_box(x.rotate_left(5) ^ i as u64).wrapping_mul(0x100_0000_01B3);
    }
    x
}

fn calibrate() -> u32 {
    let mut iters = 16u32;
    loop {
        let n = 2_000;
        let t = Instant::now();
        for _ in 0..n {
            black_box(work(iters));
        }
        let per = t.elapsed() / n;
        if per >= Duration::from_nanos(1_000) || iters >= 1 << 20 {
            return iters;
        }
        iters = (iters as u128 * 1_000 / per.as_nanos().max(1)).max(iters as u128 + 1) as u32;
    }
}

/// On-CPU time of the calling thread (Linux: `/proc/thread-self/schedstat`,
/// in ns). Work per CPU-second still means something when other processes
/// take CPUs away from the benchmark, which wall-clock rates do not.
fn thread_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

#[derive(Default)]
struct CpuOut {
    units: u64,
    /// This thread's on-CPU time during the run, if the OS tells.
    cpu_time: Option<Duration>,
    /// Checkpoint that switched -> Gil back.
    waits: Vec<Duration>,
    /// Gil back (or first acquire) -> next forced release.
    slices: Vec<Duration>,
}

/// A CPU-bound interpreter thread: ~1 µs of work, then the eval breaker.
fn cpu_thread(gil: &Gil, iters: u32, start: &Barrier, stop: &AtomicBool) -> CpuOut {
    let mut out = CpuOut::default();
    start.wait();
    let cpu_start = thread_cpu_time();
    let mut g = gil.acquire();
    let mut slice_start = Instant::now();
    while !stop.load(Relaxed) {
        black_box(work(iters));
        out.units += 1;
        if g.should_yield() {
            let asked = Instant::now();
            if g.checkpoint().switched {
                let back = Instant::now();
                out.waits.push(back - asked);
                out.slices.push(asked - slice_start);
                slice_start = back;
            }
        }
    }
    drop(g);
    out.cpu_time = cpu_start.zip(thread_cpu_time()).map(|(a, b)| b - a);
    out
}

/// A thread that blocks 1 ms with the Gil released, again and again; returns
/// each wait from the end of the sleep to having the Gil back.
fn io_thread(gil: &Gil, start: &Barrier, stop: &AtomicBool) -> Vec<Duration> {
    let mut waits = Vec::new();
    start.wait();
    let mut g = gil.acquire();
    while !stop.load(Relaxed) {
        let slept = g.detach(|| {
            thread::sleep(Duration::from_millis(1));
            Instant::now()
        });
        waits.push(slept.elapsed());
    }
    waits
}

#[derive(Default)]
struct Contended {
    cpu: Vec<CpuOut>,
    io_waits: Vec<Duration>,
    elapsed: Duration,
}

impl Contended {
    /// Pools another run's results (rates are then sums over sums).
    fn add(&mut self, other: Contended) {
        self.cpu.extend(other.cpu);
        self.io_waits.extend(other.io_waits);
        self.elapsed += other.elapsed;
    }
}

fn contended(
    interval: Duration,
    policy: SwitchPolicy,
    cpu_threads: usize,
    io: bool,
    iters: u32,
    run_for: Duration,
) -> Contended {
    let gil = Gil::with_switch_interval(interval);
    gil.set_policy(policy);
    let stop = AtomicBool::new(false);
    let start = Barrier::new(cpu_threads + io as usize + 1);
    thread::scope(|s| {
        let cpus: Vec<_> = (0..cpu_threads)
            .map(|_| s.spawn(|| cpu_thread(&gil, iters, &start, &stop)))
            .collect();
        let io = io.then(|| s.spawn(|| io_thread(&gil, &start, &stop)));
        start.wait();
        let t = Instant::now();
        thread::sleep(run_for);
        stop.store(true, Relaxed);
        let cpu = cpus.into_iter().map(|h| h.join().unwrap()).collect();
        let io_waits = io.map_or_else(Vec::new, |h| h.join().unwrap());
        Contended {
            cpu,
            io_waits,
            elapsed: t.elapsed(),
        }
    })
}

// ---------------------------------------------------------------- CPython

/// The CPython script's JSON, by key: a flat lookup inside one section is
/// all we need, so no JSON dependency.
struct Py {
    json: String,
}

impl Py {
    fn get(&self, section: &str, key: &str) -> Option<f64> {
        let at = self.json.find(&format!("\"{section}\": {{"))?;
        let body = &self.json[at..];
        let body = &body[..body.find('}')?];
        let k = body.find(&format!("\"{key}\": "))? + key.len() + 4;
        let v = &body[k..];
        let end = v.find([',', '}']).unwrap_or(v.len());
        v[..end].trim().parse().ok()
    }
    fn version(&self) -> String {
        let at = self.json.find("\"python\": \"").map(|i| i + 11);
        at.and_then(|i| self.json[i..].split('"').next().map(String::from))
            .unwrap_or_else(|| "?".into())
    }
}

fn run_cpython(interval: Duration, run_for: Duration) -> Result<Py, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gil_cpython.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--secs")
        .arg(format!("{}", run_for.as_secs_f64()))
        .arg("--interval-ms")
        .arg(format!("{}", ms(interval)))
        .output()
        .map_err(|e| format!("python3 not run ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Py {
        json: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

// ---------------------------------------------------------------- table

struct Table {
    rows: Vec<[String; 6]>,
}

impl Table {
    fn row(
        &mut self,
        figure: &str,
        ours: String,
        py: String,
        pl: String,
        target: String,
        met: Option<bool>,
    ) {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        self.rows
            .push([figure.into(), ours, py, pl, target, met.into()]);
    }
    fn print(&self) {
        let head = ["figure", "ours", "CPython", "parking_lot", "target", "met?"];
        let mut w = head.map(str::len);
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |r: &[String]| {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let pad = w[i] - c.chars().count();
                    if i == 0 {
                        format!("{c}{}", " ".repeat(pad))
                    } else {
                        format!("{}{c}", " ".repeat(pad))
                    }
                })
                .collect();
            println!("{}", cells.join(" | "));
        };
        line(&head.map(String::from));
        println!("{}", w.map(|n| "-".repeat(n)).join("-|-"));
        for r in &self.rows {
            line(r);
        }
    }
}

fn f_ms(x: f64) -> String {
    format!("{x:.2} ms")
}

fn opt_ms(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), f_ms)
}

fn main() {
    machine::start();
    let run_for = Duration::from_secs_f64(env_f64("GILOCK_BENCH_SECS", 3.0));
    let interval = Duration::from_secs_f64(env_f64("GILOCK_BENCH_INTERVAL_MS", 5.0) / 1e3);
    match std::env::var("GILOCK_BENCH_ONLY").as_deref() {
        Ok("hooks") => {
            hooks::section(interval, calibrate(), run_for);
            return;
        }
        Ok("uncontended") => {
            let u = uncontended();
            println!(
                "(a) uncontended acquire+release: Gil {:.2} ns, parking_lot {:.2} ns, {:.2}x \
                 (target <= 1.1x); should_yield {:.2} ns ({})",
                u.gil_ns,
                u.pl_ns,
                u.gil_ns / u.pl_ns,
                u.should_yield_ns,
                machine::conditions()
            );
            return;
        }
        Ok("loan") => {
            loan::print(interval, calibrate(), run_for);
            return;
        }
        Ok("starvation") => {
            let iters = calibrate();
            let run_for = run_for.max(Duration::from_secs(3)) + Duration::from_millis(500);
            for policy in [SwitchPolicy::Fifo, SwitchPolicy::Interactive] {
                let s = starvation::run(interval, policy, iters, run_for);
                println!(
                    "(f) {policy:?}: worst window / fair share of the Gil time held: CPU threads \
                     {:.0}%, detaching threads {:.0}% (of the window: {:.0}%, {:.0}%); Gil held \
                     {:.0}% (each CPU thread {:.1}%, each detaching thread {:.1}% of the time), \
                     {:.0} switches/s ({:.0} woken ahead), mean wait {:.1} µs; on a core: {} \
                     ({})",
                    100.0 * s.worst_cpu,
                    100.0 * s.worst_io,
                    100.0 * s.worst_cpu_wall,
                    100.0 * s.worst_io_wall,
                    100.0 * s.busy,
                    100.0 * s.held_each.0,
                    100.0 * s.held_each.1,
                    s.switches_per_s,
                    s.woken_ahead_per_s,
                    s.mean_wait.as_secs_f64() * 1e6,
                    s.on_cpu.map_or("?".into(), |(c, d)| format!(
                        "CPU threads {:.0}%, detaching threads {:.0}% of one core",
                        100.0 * c,
                        100.0 * d
                    )),
                    machine::conditions()
                );
            }
            return;
        }
        _ => {}
    }
    let iv = ms(interval);
    println!(
        "gil bench: interval {iv} ms, timed phases {:.1} s each (GILOCK_BENCH_SECS), {} CPUs, \
         {}",
        run_for.as_secs_f64(),
        thread::available_parallelism().map_or(0, |n| n.get()),
        machine::conditions()
    );

    println!("(a, b) uncontended ...");
    let u = uncontended();

    let iters = calibrate();
    println!(
        "(c) one CPU thread alone, then two, Fifo and Interactive ({iters} work iterations ≈ 1 µs \
         per checkpoint) ..."
    );
    // The ceiling (one thread alone) and the pair alternate in three rounds,
    // so that load from other processes, which comes and goes, hits both
    // alike; a short unmeasured run first warms caches and clocks up.
    contended(interval, SwitchPolicy::Fifo, 1, false, iters, run_for / 10);
    let (mut alone, mut pair) = (Contended::default(), Contended::default());
    let mut pair_i = Contended::default();
    for _ in 0..3 {
        alone.add(contended(
            interval,
            SwitchPolicy::Fifo,
            1,
            false,
            iters,
            run_for / 6,
        ));
        pair.add(contended(
            interval,
            SwitchPolicy::Fifo,
            2,
            false,
            iters,
            run_for / 3,
        ));
        alone.add(contended(
            interval,
            SwitchPolicy::Fifo,
            1,
            false,
            iters,
            run_for / 6,
        ));
        pair_i.add(contended(
            interval,
            SwitchPolicy::Interactive,
            2,
            false,
            iters,
            run_for / 3,
        ));
    }
    println!("(d) two CPU threads + one thread sleeping 1 ms in detach, Fifo ...");
    let fifo = contended(interval, SwitchPolicy::Fifo, 2, true, iters, run_for);
    println!("(d) the same, Interactive ...");
    let inter = contended(interval, SwitchPolicy::Interactive, 2, true, iters, run_for);
    // At least three whole 1 s windows.
    let starve_for = run_for.max(Duration::from_secs(3)) + Duration::from_millis(500);
    println!("(f) starvation: 2 CPU threads + 4 detaching threads, Fifo then Interactive ...");
    let starve_fifo = starvation::run(interval, SwitchPolicy::Fifo, iters, starve_for);
    let starve_inter = starvation::run(interval, SwitchPolicy::Interactive, iters, starve_for);

    let py = if cfg!(miri) {
        Err("skipped".to_string())
    } else {
        println!("CPython: benches/gil_cpython.py (c) and (d) ...");
        run_cpython(interval, run_for)
    };
    let py_col = |section: &str, key: &str| match &py {
        Ok(p) => p.get(section, key),
        Err(_) => None,
    };

    // (c) figures.
    // Work per wall-clock second, and per CPU-second of the benchmark's
    // threads (which still means something when other processes take CPUs).
    let units = |c: &Contended| c.cpu.iter().map(|o| o.units).sum::<u64>() as f64;
    let per_cpu_sec = |c: &Contended| {
        let cpu: Option<Duration> = c.cpu.iter().map(|o| o.cpu_time).sum();
        cpu.map(|t| units(c) / t.as_secs_f64())
    };
    let alone_rate = units(&alone) / alone.elapsed.as_secs_f64();
    // Switches/s, wait p50/p99, slice p50/p99 (ms), throughput against one
    // thread alone (per wall-clock and per CPU-second) of a pair's runs.
    let pair_figures = |pair: &Contended| {
        let pair_rate = units(pair) / pair.elapsed.as_secs_f64();
        let keep_cpu = per_cpu_sec(pair)
            .zip(per_cpu_sec(&alone))
            .map(|(p, a)| p / a);
        let mut waits: Vec<Duration> = pair
            .cpu
            .iter()
            .flat_map(|c| c.waits.iter().copied())
            .collect();
        let mut slices: Vec<Duration> = pair
            .cpu
            .iter()
            .flat_map(|c| c.slices.iter().copied())
            .collect();
        waits.sort();
        slices.sort();
        let switches = waits.len() as f64 / pair.elapsed.as_secs_f64();
        let p = |xs: &[Duration], q: f64| {
            if xs.is_empty() {
                f64::NAN
            } else {
                ms(percentile(xs, q))
            }
        };
        (
            switches,
            [
                p(&waits, 50.0),
                p(&waits, 99.0),
                p(&slices, 50.0),
                p(&slices, 99.0),
            ],
            pair_rate / alone_rate,
            keep_cpu,
        )
    };
    let (switches, [w50, w99, s50, s99], keep, keep_cpu) = pair_figures(&pair);
    let (switches_i, [_, w99_i, _, s99_i], keep_i, keep_cpu_i) = pair_figures(&pair_i);

    // (d) figures.
    let io_fig = |c: &Contended| {
        let mut w = c.io_waits.clone();
        w.sort();
        if w.is_empty() {
            (f64::NAN, f64::NAN, 0)
        } else {
            (ms(mean(&w)), ms(percentile(&w, 99.0)), w.len())
        }
    };
    let (fm, f99, fnum) = io_fig(&fifo);
    let (im, i99, inum) = io_fig(&inter);

    let mut t = Table { rows: Vec::new() };
    let ratio = u.gil_ns / u.pl_ns;
    t.row(
        "(a) uncontended acquire+release",
        format!("{:.1} ns ({ratio:.2}x)", u.gil_ns),
        "-".into(),
        format!("{:.1} ns", u.pl_ns),
        "<= 1.1x parking_lot".into(),
        Some(ratio <= 1.1),
    );
    t.row(
        "(b) should_yield",
        format!("{:.2} ns", u.should_yield_ns),
        "-".into(),
        "-".into(),
        "<= 1 ns".into(),
        Some(u.should_yield_ns <= 1.0),
    );
    let ideal = 1.0 / interval.as_secs_f64();
    t.row(
        "(c) switches/s, 2 CPU threads",
        format!("{switches:.0}"),
        py_col("c", "switches_per_s").map_or("n/a".into(), |x| format!("{x:.0}")),
        "-".into(),
        format!("ideal {ideal:.0}"),
        None,
    );
    t.row(
        "(c) wait to get the Gil back, p50",
        f_ms(w50),
        opt_ms(py_col("c", "wait_p50_ms")),
        "-".into(),
        format!("<= {} (1.5 iv)", f_ms(1.5 * iv)),
        Some(w50 <= 1.5 * iv),
    );
    t.row(
        "(c) wait to get the Gil back, p99",
        f_ms(w99),
        opt_ms(py_col("c", "wait_p99_ms")),
        "-".into(),
        format!("<= {} (3 iv)", f_ms(3.0 * iv)),
        Some(w99 <= 3.0 * iv),
    );
    t.row(
        "(c) slice length p50",
        f_ms(s50),
        opt_ms(py_col("c", "slice_p50_ms")),
        "-".into(),
        "-".into(),
        None,
    );
    t.row(
        "(c) slice length p99",
        f_ms(s99),
        opt_ms(py_col("c", "slice_p99_ms")),
        "-".into(),
        format!("<= {} (1.2 iv)", f_ms(1.2 * iv)),
        Some(s99 <= 1.2 * iv),
    );
    let pct = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{:.1}%", 100.0 * x));
    t.row(
        "(c) pair throughput / one thread alone",
        pct(Some(keep)),
        pct(py_col("c", "pair_vs_alone")),
        "-".into(),
        ">= 95%".into(),
        Some(keep >= 0.95),
    );
    t.row(
        "(c) the same, per CPU-second of the threads",
        pct(keep_cpu),
        pct(py_col("c", "pair_vs_alone_cpu")),
        "-".into(),
        ">= 95%".into(),
        keep_cpu.map(|k| k >= 0.95),
    );
    t.row(
        "(c) Interactive: switches/s, 2 CPU threads",
        format!("{switches_i:.0}"),
        "-".into(),
        "-".into(),
        format!("ideal {ideal:.0}"),
        None,
    );
    t.row(
        "(c) Interactive: wait to get the Gil back, p99",
        f_ms(w99_i),
        "-".into(),
        "-".into(),
        format!("<= {} (3 iv)", f_ms(3.0 * iv)),
        Some(w99_i <= 3.0 * iv),
    );
    t.row(
        "(c) Interactive: slice length p99",
        f_ms(s99_i),
        "-".into(),
        "-".into(),
        format!("<= {} (1.2 iv)", f_ms(1.2 * iv)),
        Some(s99_i <= 1.2 * iv),
    );
    t.row(
        "(c) Interactive: pair throughput / one thread alone",
        pct(Some(keep_i)),
        "-".into(),
        "-".into(),
        ">= 95%".into(),
        Some(keep_i >= 0.95),
    );
    t.row(
        "(c) Interactive: the same, per CPU-second",
        pct(keep_cpu_i),
        "-".into(),
        "-".into(),
        ">= 95%".into(),
        keep_cpu_i.map(|k| k >= 0.95),
    );
    t.row(
        &format!("(d) wait after 1 ms I/O, mean, Fifo (n={fnum})"),
        f_ms(fm),
        opt_ms(py_col("d", "wait_mean_ms")),
        "-".into(),
        format!("<= {} (2 iv)", f_ms(2.0 * iv)),
        Some(fm <= 2.0 * iv),
    );
    t.row(
        "(d) wait after 1 ms I/O, p99, Fifo",
        f_ms(f99),
        opt_ms(py_col("d", "wait_p99_ms")),
        "-".into(),
        format!("<= {} (2.5 iv)", f_ms(2.5 * iv)),
        Some(f99 <= 2.5 * iv),
    );
    t.row(
        &format!("(d) wait after 1 ms I/O, mean, Interactive (n={inum})"),
        f_ms(im),
        "-".into(),
        "-".into(),
        format!("<= {} (0.05 iv)", f_ms(0.05 * iv)),
        Some(im <= 0.05 * iv),
    );
    t.row(
        "(d) wait after 1 ms I/O, p99, Interactive",
        f_ms(i99),
        "-".into(),
        "-".into(),
        format!("<= {} (0.2 iv)", f_ms(0.2 * iv)),
        Some(i99 <= 0.2 * iv),
    );
    for (name, s) in [("Fifo", &starve_fifo), ("Interactive", &starve_inter)] {
        let target = (name == "Interactive").then_some(0.8);
        for (who, share, wall) in [
            ("CPU threads", s.worst_cpu, s.worst_cpu_wall),
            ("detaching threads", s.worst_io, s.worst_io_wall),
        ] {
            t.row(
                &format!("(f) starvation, {name}: {who}' worst window / fair share"),
                format!("{} ({} of wall)", pct(Some(share)), pct(Some(wall))),
                "-".into(),
                "-".into(),
                target.map_or("-".into(), |t| format!(">= {:.0}%", 100.0 * t)),
                target.map(|t| share >= t),
            );
        }
    }
    println!();
    t.print();
    println!("({})", machine::conditions());
    println!();
    match &py {
        Ok(p) => println!(
            "CPython {} with sys.setswitchinterval({}); its waits are inferred from gaps in a \
             thread's progress while the other thread ran ((c)) and from sleep time minus the \
             uncontended sleep ((d)).",
            p.version(),
            interval.as_secs_f64()
        ),
        Err(e) => println!("CPython column empty: {e}"),
    }
    println!(
        "(d) Fifo: strict arrival order puts the thread back from I/O behind the CPU-bound thread \
         that waits, so it waits out the holder's slice and that thread's: about 2 intervals."
    );
    println!(
        "(f) fair share {:.1}% of the Gil per thread (max-min: every thread asks for more); worst \
         of {} 1 s windows per thread, as a share of the Gil time held in the window (and of the \
         window); the Gil was held {:.0}% (Fifo) / {:.0}% (Interactive) of the time: on 2 cores \
         the detaching threads' busy work outside the Gil competes with the holder for a core.",
        100.0 * starve_inter.fair,
        starve_inter.windows,
        100.0 * starve_fifo.busy,
        100.0 * starve_inter.busy
    );
    println!();
    hooks::section(interval, iters, run_for);
}

// ---------------------------------------------------------------- (g)

mod loan {
    use super::{machine, work};
    use gilock::{Gil, SwitchPolicy};
    use std::hint::black_box;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::thread;
    use std::time::{Duration, Instant};

    /// How long the detaching thread stays away, at least; each time adds
    /// up to `JITTER_NS`, so that its returns fall at every point of the CPU
    /// thread's work unit rather than at one.
    const AWAY: Duration = Duration::from_nanos(5_000);
    const JITTER_NS: u64 = 1_500;

    /// A counter on a cache line of its own.
    #[repr(align(128))]
    struct Counter(AtomicU64);

    /// The CPU thread's work units per second, and the detaching thread's
    /// returns per second (0 with `detaching` off: the CPU thread alone).
    fn run(gil: &Gil, iters: u32, run_for: Duration, detaching: bool) -> (f64, f64) {
        let stop = AtomicBool::new(false);
        let start = Barrier::new(3);
        let (units, returns) = (Counter(AtomicU64::new(0)), Counter(AtomicU64::new(0)));
        thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                let mut g = gil.acquire();
                while !stop.load(Relaxed) {
                    black_box(work(iters));
                    units.0.fetch_add(1, Relaxed);
                    g.checkpoint();
                }
            });
            s.spawn(|| {
                start.wait();
                if !detaching {
                    return;
                }
                let mut g = gil.acquire();
                let mut rng = 0x2545_F491_4F6C_DD1Du64;
                while !stop.load(Relaxed) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let away = AWAY + Duration::from_nanos(rng % JITTER_NS);
                    g.detach(|| {
                        let begin = Instant::now();
                        while begin.elapsed() < away {
                            std::hint::spin_loop();
                        }
                    });
                    returns.0.fetch_add(1, Relaxed);
                }
            });
            start.wait();
            thread::sleep(Duration::from_millis(100));
            let (u0, r0, t0) = (
                units.0.load(Relaxed),
                returns.0.load(Relaxed),
                Instant::now(),
            );
            thread::sleep(run_for);
            let (u1, r1) = (units.0.load(Relaxed), returns.0.load(Relaxed));
            let elapsed = t0.elapsed().as_secs_f64();
            stop.store(true, Relaxed);
            ((u1 - u0) as f64 / elapsed, (r1 - r0) as f64 / elapsed)
        })
    }

    /// Runs (g) under each policy, each against the CPU thread alone right
    /// before it, and prints a line per policy.
    pub fn print(interval: Duration, iters: u32, run_for: Duration) {
        let run_for = run_for.min(Duration::from_secs(2));
        for policy in [SwitchPolicy::Fifo, SwitchPolicy::Interactive] {
            let gil = Gil::with_switch_interval(interval);
            gil.set_policy(policy);
            let (alone, _) = run(&gil, iters, run_for, false);
            let (units, returns) = run(&gil, iters, run_for, true);
            // The share of the CPU thread's time lost, per return, in µs:
            // what a loan costs. (Under Fifo the few returns each wait out
            // an interval, and the loss is within the two runs' spread.)
            let lost = match policy {
                SwitchPolicy::Interactive => {
                    let us = (1.0 - units / alone.max(1.0)) * 1e6 / returns.max(1.0);
                    format!(", {us:.2} µs lost per return")
                }
                _ => String::new(),
            };
            println!(
                "(g) {policy:?}: a thread detaching for 5-6.5 µs returns {returns:.0} times/s; \
                 the CPU thread does {:.1}% of its work alone{lost} ({})",
                100.0 * units / alone.max(1.0),
                machine::conditions()
            );
        }
    }
}

// ---------------------------------------------------------------- (f)

/// Starvation: two CPU-bound threads against four that hold the Gil about
/// 2 µs and detach about 5 µs of busy work, again and again. Each thread
/// times its own holds (from having the Gil to letting it go) and its waits
/// for the Gil into 1 s windows; the figure is the worst window's Gil time
/// against the thread's max-min fair share.
///
/// The fair share is computed per window from what each thread asked for:
/// the time it held the Gil or waited for it (a thread doing its own work
/// outside the Gil did not ask), water-filled over the Gil time held in the
/// window by all threads. Not over the whole window: on 2 cores the Gil
/// cannot be held all the time here, whatever the policy, because a fair
/// share for the detaching threads (1/6 each: every thread asks for more,
/// a detaching one 2/7) gives them 1.67 cores of busy work outside the Gil
/// beside the holder's one, 2.67 cores of demand. The share of the window
/// against 1/6, and how much of the time the Gil was held at all, are
/// printed too.
mod starvation {
    use super::{thread_cpu_time, work};
    use gilock::{Gil, SwitchPolicy};
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::thread;
    use std::time::{Duration, Instant};

    const CPU_THREADS: usize = 2;
    const IO_THREADS: usize = 4;
    /// Held, then detached, by a detaching thread, in ~1 µs work units.
    const HOLD_UNITS: u32 = 2;
    const DETACH_UNITS: u32 = 5;
    const WINDOW: Duration = Duration::from_secs(1);

    pub struct Starvation {
        /// The worst 1 s window of a CPU thread: its Gil time over its
        /// max-min fair share of the Gil time held in the window, from what
        /// every thread asked for (1.0 = exactly fair).
        pub worst_cpu: f64,
        /// The same for the detaching threads.
        pub worst_io: f64,
        /// The same two against 1/6 of the whole window (wall time).
        pub worst_cpu_wall: f64,
        pub worst_io_wall: f64,
        /// The fair share of the whole window if the cores let every thread
        /// ask for all it needs (1/6).
        pub fair: f64,
        /// Whole windows measured per thread.
        pub windows: usize,
        /// The share of the time any thread held the Gil.
        pub busy: f64,
        /// The share of the run each kind of thread spent on a core, all
        /// threads of the kind together (2 cores: at most 200%), if the OS
        /// tells: whether an idle Gil comes from full cores or from idle
        /// ones.
        pub on_cpu: Option<(f64, f64)>,
        /// Switches per second, and the Gil's mean wait: with the Gil and
        /// the cores idle together, the gap per switch is what a handoff
        /// costs.
        pub switches_per_s: f64,
        pub mean_wait: Duration,
        /// Parked threads woken ahead of their turn per second (see
        /// `GilStats::woken_ahead`).
        pub woken_ahead_per_s: f64,
        /// The share of the time one thread of each kind held the Gil, on
        /// average (CPU threads, detaching threads): whether the detaching
        /// threads' ratio moves with their own holds or with the CPU
        /// threads' (which take what the others leave idle).
        pub held_each: (f64, f64),
    }

    /// Gil time held, and time spent waiting for the Gil, per 1 s window
    /// since `epoch`.
    struct Windows {
        epoch: Instant,
        held: Vec<Duration>,
        waited: Vec<Duration>,
        /// The thread's on-CPU time over its whole run.
        on_cpu: Option<Duration>,
    }

    impl Windows {
        fn new(epoch: Instant) -> Self {
            Self {
                epoch,
                held: Vec::new(),
                waited: Vec::new(),
                on_cpu: None,
            }
        }

        fn add(to: &mut Vec<Duration>, epoch: Instant, from: Instant, until: Instant) {
            let (mut from, until) = (from.max(epoch), until.max(epoch));
            while from < until {
                let i = ((from - epoch).as_nanos() / WINDOW.as_nanos()) as usize;
                let end = (epoch + WINDOW * (i as u32 + 1)).min(until);
                if to.len() <= i {
                    to.resize(i + 1, Duration::ZERO);
                }
                to[i] += end - from;
                from = end;
            }
        }

        fn held(&mut self, from: Instant, until: Instant) {
            Self::add(&mut self.held, self.epoch, from, until);
        }

        fn waited(&mut self, from: Instant, until: Instant) {
            Self::add(&mut self.waited, self.epoch, from, until);
        }
    }

    /// Max-min fair shares of `capacity` among `demands` (water-filling).
    fn max_min(demands: &[f64], capacity: f64) -> Vec<f64> {
        let mut order: Vec<usize> = (0..demands.len()).collect();
        order.sort_by(|&a, &b| demands[a].total_cmp(&demands[b]));
        let mut share = vec![0.0; demands.len()];
        let mut left = capacity;
        for (k, &i) in order.iter().enumerate() {
            let even = left / (demands.len() - k) as f64;
            share[i] = demands[i].min(even);
            left -= share[i];
        }
        share
    }

    /// A CPU-bound thread: ~1 µs of work between checkpoints.
    fn cpu(gil: &Gil, iters: u32, epoch: Instant, stop: &AtomicBool) -> Windows {
        let mut w = Windows::new(epoch);
        let mut g = gil.acquire();
        let mut since = Instant::now();
        while !stop.load(Relaxed) {
            std::hint::black_box(work(iters));
            if g.should_yield() {
                let asked = Instant::now();
                if g.checkpoint().switched {
                    w.held(since, asked);
                    since = Instant::now();
                    w.waited(asked, since);
                }
            }
        }
        w.held(since, Instant::now());
        w
    }

    /// A detaching thread: `HOLD_UNITS` of work holding the Gil (with
    /// checkpoints), then `DETACH_UNITS` of work detached.
    fn detaching(gil: &Gil, iters: u32, epoch: Instant, stop: &AtomicBool) -> Windows {
        let mut w = Windows::new(epoch);
        let mut g = gil.acquire();
        let mut since = Instant::now();
        while !stop.load(Relaxed) {
            for _ in 0..HOLD_UNITS {
                std::hint::black_box(work(iters));
                if g.should_yield() {
                    let asked = Instant::now();
                    if g.checkpoint().switched {
                        w.held(since, asked);
                        since = Instant::now();
                        w.waited(asked, since);
                    }
                }
            }
            w.held(since, Instant::now());
            let done = g.detach(|| {
                for _ in 0..DETACH_UNITS {
                    std::hint::black_box(work(iters));
                }
                Instant::now()
            });
            since = Instant::now();
            w.waited(done, since);
        }
        w
    }

    pub fn run(
        interval: Duration,
        policy: SwitchPolicy,
        iters: u32,
        run_for: Duration,
    ) -> Starvation {
        let gil = Gil::with_switch_interval(interval);
        gil.set_policy(policy);
        let stop = AtomicBool::new(false);
        let start = Barrier::new(CPU_THREADS + IO_THREADS + 1);
        let epoch = std::sync::OnceLock::new();
        let all: Vec<Windows> = thread::scope(|s| {
            let (gil, stop, start, epoch) = (&gil, &stop, &start, &epoch);
            let threads: Vec<_> = (0..CPU_THREADS + IO_THREADS)
                .map(|k| {
                    s.spawn(move || {
                        start.wait();
                        let epoch: Instant = *epoch.wait();
                        let cpu_start = thread_cpu_time();
                        let mut w = if k < CPU_THREADS {
                            cpu(gil, iters, epoch, stop)
                        } else {
                            detaching(gil, iters, epoch, stop)
                        };
                        w.on_cpu = cpu_start.zip(thread_cpu_time()).map(|(a, b)| b - a);
                        w
                    })
                })
                .collect();
            start.wait();
            epoch.set(Instant::now()).unwrap();
            thread::sleep(run_for);
            stop.store(true, Relaxed);
            threads.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let on_cpu = |range: std::ops::Range<usize>| -> Option<f64> {
            let total: Option<Duration> = all[range].iter().map(|w| w.on_cpu).sum();
            total.map(|t| t.as_secs_f64() / run_for.as_secs_f64())
        };
        let on_cpu = on_cpu(0..CPU_THREADS).zip(on_cpu(CPU_THREADS..CPU_THREADS + IO_THREADS));
        let stats = gil.stats();
        let windows = (run_for.as_nanos() / WINDOW.as_nanos()) as usize;
        let at = |v: &[Duration], i: usize| v.get(i).copied().unwrap_or_default().as_secs_f64();
        // Per window: each thread's fair share of the Gil time held in it,
        // from what each asked for (held + waited), against what it got.
        let (mut worst_cpu, mut worst_io) = (f64::INFINITY, f64::INFINITY);
        let mut busy = 0.0;
        for i in 0..windows {
            let held: Vec<f64> = all.iter().map(|w| at(&w.held, i)).collect();
            let asked: Vec<f64> = all
                .iter()
                .map(|w| at(&w.held, i) + at(&w.waited, i))
                .collect();
            busy += held.iter().sum::<f64>();
            let fair = max_min(&asked, held.iter().sum());
            for (k, (&h, &f)) in held.iter().zip(&fair).enumerate() {
                let ratio = if f > 0.0 { h / f } else { 1.0 };
                let worst = if k < CPU_THREADS {
                    &mut worst_cpu
                } else {
                    &mut worst_io
                };
                *worst = worst.min(ratio);
            }
        }
        // Against the whole window, what every thread would ask for if the
        // cores let the Gil be held all the time.
        let nominal: Vec<f64> = (0..CPU_THREADS)
            .map(|_| 1.0)
            .chain(
                (0..IO_THREADS)
                    .map(|_| f64::from(HOLD_UNITS) / f64::from(HOLD_UNITS + DETACH_UNITS)),
            )
            .collect();
        let fair = max_min(&nominal, 1.0);
        let worst_wall = |range: std::ops::Range<usize>| {
            range
                .flat_map(|k| (0..windows).map(move |i| (k, i)))
                .map(|(k, i)| at(&all[k].held, i) / fair[k])
                .fold(f64::INFINITY, f64::min)
        };
        if std::env::var_os("GILOCK_BENCH_VERBOSE").is_some() {
            for (k, w) in all.iter().enumerate() {
                let kind = if k < CPU_THREADS { "cpu" } else { "io " };
                let shares: Vec<String> = (0..windows)
                    .map(|i| {
                        format!(
                            "held {:4.1}% waited {:4.1}%",
                            100.0 * at(&w.held, i),
                            100.0 * at(&w.waited, i)
                        )
                    })
                    .collect();
                println!("    {policy:?} {kind} {k}: {}", shares.join(" | "));
            }
        }
        let held_each = |range: std::ops::Range<usize>| {
            let threads = range.len();
            let held: f64 = all[range]
                .iter()
                .flat_map(|w| (0..windows).map(move |i| at(&w.held, i)))
                .sum();
            held / (threads * windows.max(1)) as f64
        };
        Starvation {
            held_each: (
                held_each(0..CPU_THREADS),
                held_each(CPU_THREADS..CPU_THREADS + IO_THREADS),
            ),
            worst_cpu,
            worst_io,
            worst_cpu_wall: worst_wall(0..CPU_THREADS),
            worst_io_wall: worst_wall(CPU_THREADS..CPU_THREADS + IO_THREADS),
            fair: fair[0],
            windows,
            busy: busy / windows.max(1) as f64,
            on_cpu,
            switches_per_s: stats.switches as f64 / run_for.as_secs_f64(),
            woken_ahead_per_s: stats.woken_ahead as f64 / run_for.as_secs_f64(),
            mean_wait: stats.mean_wait(),
        }
    }
}

// ---------------------------------------------------------------- (e)

/// What event hooks cost: the uncontended acquire + release with no hook
/// (the price of the flag load every transition pays), a no-op hook and the
/// trace recorder; and the (d) scenario under Interactive (two CPU threads
/// and a thread back from 1 ms of I/O) with and without the recorder.
mod hooks {
    use super::{Contended, cpu_thread, io_thread, machine, mean, ms, ns_per_op};
    use gilock::{Gil, GilEvent, GilHook, SwitchPolicy, TraceRecorder};
    use std::hint::black_box;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::{Arc, Barrier};
    use std::thread;
    use std::time::{Duration, Instant};

    fn uncontended(hook: Option<Arc<GilHook>>, recorder: Option<&TraceRecorder>) -> f64 {
        let gil = Gil::new();
        drop(gil.acquire());
        gil.set_event_hook(hook);
        ns_per_op(5, |n| {
            // Spans pile up at one per iteration: start each round empty.
            if let Some(r) = recorder {
                r.clear();
            }
            for _ in 0..n {
                drop(black_box(&gil).acquire());
            }
        })
    }

    fn convoy(
        hook: Option<Arc<GilHook>>,
        iters: u32,
        interval: Duration,
        run_for: Duration,
    ) -> Contended {
        let gil = Gil::with_switch_interval(interval);
        gil.set_policy(SwitchPolicy::Interactive);
        gil.set_event_hook(hook);
        let stop = AtomicBool::new(false);
        let start = Barrier::new(4);
        thread::scope(|s| {
            let cpus: Vec<_> = (0..2)
                .map(|_| s.spawn(|| cpu_thread(&gil, iters, &start, &stop)))
                .collect();
            let io = s.spawn(|| io_thread(&gil, &start, &stop));
            start.wait();
            let t = Instant::now();
            thread::sleep(run_for);
            stop.store(true, Relaxed);
            Contended {
                cpu: cpus.into_iter().map(|h| h.join().unwrap()).collect(),
                io_waits: io.join().unwrap(),
                elapsed: t.elapsed(),
            }
        })
    }

    pub fn section(interval: Duration, iters: u32, run_for: Duration) {
        println!(
            "(e) event hooks: uncontended, then (d) Interactive with and without the recorder ..."
        );
        let noop: Arc<GilHook> = Arc::new(|e: &GilEvent<'_>| {
            black_box(e);
        });
        let (mut none, mut with_noop, mut with_rec) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
        // Alternate so all three see the same machine conditions.
        for _ in 0..3 {
            none = none.min(uncontended(None, None));
            with_noop = with_noop.min(uncontended(Some(Arc::clone(&noop)), None));
            let rec = TraceRecorder::new();
            with_rec = with_rec.min(uncontended(Some(rec.hook()), Some(&rec)));
        }
        let (mut off, mut on) = (Contended::default(), Contended::default());
        let mut spans = 0;
        for _ in 0..3 {
            off.add(convoy(None, iters, interval, run_for / 3));
            let rec = TraceRecorder::new();
            on.add(convoy(Some(rec.hook()), iters, interval, run_for / 3));
            spans += rec.spans().len();
        }
        let units = |c: &Contended| {
            c.cpu.iter().map(|o| o.units).sum::<u64>() as f64 / c.elapsed.as_secs_f64()
        };
        let io_rate = |c: &Contended| c.io_waits.len() as f64 / c.elapsed.as_secs_f64();
        let io_mean = |c: &Contended| ms(mean(&c.io_waits));
        let cost = 100.0 * (1.0 - units(&on) / units(&off));
        println!();
        println!("{:<52} {:>14} {:>14}", "(e) figure", "no hook", "with hook");
        println!(
            "{:<52} {:>11.1} ns {:>11.1} ns",
            "uncontended acquire+release, no-op hook", none, with_noop
        );
        println!(
            "{:<52} {:>11.1} ns {:>11.1} ns",
            "uncontended acquire+release, TraceRecorder", none, with_rec
        );
        println!(
            "{:<52} {:>14.0} {:>14.0}",
            "(d) Interactive: CPU work units/s",
            units(&off),
            units(&on)
        );
        println!(
            "{:<52} {:>14.0} {:>14.0}",
            "(d) Interactive: I/O round trips/s",
            io_rate(&off),
            io_rate(&on)
        );
        println!(
            "{:<52} {:>11.3} ms {:>11.3} ms",
            "(d) Interactive: wait after 1 ms I/O, mean",
            io_mean(&off),
            io_mean(&on)
        );
        // Throughput differences between runs are mostly noise from other
        // processes; the recorder's own cost is its price per span (one
        // uncontended acquire+release makes one span) times the spans.
        let estimate =
            100.0 * spans as f64 * (with_rec - none).max(0.0) * 1e-9 / on.elapsed.as_secs_f64();
        println!(
            "recorder overhead on CPU throughput: measured {cost:.1}%, estimated {estimate:.3}% \
             ({spans} spans x {:.0} ns over {:.1} s; target <= 5%; {})",
            with_rec - none,
            on.elapsed.as_secs_f64(),
            machine::conditions()
        );
    }
}
