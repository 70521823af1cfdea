//! The convoy effect (Beazley, bpo-7946), measured: an echo server thread
//! inside the interpreter, a client outside it doing small UDP round trips
//! on loopback, and 0, 1, 2 or 4 CPU-bound interpreter threads, under each
//! `SwitchPolicy`, side by side with CPython running the same experiment
//! (`examples/convoy_cpython.py`, when `python3` is on the PATH). The
//! targets of `SwitchPolicy::Interactive` are printed beside its figures.
//!
//! ```text
//! cargo run --release --example convoy [-- --seconds 2 --no-python]
//! ```
//!
//! - The server thread holds the Gil between socket calls and detaches
//!   around each blocking one (`recv_from`, `send_to`), as CPython's socket
//!   module releases the GIL; per message it does about 2 µs of
//!   interpreter work with the Gil held, with checkpoints.
//! - Each CPU thread runs about 1 µs of work between checkpoints and counts
//!   the units it completes.
//! - The client is a plain thread (it never takes the Gil): send a 16-byte
//!   datagram, wait for the echo, repeat, for `--seconds` per cell.
//! - Beside the CPU threads' work as a share of Fifo's, it prints the work
//!   they lost per round trip: the share falls as the echo runs faster,
//!   whatever a loan costs (under Fifo the echo barely runs), so the loss
//!   per round trip, against the echo's own work, is what a loan costs.
//!
//! Everything runs on 127.0.0.1, every loop ends at its deadline, and every
//! socket read has a timeout. Default: 8 cells of 2 s each and CPython's 4,
//! about 30 s. Figures taken while other processes compete for the CPUs
//! say little: the first and last lines print the load average and the
//! CPU time stolen by the hypervisor or used by other processes meanwhile.

use gilock::{Gil, SwitchPolicy};
use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

#[path = "../benches/common/machine.rs"]
mod machine;

/// How long a socket read may block before its loop re-checks its deadline.
const READ_TIMEOUT: Duration = Duration::from_millis(50);
/// Time for every thread to reach its loop before the client measures.
const WARMUP: Duration = Duration::from_millis(100);
const CPU_COUNTS: [usize; 4] = [0, 1, 2, 4];
/// The switch interval of every cell (CPython's default).
const INTERVAL: Duration = Duration::from_millis(5);

/// The targets of `SwitchPolicy::Interactive` in this experiment.
mod target {
    /// Round trips with CPU threads, as a share of the rate without.
    pub const RATE_VS_NO_CPU: f64 = 0.60;
    /// The p99 of one round trip, in switch intervals.
    pub const P99_INTERVALS: f64 = 0.1;
    /// The CPU threads' work under Interactive as a share of under Fifo.
    pub const CPU_VS_FIFO: f64 = 0.85;
}

struct Args {
    seconds: f64,
    python: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        seconds: 2.0,
        python: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                args.seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s: &f64| *s > 0.0 && *s <= 600.0)
                    .unwrap_or_else(|| usage("--seconds takes a number of seconds (0 < S <= 600)"));
            }
            "--no-python" => args.python = false,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    args
}

fn usage(error: &str) -> ! {
    if !error.is_empty() {
        eprintln!("convoy: {error}");
    }
    eprintln!(
        "USAGE: cargo run --release --example convoy -- [--seconds S] [--no-python]\n\
         \n\
         --seconds S   measuring time per cell (8 cells), fractions ok  [default: 2]\n\
         --no-python   skip the CPython column (examples/convoy_cpython.py)"
    );
    std::process::exit(if error.is_empty() { 0 } else { 2 });
}

/// One cell of the table.
#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    round_trips_per_s: f64,
    p99_us: f64,
    mean_us: f64,
    /// Units of about 1 µs of work per second, all CPU threads together.
    cpu_units_per_s: f64,
    /// The CPU threads' time on a core, all together, as a share of the
    /// cell's time (Linux; `None` elsewhere). One of them holds the Gil
    /// at a time, so up to 100% is work or spinning for the Gil; what falls
    /// short went to the echo server and the client, on a machine with few
    /// cores, or to parked threads' wake-ups.
    cpu_on_core: Option<f64>,
}

/// Work units the echo server does per message, holding the Gil.
const ECHO_UNITS: u32 = 2;

/// Steps of `work` that take about 1 µs here: the fastest of several
/// timings, so that a moment of load on the machine does not halve it.
fn calibrate() -> u64 {
    const STEPS: u64 = 1 << 16;
    let fastest = (0..10)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(work(1, STEPS));
            start.elapsed()
        })
        .min()
        .unwrap();
    let per_step_ns = fastest.as_nanos() as f64 / STEPS as f64;
    ((1000.0 / per_step_ns.max(1e-3)) as u64).clamp(1, 1 << 20)
}

/// `n` steps of a pseudo-random walk the optimiser cannot fold.
#[inline(never)]
fn work(mut x: u64, n: u64) -> u64 {
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = std::hint::black_box(x);
    }
    x
}

/// A counter on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
struct Counter(AtomicU64);

fn run_cell(policy: SwitchPolicy, cpu_threads: usize, measure: Duration, unit: u64) -> Cell {
    let gil = Arc::new(Gil::with_switch_interval(INTERVAL));
    gil.set_policy(policy);
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind the server socket");
    server.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind the client socket");
    client.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    client.connect(server.local_addr().unwrap()).unwrap();

    // Every thread stops by this deadline even if the stop flag were lost.
    let hard_end = Instant::now() + WARMUP + measure + Duration::from_secs(5);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(cpu_threads + 2));
    let counters: Arc<Vec<Counter>> =
        Arc::new((0..cpu_threads).map(|_| Counter::default()).collect());

    let cpu: Vec<_> = (0..cpu_threads)
        .map(|i| {
            let (gil, stop, start, counters) =
                (gil.clone(), stop.clone(), start.clone(), counters.clone());
            let name = format!("{CPU_THREAD_NAME}{i}");
            thread::Builder::new()
                .name(name)
                .spawn(move || {
                    start.wait();
                    let mut guard = gil.acquire();
                    let mut x = i as u64 + 1;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < hard_end {
                        for _ in 0..64 {
                            x = work(x, unit);
                            counters[i].0.fetch_add(1, Ordering::Relaxed);
                            guard.checkpoint();
                        }
                    }
                    std::hint::black_box(x);
                })
                .expect("spawn a CPU thread")
        })
        .collect();

    let echo = {
        let (gil, stop, start) = (gil.clone(), stop.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            let mut guard = gil.acquire();
            let mut buf = [0u8; 64];
            let mut x = 7u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < hard_end {
                let Ok((len, from)) = guard.detach(|| server.recv_from(&mut buf)) else {
                    continue; // read timeout: look at the stop flag
                };
                // A little interpreter work per message, with checkpoints.
                for _ in 0..ECHO_UNITS {
                    x = work(x, unit);
                    guard.checkpoint();
                }
                let _ = guard.detach(|| server.send_to(&buf[..len], from));
            }
            std::hint::black_box(x);
        })
    };

    start.wait();
    thread::sleep(WARMUP);
    let cpu_before: u64 = counters.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
    let on_core_before = cpu_threads_on_core_ns();
    let begin = Instant::now();
    let end = begin + measure;
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut seq = 0u64;
    let mut reply = [0u8; 64];
    let mut now = begin;
    while now < end {
        seq += 1;
        let sent = now;
        client
            .send(&seq.to_le_bytes())
            .expect("send to the echo server");
        // Read until our own echo comes back (a late echo of an earlier
        // datagram is skipped) or the read times out.
        loop {
            match client.recv(&mut reply) {
                Ok(8) if reply[..8] == seq.to_le_bytes() => {
                    now = Instant::now();
                    if latencies.len() < latencies.capacity() {
                        latencies.push((now - sent).as_micros().min(u32::MAX as u128) as u32);
                    }
                    break;
                }
                Ok(_) => continue,
                Err(_) => {
                    now = Instant::now();
                    break;
                }
            }
        }
    }
    let elapsed = begin.elapsed().as_secs_f64();
    let cpu_after: u64 = counters.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
    let on_core = on_core_before
        .zip(cpu_threads_on_core_ns())
        .filter(|_| cpu_threads > 0)
        .map(|(a, b)| (b - a) as f64 / 1e9 / elapsed);
    stop.store(true, Ordering::Relaxed);
    echo.join().expect("the echo server thread panicked");
    for t in cpu {
        t.join().expect("a CPU thread panicked");
    }

    latencies.sort_unstable();
    let p99 = latencies
        .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0);
    let mean = if latencies.is_empty() {
        0.0
    } else {
        latencies.iter().map(|&l| f64::from(l)).sum::<f64>() / latencies.len() as f64
    };
    Cell {
        round_trips_per_s: latencies.len() as f64 / elapsed,
        p99_us: f64::from(p99),
        mean_us: mean,
        cpu_units_per_s: (cpu_after - cpu_before) as f64 / elapsed,
        cpu_on_core: on_core,
    }
}

/// The name of each CPU thread, followed by its number.
const CPU_THREAD_NAME: &str = "convoy-cpu-";

/// The time the CPU threads have spent on a core, in ns, all together
/// (the first field of each thread's `/proc/self/task/*/schedstat`); `None`
/// where that is not readable (not Linux, no schedstats).
fn cpu_threads_on_core_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        // The kernel truncates thread names to 15 bytes: the prefix fits.
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if name.starts_with(CPU_THREAD_NAME) {
            let stat = std::fs::read_to_string(dir.join("schedstat")).ok()?;
            total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// Runs `examples/convoy_cpython.py`; `None` (with a note on stderr) if
/// python3 is missing or the script fails.
fn run_cpython(seconds: f64) -> Option<Vec<Cell>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/convoy_cpython.py");
    let output = match Command::new("python3")
        .arg(script)
        .arg("--seconds")
        .arg(seconds.to_string())
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            eprintln!("convoy: no CPython column (python3: {e})");
            return None;
        }
    };
    if !output.status.success() {
        eprintln!(
            "convoy: no CPython column ({} failed: {})",
            script,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let cells: Option<Vec<Cell>> = CPU_COUNTS
        .iter()
        .map(|n| {
            // One object per line: {"cpu_threads": N, "round_trips_per_s": ..., ...}
            let line = text
                .lines()
                .find(|l| l.contains(&format!("\"cpu_threads\": {n},")))?;
            Some(Cell {
                round_trips_per_s: json_number(line, "round_trips_per_s")?,
                p99_us: json_number(line, "p99_us")?,
                mean_us: json_number(line, "mean_us")?,
                cpu_units_per_s: json_number(line, "cpu_units_per_s")?,
                cpu_on_core: None,
            })
        })
        .collect();
    if cells.is_none() {
        eprintln!("convoy: no CPython column (unexpected output: {text})");
    }
    cells
}

/// The number after `"key": ` in a flat JSON object on one line.
fn json_number(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn main() {
    machine::start();
    let args = parse_args();
    let measure = Duration::from_secs_f64(args.seconds);
    let unit = calibrate();
    let policies = [SwitchPolicy::Fifo, SwitchPolicy::Interactive];
    println!(
        "convoy: UDP echo on 127.0.0.1, server inside the interpreter, client outside; \
         {:.1} s per cell, switch interval {} ms, work unit {unit} steps (~1 µs), {} cores, \
         {}",
        args.seconds,
        INTERVAL.as_millis(),
        thread::available_parallelism().map_or(0, |n| n.get()),
        machine::conditions()
    );
    let mut ours = [[Cell::default(); CPU_COUNTS.len()]; 2];
    for (c, &n) in CPU_COUNTS.iter().enumerate() {
        for (p, &policy) in policies.iter().enumerate() {
            let cell_conditions = machine::Since::start();
            ours[p][c] = run_cell(policy, n, measure, unit);
            eprintln!(
                "  {policy:?}, {n} CPU thread(s): {:?} ({})",
                ours[p][c],
                cell_conditions.conditions()
            );
        }
    }
    let cpython = if args.python {
        run_cpython(args.seconds)
    } else {
        None
    };

    let columns: Vec<(&str, Vec<Cell>)> = [
        ("gilock Fifo", ours[0].to_vec()),
        ("gilock Interactive", ours[1].to_vec()),
    ]
    .into_iter()
    .chain(cpython.map(|c| ("CPython 3 (5 ms)", c)))
    .collect();
    let mut header = format!("{:<32}", "");
    for (name, _) in &columns {
        header += &format!("{name:>20}");
    }
    header += &format!("{:>28}{:>6}", "Interactive target", "met?");
    println!("\n{header}");
    let p99_target_us = target::P99_INTERVALS * INTERVAL.as_secs_f64() * 1e6;
    let interactive = &ours[1];
    let fifo = &ours[0];
    // A row: its label, the figure of a cell given the column's no-CPU
    // cell, and Interactive's target and whether it is met, where it has one.
    type Figure = fn(&Cell, &Cell) -> String;
    type Row = (&'static str, Figure, Option<(String, bool)>);
    let mut met_all = true;
    for (c, &n) in CPU_COUNTS.iter().enumerate() {
        println!("{n} CPU thread(s)");
        let rate_share =
            interactive[c].round_trips_per_s / interactive[0].round_trips_per_s.max(1e-9);
        let cpu_share = interactive[c].cpu_units_per_s / fifo[c].cpu_units_per_s.max(1e-9);
        let rows: Vec<Row> = vec![
            (
                "round trips/s",
                |c, _| format!("{:.0}", c.round_trips_per_s),
                None,
            ),
            (
                "  vs no CPU thread",
                |c, base| {
                    format!(
                        "{:.0}%",
                        100.0 * c.round_trips_per_s / base.round_trips_per_s.max(1e-9)
                    )
                },
                (n > 0).then(|| {
                    (
                        format!(">= {:.0}%", 100.0 * target::RATE_VS_NO_CPU),
                        rate_share >= target::RATE_VS_NO_CPU,
                    )
                }),
            ),
            (
                "  mean round trip",
                |c, _| format!("{:.0} µs", c.mean_us),
                None,
            ),
            (
                "  p99 round trip",
                |c, _| format!("{:.0} µs", c.p99_us),
                (n > 0).then(|| {
                    (
                        format!("<= {p99_target_us:.0} µs ({} iv)", target::P99_INTERVALS),
                        interactive[c].p99_us <= p99_target_us,
                    )
                }),
            ),
            (
                "CPU work units/s (all threads)",
                |c, _| format!("{:.0}", c.cpu_units_per_s),
                None,
            ),
            (
                "  CPU threads on a core (sum)",
                |c, _| {
                    c.cpu_on_core
                        .map_or("?".into(), |s| format!("{:.0}%", 100.0 * s))
                },
                None,
            ),
        ];
        for (label, figure, goal) in &rows {
            if n == 0 && label.trim_start().starts_with("CPU") {
                continue;
            }
            let mut line = format!("  {label:<30}");
            for (_, cells) in &columns {
                line += &format!("{:>20}", figure(&cells[c], &cells[0]));
            }
            if let Some((goal, met)) = goal {
                met_all &= met;
                line += &format!("{goal:>28}{:>6}", if *met { "yes" } else { "NO" });
            }
            println!("{line}");
        }
        if n > 0 {
            let met = cpu_share >= target::CPU_VS_FIFO;
            met_all &= met;
            println!(
                "  {:<30}{:>40}{:>20}{:>28}{:>6}",
                "CPU work Interactive/Fifo",
                format!("{:.0}%", 100.0 * cpu_share),
                "",
                format!(">= {:.0}%", 100.0 * target::CPU_VS_FIFO),
                if met { "yes" } else { "NO" }
            );
            // The share above falls with the echo's rate whatever a loan
            // costs (Fifo's echo barely runs): per round trip, what the CPU
            // threads lost, of which the echo's own work is ECHO_UNITS.
            let lost = (fifo[c].cpu_units_per_s - interactive[c].cpu_units_per_s)
                / interactive[c].round_trips_per_s.max(1e-9);
            println!(
                "  {:<30}{:>40}   (the echo's own work: {ECHO_UNITS})",
                "  CPU units lost per round trip",
                format!("{lost:.1}"),
            );
            // Of those, the units the CPU threads could not do because the
            // operating system ran the echo server and the client on their
            // core: their time off a core beyond Fifo's, at Fifo's rate of
            // work per second on a core.
            if let (Some(fifo_on), Some(ours_on)) =
                (fifo[c].cpu_on_core, interactive[c].cpu_on_core)
            {
                let per_core_s = fifo[c].cpu_units_per_s / fifo_on.max(1e-9);
                let off_core = (fifo_on - ours_on).max(0.0) * per_core_s
                    / interactive[c].round_trips_per_s.max(1e-9);
                println!(
                    "  {:<30}{:>40}",
                    "    of which off a core",
                    format!("{off_core:.1}"),
                );
            }
        }
    }
    println!(
        "\nInteractive {} its targets here ({}). CPython's CPU units are loop \
         iterations of Python code, not comparable with ours in absolute terms.",
        if met_all {
            "meets all"
        } else {
            "misses some of"
        },
        machine::conditions()
    );
}
