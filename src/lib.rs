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
//! - `parking_lot`'s names: [`Mutex`] (the same type as [`FairMutex`]),
//!   [`MutexGuard`], [`Condvar`], [`ReentrantMutex<T>`](ReentrantMutex) and
//!   their mapped guards, and [`lock_api`] itself, so that code written for
//!   `parking_lot`'s mutexes and condition variable compiles with
//!   `parking_lot::` replaced by `gilock::`.
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
// The constructors are `const fn` in every build but loom's (`sync::const_fn`):
// keep docs.rs from labelling each of them "Available on non-loom only".
#![cfg_attr(docsrs, doc(auto_cfg(hide(loom))))]

extern crate alloc;
#[cfg(any(feature = "std", loom, test))]
extern crate std;

mod barrier;
mod condition;
mod error;
mod event;
mod fair_mutex;
mod fair_mutex_ext;
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
    ZeroPartiesError,
};
pub use event::Event;
pub use fair_mutex::{DEFAULT_SWITCH_INTERVAL, FairMutex, FairMutexGuard, RawFairMutex};
pub use fair_mutex_ext::FairMutexExt;
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

// The `parking_lot` drop-in: its names for the crate's mutex, condition
// variable and a re-entrant mutex with data, and `lock_api` itself (as
// `parking_lot::lock_api`).
mod condvar;
mod mutex;
mod reentrant_mutex;
pub use condvar::{Condvar, WaitTimeoutResult};
pub use lock_api;
pub use mutex::{MappedFairMutexGuard, MappedMutexGuard, Mutex, MutexGuard};
pub use reentrant_mutex::{
    MappedReentrantMutexGuard, RawThreadId, ReentrantMutex, ReentrantMutexGuard,
};

#[cfg(any(loom, docsrs))]
#[cfg_attr(docsrs, doc(cfg(loom)))]
pub mod model {
    //! Support for loom models: the model clock, and what a model needs to
    //! know about gilock under `--cfg loom`.
    //!
    //! Built with `--cfg loom`, gilock's primitives run on loom's atomics
    //! and a model parking lot, so a loom model of your own that uses them
    //! explores their interleavings too.
    //!
    //! # The model clock
    //!
    //! Loom has no clock. gilock keeps *model time*, which moves only when a
    //! model says so, and every deadline (a timeout, a switch interval) is
    //! "now + its duration" on it. So deadlines compare as real ones do: of
    //! two waits that start together, the one with the shorter timeout
    //! expires first, and the other one may still be waiting. Three ways to
    //! move the clock, each one step taken with the park queue locked, which
    //! loom explores at every point where the calling thread can run ("the
    //! timeout fired here"):
    //!
    //! - [`fire_timeouts`]: to the earliest deadline still ahead among the
    //!   threads now in a timed wait; nothing when no thread is in one.
    //! - [`advance`]: by a given duration, for models about how long things
    //!   take (`advance(Duration::from_secs(3600))` lets every deadline
    //!   taken so far pass).
    //! - A [`Timer`]: a model thread that takes up to `steps` steps of
    //!   `fire_timeouts`, each as soon as (and whenever after) some thread
    //!   is in a timed wait, so a wait that starts after its previous step
    //!   still times out. `steps` bounds what loom explores: a Gil waiter,
    //!   for one, parks for one switch interval after another.
    //!
    //! A deadline given as a `std::time::Instant` (lock_api's
    //! `try_lock_until`) carries no duration the model can use: it passes at
    //! the clock's next step. Timeouts of 584 years or more never expire.
    //!
    //! # Statics and construction
    //!
    //! Loom's atomics cannot be built in a `const`, so under `--cfg loom`
    //! most constructors are not `const`: `Lock::new`, `RLock::new`,
    //! `Condition::new`, `Gil::new`, `RawFairMutex::new` and the others
    //! create their state at once, and must be called inside the model
    //! (keep such a primitive in a `loom::lazy_static!`, which loom creates
    //! anew in each execution, if it must be global). Two constructors stay
    //! `const` and can initialise a plain `static`:
    //!
    //! - `FairMutex::new` (lock_api's `Mutex::new`, through
    //!   `RawFairMutex::INIT`), and
    //! - `lock_api::Condvar::<RawCondition>::new` (through
    //!   `RawCondition::INIT`).
    //!
    //! Their state is created at first use in each loom execution, so a
    //! `static M: FairMutex<u32> = FairMutex::new(0)` starts every execution
    //! unlocked (the data inside it is yours: it keeps its value from one
    //! execution to the next). That creation happens-before every other
    //! thread's use of the primitive, an ordering a real static does not
    //! add; for the most faithful check, construct with `RawFairMutex::new()`
    //! inside the model.
    //!
    //! # Which loom
    //!
    //! gilock is built against loom 0.7, re-exported as `gilock::model::loom`
    //! under `--cfg loom`. Run your models with that loom
    //! (`gilock::model::loom::model(...)`), or depend on `loom = "0.7"`
    //! yourself, which Cargo unifies with it. With another loom (0.6, say),
    //! gilock's primitives look for an execution of a loom they are not in
    //! and panic: "cannot access Loom execution state from outside a Loom
    //! model".
    //!
    //! # Other rules
    //!
    //! - Spinning is off in models by default ([`set_spin_limit`]).
    //! - A panic inside the parking lot's callbacks aborts the process, as
    //!   with `parking_lot_core`; gilock's callbacks do not panic, but a
    //!   loom failure detected inside one (a causality violation, say)
    //!   aborts the test binary after loom's message.
    //!
    //! # Example
    //!
    //! Two threads wait for a lock held by the main thread, one for 1 ms and
    //! one for 1 s. The timer's first step reaches only the short deadline:
    //! the short wait times out while the long one is still waiting; then
    //! the lock is released and the long wait gets it.
    //!
    //! (Not run as a doctest: it needs `--cfg loom`.)
    //!
    //! ```ignore
    //! use gilock::Lock;
    //! use gilock::model::loom::{self, sync::Arc, thread};
    //! use std::time::Duration;
    //!
    //! loom::model(|| {
    //!     let lock = Arc::new(Lock::new());
    //!     lock.acquire();
    //!     let waiter = |timeout| {
    //!         let lock = lock.clone();
    //!         thread::spawn(move || {
    //!             let taken = lock.acquire_timeout(timeout);
    //!             if taken {
    //!                 lock.release().unwrap();
    //!             }
    //!             taken
    //!         })
    //!     };
    //!     let short = waiter(Duration::from_millis(1));
    //!     let long = waiter(Duration::from_secs(1));
    //!     // One step, once both wait: the earliest deadline is the short one.
    //!     while gilock::model::parked_threads() < 2 {
    //!         thread::yield_now();
    //!     }
    //!     assert_eq!(gilock::model::fire_timeouts(), 1);
    //!     assert!(!short.join().unwrap());
    //!     lock.release().unwrap();
    //!     assert!(long.join().unwrap());
    //! });
    //! ```
    //!
    //! A model where a wait may start at any point, and must still be able
    //! to time out, uses a [`Timer`]:
    //!
    //! ```ignore
    //! # use gilock::Lock;
    //! # use gilock::model::loom::{self, sync::Arc, thread};
    //! # use std::time::Duration;
    //! loom::model(|| {
    //!     let lock = Arc::new(Lock::new());
    //!     lock.acquire();
    //!     let timer = gilock::model::Timer::spawn(2);
    //!     let waiter = {
    //!         let lock = lock.clone();
    //!         // Two waits in a row: the second starts after the first step.
    //!         thread::spawn(move || [1, 2].map(|ms| lock.acquire_timeout(Duration::from_millis(ms))))
    //!     };
    //!     assert_eq!(waiter.join().unwrap(), [false, false]);
    //!     assert_eq!(timer.join(), 2);
    //! });
    //! ```

    use core::time::Duration;

    #[cfg(loom)]
    use crate::park::model as imp;

    /// The loom gilock is built against (see the module docs, "Which loom").
    #[cfg(loom)]
    pub use ::loom;

    /// One step of the model clock: to the earliest deadline still ahead
    /// among the threads now in a timed wait. Returns how many timed waits
    /// the step reached (0, with the clock unmoved, when no thread is in a
    /// timed wait); each of them times out unless an unpark reaches it
    /// first, which loom explores too.
    pub fn fire_timeouts() -> usize {
        imp::fire_timeouts()
    }

    /// Moves the model clock forward by `by`; returns how many timed waits
    /// it reached (as [`fire_timeouts`]). Deadlines taken later are
    /// measured from the new time.
    pub fn advance(by: Duration) -> usize {
        imp::advance(by)
    }

    /// The model clock's reading: model time since an arbitrary origin.
    /// Only the difference of two readings in one execution means anything
    /// (the origin is not reset between executions); for example, that a
    /// timed wait which timed out saw its whole timeout pass.
    pub fn now() -> Duration {
        imp::now_since_origin()
    }

    /// How many model threads are parked in gilock's primitives right now
    /// (queued, not yet handed a wake-up). Wakes nobody and moves no clock,
    /// so a model can branch on "that thread is blocked in `lock`" without
    /// changing what it observes.
    pub fn parked_threads() -> usize {
        imp::parked_threads()
    }

    /// Lets `SpinWait` spin `rounds` rounds before parking, in the models
    /// run on the calling OS thread (a test's thread), from the next spin
    /// on. The default is 0: each round is a scheduling point, and spinning
    /// multiplies the schedules loom explores; 1 or 2 check the spinning
    /// paths as well. (Outside loom the limit is 10.)
    pub fn set_spin_limit(rounds: u32) {
        imp::set_spin_limit(rounds);
    }

    /// A model timer: a loom thread that moves the model clock as
    /// [`fire_timeouts`] does, up to `steps` times, each as soon as (and
    /// whenever after) some thread is in a timed wait; asleep, not spinning,
    /// in between.
    ///
    /// [`join`](Self::join) it after the threads whose waits it serves (it
    /// stops once no thread is in a timed wait). Dropping it joins it too.
    /// It is one of loom's 5 threads.
    #[must_use = "a timer is joined when dropped: keep it until the waits it serves are done"]
    pub struct Timer(imp::Timer);

    impl Timer {
        /// Spawns the timer thread, which takes at most `steps` steps.
        pub fn spawn(steps: usize) -> Self {
            Self(imp::Timer::spawn(steps))
        }

        /// Tells the timer to stop once no thread is in a timed wait, waits
        /// for it, and returns how many steps it took.
        pub fn join(self) -> usize {
            self.0.join()
        }
    }

    impl core::fmt::Debug for Timer {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Timer").finish_non_exhaustive()
        }
    }

    /// Stand-ins for the docs.rs build (std, no loom): they only give the
    /// items above a body to document.
    #[cfg(not(loom))]
    mod imp {
        use core::time::Duration;

        const DOCS_ONLY: &str = "gilock::model exists only under --cfg loom";

        pub(crate) fn fire_timeouts() -> usize {
            unreachable!("{DOCS_ONLY}")
        }

        pub(crate) fn advance(_: Duration) -> usize {
            unreachable!("{DOCS_ONLY}")
        }

        pub(crate) fn parked_threads() -> usize {
            unreachable!("{DOCS_ONLY}")
        }

        pub(crate) fn now_since_origin() -> Duration {
            unreachable!("{DOCS_ONLY}")
        }

        pub(crate) fn set_spin_limit(_: u32) {
            unreachable!("{DOCS_ONLY}")
        }

        pub(crate) struct Timer;

        impl Timer {
            pub(crate) fn spawn(_: usize) -> Self {
                unreachable!("{DOCS_ONLY}")
            }

            pub(crate) fn join(self) -> usize {
                unreachable!("{DOCS_ONLY}")
            }
        }
    }
}

/// Installs the monotonic clock that timed waits and switch intervals use
/// without `std`: a function returning the time since any fixed point.
///
/// Until one is installed, time stands still: switch intervals never run
/// out and a timed wait only succeeds at once or waits without end. The
/// clock must not panic: it is read inside waits, where a panic aborts.
#[cfg(any(docsrs, all(not(feature = "std"), not(loom))))]
#[cfg_attr(docsrs, doc(cfg(all(not(feature = "std"), not(loom)))))]
pub fn set_clock(now: fn() -> core::time::Duration) {
    park::user::install_clock(now);
}

/// Installs the source of thread identity without `std`: a function that
/// returns a non-zero number unique to the calling thread (for example a
/// core number on bare metal, or a task id). Primitives that track an
/// owner panic with a message naming this function if it was not called.
///
/// With a source installed, the parking lot also recognises a park nested
/// in a park callback of the same thread (a bug inside gilock) and stops
/// the process with a message saying so, instead of spinning for ever.
#[cfg(any(docsrs, all(not(feature = "std"), not(loom))))]
#[cfg_attr(docsrs, doc(cfg(all(not(feature = "std"), not(loom)))))]
pub fn set_thread_id_source(current: fn() -> core::num::NonZeroU64) {
    park::user::install_thread_id_source(current);
}

/// The README's examples, compiled and run as doctests so they stay true.
/// They are std programs (threads, timeouts, the Gil's thread identity), so
/// they run in the std build; the no-std build's own set-up (`set_clock`,
/// `set_thread_id_source`) is what `tests/common/mod.rs` installs.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
