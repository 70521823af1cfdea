//! What else the machine was doing while a figure was taken, printed beside
//! the figure: the 1-minute load average, and, since the previous reading,
//! the share of all CPU time the hypervisor stole (a virtual machine's CPU
//! that runs someone else's work) and the share other processes used.
//!
//! On a shared 2-core virtual machine steal is what swings switch timings
//! most, for CPython and us alike, and the load average does not show it: a
//! figure taken with steal above a few percent is not evidence. Linux only;
//! elsewhere each value prints as `?`.
//!
//! Each line also gives the time a cache line takes to go from one core to
//! another and back, halved (`core-to-core`), measured right then. The
//! hypervisor moves a virtual machine's cores between physical ones: on
//! the 2-core AMD EPYC machine of December 2026 this flipped between about
//! 35 ns and 150-250 ns every few seconds, and a loan of the Gil cost 0.65
//! µs in the first state and 2 µs in the second. Figures taken in different
//! states are not comparable; so each is printed with its own.
//!
//! Shared by the benches and `examples/convoy.rs` through `#[path]`, so that
//! they all print the same line.

// Each includer uses part of it.
#![allow(dead_code)]

use std::sync::Mutex;

/// CPU time in clock ticks, machine-wide and for this process.
#[derive(Clone, Copy)]
struct Ticks {
    total: u64,
    busy: u64,
    steal: u64,
    /// This process's own CPU time plus that of its children it waited for
    /// (the CPython run of the convoy example is ours, not "others").
    own: u64,
}

impl Ticks {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // user nice system idle iowait irq softirq steal (guest time is
        // already inside user and nice).
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|t| t.parse().ok())
            .collect::<Option<_>>()?;
        let total: u64 = cpu.iter().sum();
        let idle = cpu.get(3)? + cpu.get(4)?;
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After the parenthesised name: field 3 (state) is index 0, so
        // utime, stime, cutime, cstime (fields 14-17) are indices 11-14.
        let fields: Vec<&str> = own_stat[own_stat.rfind(')')? + 2..]
            .split_whitespace()
            .collect();
        let own = fields
            .get(11..15)?
            .iter()
            .map(|f| f.parse::<u64>().ok())
            .sum::<Option<u64>>()?;
        Some(Self {
            total,
            busy: total - idle,
            steal: *cpu.get(7)?,
            own,
        })
    }
}

/// The reading the next line is measured from.
static LAST: Mutex<Option<Ticks>> = Mutex::new(None);

/// Starts the clock for the first [`conditions`] line; call it first thing.
pub fn start() {
    *LAST.lock().unwrap() = Ticks::read();
}

/// `load average L, steal S%, other processes O% since the last reading`,
/// where the shares are of all CPU time since [`start`] or the previous
/// call.
pub fn conditions() -> String {
    let now = Ticks::read();
    let before = std::mem::replace(&mut *LAST.lock().unwrap(), now);
    describe(before, now, "since the last reading")
}

/// A reading of its own, for a figure inside a run whose [`conditions`]
/// lines cover more (one cell of the convoy table, say).
pub struct Since(Option<Ticks>);

impl Since {
    /// Starts the clock.
    pub fn start() -> Self {
        Self(Ticks::read())
    }

    /// As [`conditions`], since [`Since::start`].
    pub fn conditions(&self) -> String {
        describe(self.0, Ticks::read(), "meanwhile")
    }
}

fn describe(before: Option<Ticks>, now: Option<Ticks>, span: &str) -> String {
    let load = load_average();
    let core_to_core = core_to_core_ns().map_or("?".into(), |ns| format!("{ns:.0} ns"));
    let Some((a, b)) = before.zip(now) else {
        return format!(
            "load average {load}, steal ?, other processes ?, core-to-core {core_to_core}"
        );
    };
    // Fewer ticks than a quarter of a second on one CPU: no share to tell.
    let total = b.total.saturating_sub(a.total);
    if total < 25 {
        return format!("load average {load}, core-to-core {core_to_core}");
    }
    let steal = b.steal.saturating_sub(a.steal);
    let others = (b.busy.saturating_sub(a.busy))
        .saturating_sub(b.own.saturating_sub(a.own))
        .saturating_sub(steal);
    let share = |ticks: u64| 100.0 * ticks as f64 / total as f64;
    format!(
        "load average {load}, steal {:.1}%, other processes {:.1}% {span}, \
         core-to-core {core_to_core}",
        share(steal),
        share(others)
    )
}

/// Half the time a value takes to go from this thread to another and back
/// through one cache line, in ns: the median of 21 rounds of 1 000 round
/// trips, about 5-50 ms in all. `None` with fewer than two cores, where the
/// two threads would take turns on one.
fn core_to_core_ns() -> Option<f64> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    /// The line, on its own.
    #[repr(align(128))]
    struct Line(AtomicU64);

    const ROUNDS: u64 = 21;
    const TRIPS: u64 = 1_000;
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return None;
    }
    let line = Line(AtomicU64::new(0));
    let mut rounds = std::thread::scope(|s| {
        // The other thread answers each odd value with the next even one.
        s.spawn(|| {
            for i in 0..ROUNDS * TRIPS {
                while line.0.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                line.0.store(2 * i + 2, Ordering::Release);
            }
        });
        (0..ROUNDS)
            .map(|r| {
                let start = Instant::now();
                for i in r * TRIPS..(r + 1) * TRIPS {
                    line.0.store(2 * i + 1, Ordering::Release);
                    while line.0.load(Ordering::Acquire) != 2 * i + 2 {
                        std::hint::spin_loop();
                    }
                }
                start.elapsed().as_nanos() as f64 / (2 * TRIPS) as f64
            })
            .collect::<Vec<f64>>()
    });
    rounds.sort_by(f64::total_cmp);
    Some(rounds[rounds.len() / 2])
}

/// The 1-minute load average.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}
