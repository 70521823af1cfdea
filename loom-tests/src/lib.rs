//! Loom models of gilock's primitives. The models live in `tests/`; build
//! them with `RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release`.
//! Without `--cfg loom` this crate is empty.
//!
//! This library holds what the models share: how deep each one is explored
//! ([`check`]), data that only a lock may touch ([`Guarded`]), and the
//! interrupter thread of the attached-wait models ([`interrupter`]).
#![cfg(loom)]

use gilock::{GilGuard, ThreadState};
use loom::cell::UnsafeCell;
use loom::sync::{Arc, Mutex};
use loom::thread;

/// How deep loom explores a model when `LOOM_MAX_PREEMPTIONS` is not set
/// (CI's run). With `LOOM_MAX_PREEMPTIONS=n` set, every model runs at bound
/// `n` instead, whatever it declares (the quick run at 2, or a deeper one);
/// with `GILOCK_LOOM_EXHAUSTIVE=1`, every model runs without a bound (to
/// measure which ones finish that way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Every interleaving, with no preemption bound: for models that finish
    /// in minutes that way (`loom-tests/README.md` lists their times).
    Exhaustive,
    /// At most this many preemptions per execution.
    Bound(usize),
}

/// The depth of most models in CI: preemption bound 3.
pub const DEFAULT: Depth = Depth::Bound(3);

/// Every interleaving, no preemption bound: the models that finish so in
/// a minute at most (the README of `loom-tests` lists their times).
pub const EXHAUSTIVE: Depth = Depth::Exhaustive;

/// The depth of the models that take minutes at preemption bound 3 (the
/// README of `loom-tests` lists their times there): CI runs them at bound
/// 2, which keeps the whole loom step within a few minutes on 2 cores; the
/// release run (`LOOM_MAX_PREEMPTIONS=3`) takes them to 3.
pub const LONG: Depth = Depth::Bound(2);

/// Branches (scheduling decisions) one execution may take before loom
/// calls it a livelock, unless `LOOM_MAX_BRANCHES` says otherwise.
pub const MAX_BRANCHES: usize = 10_000;

/// Runs `f` under loom at `depth` (or at `LOOM_MAX_PREEMPTIONS`, if set).
pub fn check(depth: Depth, f: impl Fn() + Sync + Send + 'static) {
    // `Builder::new` reads LOOM_MAX_PREEMPTIONS (and loom's other
    // variables); only an unset bound takes the model's own.
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        // loom's default (1 000) is short for a model in which a thread
        // waits in a loop (with `yield_now`) for the Gil's other threads
        // to go round their intervals; a livelock still ends the run.
        builder.max_branches = MAX_BRANCHES;
    }
    if std::env::var_os("GILOCK_LOOM_EXHAUSTIVE").is_some() {
        builder.preemption_bound = None;
    } else if builder.preemption_bound.is_none() {
        builder.preemption_bound = match depth {
            Depth::Exhaustive => None,
            Depth::Bound(n) => Some(n),
        };
    }
    builder.check(f);
}

/// Data that only the holder of some lock may touch. Loom's `UnsafeCell`
/// reports any two accesses that the lock does not order (two holders at
/// once, or a release/acquire edge missing between them).
pub struct Guarded(UnsafeCell<usize>);

// SAFETY: the data is touched only through `bump` and `get`, whose callers
// promise to hold the lock that guards it (loom checks the promise).
unsafe impl Sync for Guarded {}

impl Guarded {
    /// Zero.
    pub fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    /// Adds one; call it only while holding the lock that guards the data.
    pub fn bump(&self) {
        // SAFETY: the caller holds the lock (loom checks it).
        self.0.with_mut(|p| unsafe { *p += 1 });
    }

    /// The value; call it only while holding the lock, or once every other
    /// thread is joined.
    pub fn get(&self) -> usize {
        // SAFETY: as `bump`.
        self.0.with(|p| unsafe { *p })
    }

    /// `bump`, with a Gil guard as the proof that the Gil is held.
    pub fn bump_under(&self, _guard: &GilGuard<'_>) {
        self.bump();
    }

    /// `get`, with a Gil guard as the proof that the Gil is held.
    pub fn get_under(&self, _guard: &GilGuard<'_>) -> usize {
        self.get()
    }
}

impl Default for Guarded {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a waiter publishes its `ThreadState` for an interrupter.
pub type Slot = Arc<Mutex<Option<std::sync::Arc<ThreadState>>>>;

/// An empty slot.
pub fn slot() -> Slot {
    Arc::new(Mutex::new(None))
}

/// Interrupts the thread whose state is published in `slot`, if it was
/// published by the time this thread runs (it may not be: then nobody is
/// interrupted, which is one more execution to check). Returns whether it
/// interrupted.
pub fn interrupter(slot: &Slot) -> thread::JoinHandle<bool> {
    let slot = slot.clone();
    thread::spawn(move || match slot.lock().unwrap().clone() {
        Some(target) => {
            target.interrupt();
            true
        }
        None => false,
    })
}

/// Counts the executions of a model that reached some branch, so that the
/// model can assert at the end that loom explored it (a model whose
/// interesting branch is never taken checks nothing).
pub struct Reached(std::sync::atomic::AtomicUsize);

impl Reached {
    /// None yet.
    pub const fn new() -> Self {
        Self(std::sync::atomic::AtomicUsize::new(0))
    }

    /// One more execution reached the branch.
    pub fn hit(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Panics unless some execution reached the branch.
    pub fn assert_reached(&self, what: &str) {
        assert!(
            self.0.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "no execution reached {what}: the model checks nothing there"
        );
    }
}

impl Default for Reached {
    fn default() -> Self {
        Self::new()
    }
}
