//! Counters of a Gil and of each thread, and their public snapshots.
//!
//! Every counter is a relaxed atomic. Most of them are only ever written by
//! the thread that holds the Gil (or, for a thread's own counters, by that
//! thread), so they are bumped with a load and a store instead of a
//! read-modify-write: that keeps the uncontended acquire + release cheap.
//! Readers may see a snapshot whose fields come from slightly different
//! moments.
//!
//! Waits are recorded only when a thread had to wait (the slow path), so the
//! histograms cost the uncontended acquire nothing.

use crate::sync::{AtomicU64, Ordering, const_fn};
use core::fmt;
use core::time::Duration;

/// Upper bounds (exclusive) of the [`WaitHistogram`] buckets, in
/// microseconds; the last bucket holds everything from 100 ms up.
const BOUNDS_MICROS: [u64; WaitHistogram::BUCKETS - 1] = [
    100, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
];

/// How many waits for the Gil ended in each of ten fixed buckets:
/// `< 0.1`, `< 0.5`, `< 1`, `< 2`, `< 5`, `< 10`, `< 20`, `< 50`, `< 100` and
/// `>= 100` ms. Log-like, so that both the sub-millisecond waits of a lightly
/// contended Gil and the multi-interval waits of a convoy show.
///
/// Only waits that ended with the Gil taken are counted, so the buckets add
/// up to the acquisitions that had to wait (the uncontended fast path does
/// not count).
///
/// ```
/// use gilock::WaitHistogram;
/// use std::time::Duration;
///
/// assert_eq!(WaitHistogram::bucket_of(Duration::from_micros(50)), 0);
/// assert_eq!(WaitHistogram::bucket_of(Duration::from_millis(5)), 5);
/// assert_eq!(WaitHistogram::bucket_of(Duration::from_secs(1)), 9);
/// assert_eq!(WaitHistogram::upper_bound(9), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WaitHistogram {
    /// The count of each bucket, shortest waits first.
    pub counts: [u64; WaitHistogram::BUCKETS],
}

impl WaitHistogram {
    /// The number of buckets.
    pub const BUCKETS: usize = 10;

    /// The bucket a wait of `wait` falls in.
    #[must_use]
    pub fn bucket_of(wait: Duration) -> usize {
        let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        BOUNDS_MICROS
            .iter()
            .position(|&b| micros < b)
            .unwrap_or(BOUNDS_MICROS.len())
    }

    /// The exclusive upper bound of bucket `i`; `None` for the last one
    /// (and for an index out of range).
    #[must_use]
    pub fn upper_bound(i: usize) -> Option<Duration> {
        BOUNDS_MICROS.get(i).map(|&b| Duration::from_micros(b))
    }

    /// The inclusive lower bound of bucket `i` (zero for the first).
    #[must_use]
    pub fn lower_bound(i: usize) -> Duration {
        match i {
            0 => Duration::ZERO,
            i => Duration::from_micros(BOUNDS_MICROS[(i - 1).min(BOUNDS_MICROS.len() - 1)]),
        }
    }

    /// The number of waits counted: the sum of the buckets.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// One line per non-empty bucket: its range, count, share and a bar.
impl fmt::Display for WaitHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BAR: u64 = 30;
        let total = self.total();
        if total == 0 {
            return writeln!(f, "  (no waits)");
        }
        let max = self.counts.iter().copied().max().unwrap_or(1).max(1);
        for (i, &n) in self.counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let lo = ms(Self::lower_bound(i));
            let range = match Self::upper_bound(i) {
                Some(hi) => Buf::from_args(format_args!("{lo:>5} - {:<5} ms", ms(hi))),
                None => Buf::from_args(format_args!("{:>13} ms", Pad(">= ", lo))),
            };
            // A non-empty bucket always gets a mark: rare long waits are the
            // interesting ones.
            let len = (n * BAR).div_ceil(max) as usize;
            writeln!(
                f,
                "  {range} {:>10} {:>5.1}% {:#<len$}",
                n,
                100.0 * n as f64 / total as f64,
                "",
                len = len
            )?;
        }
        Ok(())
    }
}

/// Formats a duration in ms the way the tables do ("0.1", "5", "100").
fn ms(d: Duration) -> MsFmt {
    MsFmt(d)
}

struct MsFmt(Duration);

impl fmt::Display for MsFmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.as_micros();
        let s = if micros.is_multiple_of(1000) {
            Buf::from_args(format_args!("{}", micros / 1000))
        } else {
            Buf::from_args(format_args!("{}", micros as f64 / 1000.0))
        };
        f.pad(s.as_str())
    }
}

struct Pad<'a>(&'a str, MsFmt);

impl fmt::Display for Pad<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = Buf::from_args(format_args!("{}{}", self.0, self.1));
        f.pad(s.as_str())
    }
}

/// A small stack buffer so that padding works on composed text without
/// allocating (the crate is `no_std`).
struct Buf {
    bytes: [u8; 48],
    len: usize,
}

impl Buf {
    fn from_args(args: fmt::Arguments<'_>) -> Self {
        let mut buf = Buf {
            bytes: [0; 48],
            len: 0,
        };
        // Too long text is cut; every caller formats a few digits.
        let _ = fmt::write(&mut buf, args);
        buf
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever appended (see `write_str`).
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl fmt::Display for Buf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A snapshot of a [`Gil`](crate::Gil)'s counters, from [`Gil::stats`](crate::Gil::stats).
///
/// Its `Display` prints a small table:
///
/// ```
/// # #[cfg(feature = "std")] {
/// use gilock::Gil;
///
/// let gil = Gil::new();
/// drop(gil.acquire());
/// let table = gil.stats().to_string();
/// assert!(table.contains("acquisitions"));
/// assert!(table.contains("forced switches"));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GilStats {
    /// How many times a thread took the Gil (including re-takes after a
    /// switch, a `detach` or a Condition wait; nested `ensure` guards do not
    /// count).
    pub acquisitions: u64,
    /// How many times the Gil went to a different thread than the one that
    /// held it last: CPython's `switch_number`.
    pub switches: u64,
    /// Switches forced by a drop request (the holder handed the Gil over at
    /// a checkpoint).
    pub forced_switches: u64,
    /// How many drop requests waiters set (a waiter that waited a whole
    /// switch interval without seeing a switch).
    pub drop_requests: u64,
    /// Under [`SwitchPolicy::Interactive`](crate::SwitchPolicy): how many
    /// times a release woke a parked thread ahead of its turn, to spin for
    /// the handoff that was likely to come to it next instead of being
    /// woken only then, with nobody running meanwhile.
    pub woken_ahead: u64,
    /// The total time threads spent waiting for the Gil.
    pub total_wait: Duration,
    /// The longest single wait that ended with the Gil taken.
    pub longest_wait: Duration,
    /// Acquisitions that had to wait (the rest took the Gil at once), by
    /// how long they waited; `wait_histogram.total()` is their number.
    pub wait_histogram: WaitHistogram,
}

impl GilStats {
    /// How many acquisitions had to wait: the sum of the histogram.
    #[must_use]
    pub fn waits(&self) -> u64 {
        self.wait_histogram.total()
    }

    /// The mean wait of the acquisitions that had to wait (zero if none).
    #[must_use]
    pub fn mean_wait(&self) -> Duration {
        mean(self.total_wait, self.waits())
    }
}

fn mean(total: Duration, n: u64) -> Duration {
    match u32::try_from(n) {
        Ok(0) => Duration::ZERO,
        Ok(n) => total / n,
        Err(_) => Duration::from_secs_f64(total.as_secs_f64() / n as f64),
    }
}

/// A snapshot of one thread's counters, from [`ThreadState::stats`](crate::ThreadState::stats).
///
/// Its `Display` prints a small table, as [`GilStats`]'s does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadStats {
    /// How many times this thread took the Gil.
    pub acquisitions: u64,
    /// The total time this thread waited for the Gil.
    pub total_wait: Duration,
    /// Its longest single wait.
    pub longest_wait: Duration,
    /// How many times it handed the Gil over because a waiter asked (a
    /// forced switch at a checkpoint).
    pub forced_releases: u64,
    /// How many times it released the Gil in the middle of a guard's life
    /// without being asked: `detach`, a `yield_now` that switched, a
    /// Condition wait. Dropping the last guard is not counted.
    pub voluntary_releases: u64,
    /// This thread's acquisitions that had to wait, by how long they waited.
    pub wait_histogram: WaitHistogram,
}

impl ThreadStats {
    /// How many of this thread's acquisitions had to wait.
    #[must_use]
    pub fn waits(&self) -> u64 {
        self.wait_histogram.total()
    }

    /// The mean wait of this thread's acquisitions that had to wait.
    #[must_use]
    pub fn mean_wait(&self) -> Duration {
        mean(self.total_wait, self.waits())
    }
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, value: impl fmt::Display) -> fmt::Result {
    writeln!(f, "  {name:<22} {value:>14}")
}

struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = Buf::from_args(format_args!("{:.3} ms", self.0.as_secs_f64() * 1e3));
        f.pad(s.as_str())
    }
}

impl fmt::Display for GilStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Gil statistics")?;
        row(f, "acquisitions", self.acquisitions)?;
        row(f, "  of which waited", self.waits())?;
        row(f, "switches", self.switches)?;
        row(f, "forced switches", self.forced_switches)?;
        row(f, "drop requests", self.drop_requests)?;
        row(f, "woken ahead", self.woken_ahead)?;
        row(f, "total wait", Millis(self.total_wait))?;
        row(f, "mean wait", Millis(self.mean_wait()))?;
        row(f, "longest wait", Millis(self.longest_wait))?;
        writeln!(f, "  waits by length:")?;
        fmt::Display::fmt(&self.wait_histogram, f)
    }
}

impl fmt::Display for ThreadStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        row(f, "acquisitions", self.acquisitions)?;
        row(f, "  of which waited", self.waits())?;
        row(f, "forced releases", self.forced_releases)?;
        row(f, "voluntary releases", self.voluntary_releases)?;
        row(f, "total wait", Millis(self.total_wait))?;
        row(f, "mean wait", Millis(self.mean_wait()))?;
        row(f, "longest wait", Millis(self.longest_wait))?;
        writeln!(f, "  waits by length:")?;
        fmt::Display::fmt(&self.wait_histogram, f)
    }
}

/// Adds one to a counter that only one thread writes at a time.
#[inline]
pub(crate) fn count_one(counter: &AtomicU64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Adds `d` in nanoseconds to a counter that only one thread writes at a time.
#[inline]
pub(crate) fn add_duration(counter: &AtomicU64, d: Duration) {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    counter.store(
        counter.load(Ordering::Relaxed).saturating_add(nanos),
        Ordering::Relaxed,
    );
}

pub(crate) fn nanos(counter: &AtomicU64) -> Duration {
    Duration::from_nanos(counter.load(Ordering::Relaxed))
}

/// Raises a maximum that only one thread writes at a time.
fn raise_max(counter: &AtomicU64, d: Duration) {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    if nanos > counter.load(Ordering::Relaxed) {
        counter.store(nanos, Ordering::Relaxed);
    }
}

/// A histogram's live buckets, written by one thread at a time.
#[derive(Debug)]
pub(crate) struct LiveHistogram {
    counts: [AtomicU64; WaitHistogram::BUCKETS],
}

impl LiveHistogram {
    const_fn! {
        pub(crate) const fn new() -> Self {
            Self {
                counts: [
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                ],
            }
        }
    }

    fn record(&self, wait: Duration) {
        count_one(&self.counts[WaitHistogram::bucket_of(wait)]);
    }

    fn snapshot(&self) -> WaitHistogram {
        let mut h = WaitHistogram::default();
        for (out, c) in h.counts.iter_mut().zip(&self.counts) {
            *out = c.load(Ordering::Relaxed);
        }
        h
    }
}

/// A Gil's live counters (C layout: the one a forced switch touches
/// first). Acquisitions are counted per thread (`ThreadCounters`) and added
/// up when read.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct GilCounters {
    /// Written by the holder only.
    pub(crate) forced_switches: AtomicU64,
    /// Written by waiters: a read-modify-write.
    pub(crate) drop_requests: AtomicU64,
    /// Written by releasers, in an unpark callback (the queue locked).
    pub(crate) woken_ahead: AtomicU64,
    /// Nanoseconds, written by the new holder only.
    pub(crate) total_wait: AtomicU64,
    /// Nanoseconds, written by the new holder only.
    longest_wait: AtomicU64,
    /// Written by the new holder only.
    waits: LiveHistogram,
}

impl GilCounters {
    const_fn! {
        pub(crate) const fn new() -> Self {
            Self {
                forced_switches: AtomicU64::new(0),
                drop_requests: AtomicU64::new(0),
                woken_ahead: AtomicU64::new(0),
                total_wait: AtomicU64::new(0),
                longest_wait: AtomicU64::new(0),
                waits: LiveHistogram::new(),
            }
        }
    }

    /// Records a wait that ended with the Gil taken; called by the new
    /// holder, so writes are serialised by the Gil itself.
    pub(crate) fn record_wait(&self, waited: Duration) {
        add_duration(&self.total_wait, waited);
        raise_max(&self.longest_wait, waited);
        self.waits.record(waited);
    }

    /// The counters, with `switches` (the Gil's switch number, which is
    /// algorithm state and lives in the Gil) and `acquisitions` (the sum of
    /// its threads' counts).
    pub(crate) fn snapshot(&self, switches: u64, acquisitions: u64) -> GilStats {
        GilStats {
            acquisitions,
            switches,
            forced_switches: self.forced_switches.load(Ordering::Relaxed),
            drop_requests: self.drop_requests.load(Ordering::Relaxed),
            woken_ahead: self.woken_ahead.load(Ordering::Relaxed),
            total_wait: nanos(&self.total_wait),
            longest_wait: nanos(&self.longest_wait),
            wait_histogram: self.waits.snapshot(),
        }
    }
}

/// A thread's live counters; all written by that thread only.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct ThreadCounters {
    pub(crate) total_wait: AtomicU64,
    pub(crate) longest_wait: AtomicU64,
    pub(crate) forced_releases: AtomicU64,
    pub(crate) voluntary_releases: AtomicU64,
    waits: LiveHistogram,
}

impl ThreadCounters {
    pub(crate) fn new() -> Self {
        Self {
            total_wait: AtomicU64::new(0),
            longest_wait: AtomicU64::new(0),
            forced_releases: AtomicU64::new(0),
            voluntary_releases: AtomicU64::new(0),
            waits: LiveHistogram::new(),
        }
    }

    /// Records a wait that ended with the Gil taken.
    pub(crate) fn record_wait(&self, waited: Duration) {
        add_duration(&self.total_wait, waited);
        raise_max(&self.longest_wait, waited);
        self.waits.record(waited);
    }

    /// The counters, with `acquisitions` (which the thread keeps in its
    /// `ThreadWord`).
    pub(crate) fn snapshot(&self, acquisitions: u64) -> ThreadStats {
        ThreadStats {
            acquisitions,
            total_wait: nanos(&self.total_wait),
            longest_wait: nanos(&self.longest_wait),
            forced_releases: self.forced_releases.load(Ordering::Relaxed),
            voluntary_releases: self.voluntary_releases.load(Ordering::Relaxed),
            wait_histogram: self.waits.snapshot(),
        }
    }
}
