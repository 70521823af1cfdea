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
//! Shared by the benches and `examples/convoy.rs` through `#[path]`, so that
//! they all print the same line.

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
    let shares = before.zip(now).and_then(|(a, b)| {
        let total = b.total.checked_sub(a.total).filter(|&t| t > 0)? as f64;
        let steal = b.steal.saturating_sub(a.steal);
        let others = (b.busy.saturating_sub(a.busy))
            .saturating_sub(b.own.saturating_sub(a.own))
            .saturating_sub(steal);
        Some((100.0 * steal as f64 / total, 100.0 * others as f64 / total))
    });
    let shares = match shares {
        Some((steal, others)) => format!("steal {steal:.1}%, other processes {others:.1}%"),
        None => "steal ?, other processes ?".into(),
    };
    format!(
        "load average {}, {shares} since the last reading",
        load_average()
    )
}

/// The 1-minute load average.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}
