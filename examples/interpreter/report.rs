//! Percentiles, the per-thread table and the ASCII histogram of Gil waits.

use std::time::Duration;

/// The `p`-th percentile (0..=100) of `sorted`, nearest-rank; None if empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// "1.23" in ms, or "-" when there is no sample.
pub fn ms_or_dash(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), |d| format!("{:.2}", ms(d)))
}

/// 12345678 -> "12.3M": progress lines stay narrow.
pub fn si(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2}G", x / 1e9),
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// Bucket upper bounds in ms; log-like, so that both the sub-millisecond
/// waits of an uncontended Gil and the multi-interval waits of a convoy show.
const BOUNDS_MS: [f64; 9] = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];
const BAR_WIDTH: usize = 48;

/// Prints a histogram of `samples` in log-scale buckets, one line per bucket,
/// with a bar of `#` scaled to the fullest bucket.
pub fn histogram(title: &str, samples: &[Duration]) {
    println!("{title} ({} samples)", samples.len());
    if samples.is_empty() {
        println!("  (none)");
        return;
    }
    let mut counts = [0usize; BOUNDS_MS.len() + 1];
    for s in samples {
        let m = ms(*s);
        let i = BOUNDS_MS
            .iter()
            .position(|&b| m < b)
            .unwrap_or(BOUNDS_MS.len());
        counts[i] += 1;
    }
    let max = *counts.iter().max().unwrap_or(&1);
    for (i, &n) in counts.iter().enumerate() {
        let label = match i {
            0 => format!("{:>4} - {:<4} ms", 0, BOUNDS_MS[0]),
            i if i == BOUNDS_MS.len() => format!("{:>11} ms", format!("> {}", BOUNDS_MS[i - 1])),
            i => format!("{:>4} - {:<4} ms", BOUNDS_MS[i - 1], BOUNDS_MS[i]),
        };
        // A non-empty bucket always gets at least one mark, so rare but
        // present long waits (the interesting ones) stay visible.
        let len = if n == 0 {
            0
        } else {
            (n * BAR_WIDTH).div_ceil(max)
        };
        println!(
            "  {label} |{:<width$}| {n:>7} {:>5.1}%",
            "#".repeat(len),
            100.0 * n as f64 / samples.len() as f64,
            width = BAR_WIDTH
        );
    }
}

/// One row of the per-thread table.
pub struct Row {
    pub name: String,
    pub kind: &'static str,
    pub ops: u64,
    pub acquisitions: u64,
    pub forced: u64,
    pub voluntary: u64,
    /// This thread's own wait measurements, sorted.
    pub waits: Vec<Duration>,
}

pub fn table(rows: &[Row]) {
    println!(
        "{:<8} {:<4} {:>12} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "thread", "kind", "ops", "acquired", "forced", "volunt.", "wait p50", "p99", "max ms"
    );
    for r in rows {
        println!(
            "{:<8} {:<4} {:>12} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
            r.name,
            r.kind,
            r.ops,
            r.acquisitions,
            r.forced,
            r.voluntary,
            ms_or_dash(percentile(&r.waits, 50.0)),
            ms_or_dash(percentile(&r.waits, 99.0)),
            ms_or_dash(r.waits.last().copied()),
        );
    }
}

/// One thread's line in the contention table: the library's counters.
pub struct ContentionRow {
    pub name: String,
    pub stats: gilock::ThreadStats,
}

/// Per thread: how often it waited for the Gil, for how long, and what share
/// of the run that was; from `ThreadState::stats`, no sampling of our own.
pub fn contention_table(rows: &[ContentionRow], run: Duration) {
    println!(
        "{:<8} {:>9} {:>8} {:>10} {:>10} {:>11} {:>8} {:>8}",
        "thread", "acquired", "waited", "mean ms", "max ms", "waiting %", "forced", "volunt."
    );
    for r in rows {
        let s = &r.stats;
        println!(
            "{:<8} {:>9} {:>8} {:>10.3} {:>10.3} {:>10.1}% {:>8} {:>8}",
            r.name,
            s.acquisitions,
            s.waits(),
            ms(s.mean_wait()),
            ms(s.longest_wait),
            100.0 * s.total_wait.as_secs_f64() / run.as_secs_f64(),
            s.forced_releases,
            s.voluntary_releases,
        );
    }
}
