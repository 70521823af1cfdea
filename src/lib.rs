//! Locks for interpreters, and for Rust programs that want bounded waiting
//! and clear errors.
//!
//! - [`FairMutex`] / [`RawFairMutex`]: a `lock_api` mutex that stays as fast
//!   as an unfair one until a waiter has waited a whole *switch interval*
//!   (default 5 ms); then the lock is handed to the oldest waiter.
//! - [`Gil`]: a global interpreter lock with CPython's switch interval, drop
//!   requests and forced switching, served in FIFO order; [`GilGuard`]'s
//!   `checkpoint` and `detach`, per-thread [`ThreadState`]s with statistics
//!   and interrupts.
//! - [`Lock`] and [`RLock`]: Python's `threading.Lock` and `threading.RLock`,
//!   with scoped guards and the unscoped acquire/release an interpreter
//!   exposes; misuse (releasing an unlocked lock, or one another thread
//!   owns) is a [`ReleaseError`], never a corruption.
//! - [`Condition`]: Python's `threading.Condition`, waiting with any of the
//!   crate's guards (an `RLock` held N levels deep is released fully and
//!   restored to N); notifications wake the oldest waiters first and return
//!   exact counts. [`RawCondition`] makes `lock_api::Condvar` a drop-in
//!   condition variable for [`FairMutex`].
//! - [`Semaphore`], [`BoundedSemaphore`], [`Event`] and [`Barrier`]: the
//!   rest of Python's `threading` toolkit, FIFO-fair (permits are handed to
//!   waiters in arrival order), each with waits that release the Gil held
//!   through a [`GilGuard`] and can be interrupted.
//!
//! Every primitive's algorithm is written once against two internal layers,
//! a `sync` shim (atomics) and a `park` layer (sleeping and waking); only
//! those differ between the std build (`parking_lot_core`), the loom build
//! (`--cfg loom`: a model parking lot whose timeouts fire from a model timer
//! thread) and the no-std build (spinning). So the loom models check the
//! real code, and a user's own loom model that uses these primitives explores
//! their interleavings too.
//!
//! # Features
//!
//! - `std` (default): blocking waits through the OS, timed waits on the
//!   monotonic clock. Without it, waits spin, time comes from a clock the
//!   user installs with `set_clock`, and thread identity from
//!   `set_thread_id_source` (both exist only without `std`).
#![no_std]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(any(feature = "std", loom))]
extern crate std;

mod barrier;
mod condition;
mod error;
mod event;
mod fair_mutex;
mod gil;
mod interval;
mod lock;
mod park;
mod rlock;
mod semaphore;
#[cfg(all(feature = "std", unix, not(loom)))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "std", unix))))]
pub mod signal;
mod sync;
mod thread_id;
mod wait;

pub use barrier::Barrier;
pub use condition::{Condition, RawCondition, WaitGuard};
pub use error::{
    BorrowError, BrokenBarrierError, Interrupted, ReleaseError, SemaphoreReleaseError, WaitError,
};
pub use event::Event;
pub use fair_mutex::{DEFAULT_SWITCH_INTERVAL, FairMutex, FairMutexGuard, RawFairMutex};
pub use gil::{
    Checkpoint, EvalBreaker, Gil, GilCell, GilGuard, GilRef, GilRefMut, GilStats, MutexExt,
    SwitchPolicy, ThreadState, ThreadStats, ThreadStatus,
};
pub use gil::{GilEvent, GilEventKind, GilHook, WaitHistogram};
#[cfg(feature = "std")]
pub use gil::{Span, SpanKind, TraceRecorder};
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};

/// Support for loom models (only under `--cfg loom`).
///
/// Loom has no clock. A model that exercises timeouts or switch intervals
/// spawns a *timer thread* that calls [`fire_timeouts`](model::fire_timeouts);
/// loom then explores the timeout firing at every point the timer thread can
/// run, and whichever side of each race wins.
///
/// ```ignore
/// loom::model(|| {
///     let timer = loom::thread::spawn(|| { gilock::model::fire_timeouts(); });
///     // ... threads using gilock primitives with timeouts ...
///     timer.join().unwrap();
/// });
/// ```
#[cfg(loom)]
pub mod model {
    /// Advances the model clock one tick: every deadline and switch interval
    /// that started before now has passed, and threads in timed waits wake
    /// to notice. Returns how many timed waiters were woken.
    pub fn fire_timeouts() -> usize {
        crate::park::model::fire_timeouts()
    }

    /// How many model threads are parked in gilock's primitives right now
    /// (queued, not yet handed a wake-up). Wakes nobody and moves no clock,
    /// so a model can branch on "that thread is blocked in `lock`" without
    /// changing what it observes.
    pub fn parked_threads() -> usize {
        crate::park::model::parked_threads()
    }
}

/// Installs the monotonic clock that timed waits and switch intervals use
/// without `std`: a function returning the time since any fixed point.
///
/// Until one is installed, time stands still: switch intervals never run
/// out and a timed wait only succeeds at once or waits without end.
#[cfg(all(not(feature = "std"), not(loom)))]
pub fn set_clock(now: fn() -> core::time::Duration) {
    park::clock::user_clock::install(now);
}

/// Installs the source of thread identity without `std`: a function that
/// returns a non-zero number unique to the calling thread (for example a
/// core number on bare metal, or a task id). Primitives that track an
/// owner panic with a message naming this function if it was not called.
#[cfg(all(not(feature = "std"), not(loom)))]
pub fn set_thread_id_source(current: fn() -> core::num::NonZeroU64) {
    thread_id::install(current);
}

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
