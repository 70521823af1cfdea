//! Counters of a Gil and of each thread, and their public snapshots.
//!
//! Every counter is a relaxed atomic. Most of them are only ever written by
//! the thread that holds the Gil (or, for a thread's own counters, by that
//! thread), so they are bumped with a load and a store instead of a
//! read-modify-write: that keeps the uncontended acquire + release cheap.
//! Readers may see a snapshot whose fields come from slightly different
//! moments.

use crate::sync::{AtomicU64, Ordering, const_fn};
use core::time::Duration;

/// A snapshot of a [`Gil`](crate::Gil)'s counters, from [`Gil::stats`](crate::Gil::stats).
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
    /// The total time threads spent waiting for the Gil.
    pub total_wait: Duration,
}

/// A snapshot of one thread's counters, from [`ThreadState::stats`](crate::ThreadState::stats).
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
}

/// Adds one to a counter that only one thread writes at a time.
#[inline]
pub(crate) fn bump(counter: &AtomicU64) {
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

/// A Gil's live counters (C layout: the two every acquisition may touch
/// first).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct GilCounters {
    /// Written by the holder only.
    pub(crate) acquisitions: AtomicU64,
    /// Written by the holder only (under the park queue's lock on a handoff).
    pub(crate) switches: AtomicU64,
    /// Written by the holder only.
    pub(crate) forced_switches: AtomicU64,
    /// Written by waiters: a read-modify-write.
    pub(crate) drop_requests: AtomicU64,
    /// Nanoseconds, written by the new holder only.
    pub(crate) total_wait: AtomicU64,
}

impl GilCounters {
    const_fn! {
        pub(crate) const fn new() -> Self {
            Self {
                acquisitions: AtomicU64::new(0),
                switches: AtomicU64::new(0),
                forced_switches: AtomicU64::new(0),
                drop_requests: AtomicU64::new(0),
                total_wait: AtomicU64::new(0),
            }
        }
    }

    pub(crate) fn snapshot(&self) -> GilStats {
        GilStats {
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
            switches: self.switches.load(Ordering::Relaxed),
            forced_switches: self.forced_switches.load(Ordering::Relaxed),
            drop_requests: self.drop_requests.load(Ordering::Relaxed),
            total_wait: nanos(&self.total_wait),
        }
    }
}

/// A thread's live counters; all written by that thread only.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct ThreadCounters {
    pub(crate) acquisitions: AtomicU64,
    pub(crate) total_wait: AtomicU64,
    pub(crate) longest_wait: AtomicU64,
    pub(crate) forced_releases: AtomicU64,
    pub(crate) voluntary_releases: AtomicU64,
}

impl ThreadCounters {
    pub(crate) fn new() -> Self {
        Self {
            acquisitions: AtomicU64::new(0),
            total_wait: AtomicU64::new(0),
            longest_wait: AtomicU64::new(0),
            forced_releases: AtomicU64::new(0),
            voluntary_releases: AtomicU64::new(0),
        }
    }

    /// Records a wait that ended with the Gil taken.
    pub(crate) fn record_wait(&self, waited: Duration) {
        add_duration(&self.total_wait, waited);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        if nanos > self.longest_wait.load(Ordering::Relaxed) {
            self.longest_wait.store(nanos, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> ThreadStats {
        ThreadStats {
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
            total_wait: nanos(&self.total_wait),
            longest_wait: nanos(&self.longest_wait),
            forced_releases: self.forced_releases.load(Ordering::Relaxed),
            voluntary_releases: self.voluntary_releases.load(Ordering::Relaxed),
        }
    }
}
