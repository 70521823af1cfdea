//! Putting a waiting thread to sleep and waking it: FIFO queues keyed by an
//! address, with the contract of `parking_lot_core`.
//!
//! # Backends
//!
//! Everything that differs between a std, a loom and a no-std build, except
//! the atomics (`crate::sync`), is behind the [`Backend`] trait, and the one
//! `cfg_select!` below picks its implementation:
//!
//! | build | backend | parks by | clock | thread identity |
//! |---|---|---|---|---|
//! | `--cfg loom` | `model.rs` | `loom::thread::park`, queue behind a loom `Mutex` | model time, moved by the model timer | loom thread-locals |
//! | `std` | `parking_lot.rs` | `parking_lot_core` | `std::time::Instant` | std thread-locals |
//! | neither | `spin.rs` | spinning on a flag, queue behind a spin lock | the user's (`set_clock`) | the user's (`set_thread_id_source`) |
//!
//! The compiler checks that every backend has the same signatures (the
//! trait); every other file uses only the free functions and types here, and
//! never names loom, std or no-std.
//!
//! # The contract
//!
//! [`park`] puts the calling thread in the queue for `key`:
//! 1. `validate` runs with the queue locked. If it returns false the thread
//!    does not queue and `park` returns [`ParkResult::Invalid`]; otherwise
//!    the thread joins the tail of the queue for `key` and the queue is
//!    unlocked. What `validate` checks and what an unparker changes are
//!    therefore ordered: an unpark that follows the state change `validate`
//!    looked at finds the thread queued.
//! 2. `before_sleep` runs after the queue is unlocked, before the thread
//!    sleeps. It may unpark other threads (a condition wait releases its
//!    lock here); it must not park.
//! 3. The thread leaves the queue in exactly one of two ways: an unpark
//!    removes it and hands it a token ([`ParkResult::Unparked`]), or its
//!    `deadline` passes, and `timed_out(key, was_last)` runs with the queue
//!    locked, `was_last` telling whether no other thread remains queued on
//!    `key` ([`ParkResult::TimedOut`]). A deadline is the earliest moment
//!    the park may time out, never a promise that it returns then.
//!
//! [`unpark_one`] and [`unpark_filter`] remove threads from `key`'s queue
//! oldest first (`filter` decides for each, with the queue locked), then
//! run `callback` with the queue still locked and before any removed thread
//! wakes, so the callback can publish the state the woken threads will see;
//! its token goes to every thread removed.
//!
//! What every callback (`validate`, `before_sleep`, `timed_out`, `filter`,
//! `callback`) must not do:
//! - unwind. A callback that panics aborts the process: the free functions
//!   here wrap every callback in an abort-on-unwind guard, in every backend,
//!   because a primitive's state word and the queue may be half-updated at
//!   that point (`parking_lot_core` aborts the same way).
//! - park. None of them may call [`park`], `before_sleep` included: the
//!   thread is queued already (or holds the queue lock), and parking again
//!   would corrupt the queue or deadlock. The loom and spin backends panic
//!   with a message naming the mistake (which then aborts, as above); the
//!   std backend relies on this contract.
//! - unpark, except `before_sleep`: the others run with the queue locked,
//!   and the queue lock is not reentrant. The loom backend, and the spin
//!   backend when it knows thread identities, reject this too.
//!
//! The functions are `unsafe` because a caller could otherwise disturb
//! another primitive's queue: `key` must be an address the calling
//! primitive owns.

pub(crate) mod clock;

use core::num::NonZeroU64;
use core::time::Duration;

cfg_select! {
    loom => {
        pub(crate) mod model;
        mod queue;
        /// The backend of this build.
        type Selected = model::ModelLot;
        pub(crate) use self::queue::{FilterOp, ParkResult, ParkToken, RequeueOp, UnparkResult, UnparkToken};
    }
    feature = "std" => {
        mod parking_lot;
        /// The backend of this build.
        type Selected = parking_lot::ParkingLotCore;
        pub(crate) use parking_lot_core::{FilterOp, ParkResult, ParkToken, RequeueOp, UnparkResult, UnparkToken};
    }
    _ => {
        mod spin;
        mod queue;
        /// The backend of this build.
        type Selected = spin::SpinLot;
        pub(crate) use self::queue::{FilterOp, ParkResult, ParkToken, RequeueOp, UnparkResult, UnparkToken};
    }
}

// What a no-std user installs (a clock, a thread identity). The docs.rs
// build (std) compiles it too, so that `set_clock` and
// `set_thread_id_source` can be shown there.
#[cfg(any(docsrs, all(not(feature = "std"), not(loom))))]
pub(crate) mod user;

pub(crate) use self::clock::Instant;

/// What each backend provides (see the module docs). The free functions
/// below wrap every callback before handing it over, so a backend never
/// sees a callback that can unwind.
pub(crate) trait Backend {
    /// A point on the backend's monotonic clock.
    type Time: Copy + Ord + core::fmt::Debug;

    /// See [`park`].
    ///
    /// # Safety
    /// As [`park`].
    unsafe fn park(
        key: usize,
        validate: impl FnOnce() -> bool,
        before_sleep: impl FnOnce(),
        timed_out: impl FnOnce(usize, bool),
        token: ParkToken,
        deadline: Option<Instant>,
    ) -> ParkResult;

    /// See [`unpark_one`].
    ///
    /// # Safety
    /// As [`park`].
    unsafe fn unpark_one(
        key: usize,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult;

    /// See [`unpark_filter`].
    ///
    /// # Safety
    /// As [`park`].
    unsafe fn unpark_filter(
        key: usize,
        filter: impl FnMut(ParkToken) -> FilterOp,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult;

    /// See [`unpark_requeue`].
    ///
    /// # Safety
    /// As [`park`], for both keys.
    unsafe fn unpark_requeue(
        key_from: usize,
        key_to: usize,
        validate: impl FnOnce() -> RequeueOp,
        callback: impl FnOnce(RequeueOp, UnparkResult) -> UnparkToken,
    ) -> UnparkResult;

    /// The current time.
    fn now() -> Self::Time;

    /// `at + d`; `None` when that cannot be represented or never comes
    /// (the wait is then untimed).
    fn checked_add(at: Self::Time, d: Duration) -> Option<Self::Time>;

    /// How long from `earlier` to `later`; zero if `later` is not later.
    fn duration_between(earlier: Self::Time, later: Self::Time) -> Duration;

    /// The backend's time for a `std::time::Instant` (lock_api's timed
    /// traits take one).
    #[cfg(feature = "std")]
    fn from_std(instant: std::time::Instant) -> Self::Time;

    /// The `std::time::Instant` `timeout` from now, for lock_api's timed
    /// condition variable (which converts a timeout to one before it calls
    /// us): the real clock's, except where the backend has a clock of its
    /// own (see the model backend).
    #[cfg(feature = "std")]
    fn std_deadline_after(timeout: Duration) -> Option<std::time::Instant> {
        std::time::Instant::now().checked_add(timeout)
    }

    /// The calling thread's identity: unique among live threads and never
    /// reused, `None` when the backend cannot tell (no std and no source
    /// installed).
    fn thread_id() -> Option<NonZeroU64>;

    /// Gives up the CPU for a moment, as far as the backend can.
    fn yield_now();

    /// How many rounds `SpinWait` spins before it gives up.
    fn spin_limit() -> u32;
}

/// Parks the calling thread in the queue for `key` (see the module docs).
///
/// # Safety
/// - `key` is an address the calling primitive owns.
/// - The callbacks keep the rules of the module docs (no unwinding is
///   enforced by an abort; no parking is enforced by loom and spin builds).
#[inline]
pub(crate) unsafe fn park(
    key: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    timed_out: impl FnOnce(usize, bool),
    token: ParkToken,
    deadline: Option<Instant>,
) -> ParkResult {
    // SAFETY: this function's contract is the backend's.
    unsafe {
        Selected::park(
            key,
            || abort_on_unwind(validate),
            || abort_on_unwind(before_sleep),
            |key, was_last| abort_on_unwind(|| timed_out(key, was_last)),
            token,
            deadline,
        )
    }
}

/// Unparks the oldest thread parked on `key` (see the module docs).
///
/// # Safety
/// As [`park`].
#[inline]
pub(crate) unsafe fn unpark_one(
    key: usize,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    // SAFETY: this function's contract is the backend's.
    unsafe { Selected::unpark_one(key, |result| abort_on_unwind(|| callback(result))) }
}

/// Unparks the threads on `key` that `filter` selects, oldest first (see
/// the module docs).
///
/// # Safety
/// As [`park`].
#[inline]
pub(crate) unsafe fn unpark_filter(
    key: usize,
    mut filter: impl FnMut(ParkToken) -> FilterOp,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    // SAFETY: this function's contract is the backend's.
    unsafe {
        Selected::unpark_filter(
            key,
            |token| abort_on_unwind(|| filter(token)),
            |result| abort_on_unwind(|| callback(result)),
        )
    }
}

/// Moves the threads parked on `key_from` to `key_to`'s queue, waking the
/// oldest if `validate` (run with both queues locked) says so; `callback`
/// runs with both queues locked before anyone wakes, unless `validate`
/// returned `Abort`. A moved thread stays in its `park` call and is woken
/// by a later unpark of `key_to` (or times out there: its `timed_out` then
/// gets `key_to`). `parking_lot_core::unpark_requeue`'s contract.
///
/// # Safety
/// As [`park`], for both keys.
#[inline]
pub(crate) unsafe fn unpark_requeue(
    key_from: usize,
    key_to: usize,
    validate: impl FnOnce() -> RequeueOp,
    callback: impl FnOnce(RequeueOp, UnparkResult) -> UnparkToken,
) -> UnparkResult {
    // SAFETY: this function's contract is the backend's.
    unsafe {
        Selected::unpark_requeue(
            key_from,
            key_to,
            || abort_on_unwind(validate),
            |op, result| abort_on_unwind(|| callback(op, result)),
        )
    }
}

/// The calling thread's identity, `None` when the build cannot tell.
#[inline]
pub(crate) fn thread_id() -> Option<NonZeroU64> {
    Selected::thread_id()
}

/// Gives up the CPU for a moment, as far as the build can.
#[inline]
pub(crate) fn yield_now() {
    Selected::yield_now();
}

/// How many rounds `SpinWait` spins before it gives up.
#[inline]
pub(crate) fn spin_limit() -> u32 {
    Selected::spin_limit()
}

/// Runs `f`; if it unwinds, the process aborts.
///
/// The guard's `drop` runs only while `f` unwinds, and panics there; a
/// panic during unwinding aborts, in std and no-std builds alike.
#[inline(always)]
pub(crate) fn abort_on_unwind<R>(f: impl FnOnce() -> R) -> R {
    struct Abort;
    impl Drop for Abort {
        fn drop(&mut self) {
            panic!(
                "gilock: a panic unwound through the parking lot (a park callback, or \
                 user code run while a thread was queued); aborting, because the park \
                 queue and the primitive's state may be half-updated"
            );
        }
    }
    let abort = Abort;
    let result = f();
    core::mem::forget(abort);
    result
}

/// The token an unparker hands over when nothing special is meant.
pub(crate) const DEFAULT_UNPARK_TOKEN: UnparkToken = UnparkToken(0);
