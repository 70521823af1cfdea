//! The std backend: `parking_lot_core`, whose global hash table of FIFO
//! queues and OS-level parking are exactly the contract of this layer, on
//! std's monotonic clock and thread-locals.
//!
//! `parking_lot_core` aborts if anything unwinds inside an operation, and
//! documents that callbacks must not park; it does not detect a nested park,
//! so this backend relies on the contract there.

use super::{Backend, FilterOp, Instant, ParkResult, ParkToken, UnparkResult, UnparkToken};
use crate::sync::{Ordering, UnmodeledAtomicU64};
use core::num::NonZeroU64;
use core::time::Duration;

/// `parking_lot_core` and std.
pub(crate) struct ParkingLotCore;

/// Thread ids handed out so far; they must never repeat.
static NEXT_THREAD_ID: UnmodeledAtomicU64 = UnmodeledAtomicU64::new(1);

std::thread_local! {
    static THREAD_ID: NonZeroU64 = {
        let id = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
        NonZeroU64::new(id).expect("thread ids exhausted")
    };
}

impl Backend for ParkingLotCore {
    type Time = std::time::Instant;

    #[inline]
    unsafe fn park(
        key: usize,
        validate: impl FnOnce() -> bool,
        before_sleep: impl FnOnce(),
        timed_out: impl FnOnce(usize, bool),
        token: ParkToken,
        deadline: Option<Instant>,
    ) -> ParkResult {
        // SAFETY: forwarded from this function's contract, which is
        // parking_lot_core's.
        unsafe {
            parking_lot_core::park(
                key,
                validate,
                before_sleep,
                timed_out,
                token,
                deadline.map(Instant::time),
            )
        }
    }

    #[inline]
    unsafe fn unpark_one(
        key: usize,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        // SAFETY: forwarded from this function's contract.
        unsafe { parking_lot_core::unpark_one(key, callback) }
    }

    #[inline]
    unsafe fn unpark_filter(
        key: usize,
        filter: impl FnMut(ParkToken) -> FilterOp,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        // SAFETY: forwarded from this function's contract.
        unsafe { parking_lot_core::unpark_filter(key, filter, callback) }
    }

    #[inline]
    fn now() -> Self::Time {
        std::time::Instant::now()
    }

    #[inline]
    fn checked_add(at: Self::Time, d: Duration) -> Option<Self::Time> {
        at.checked_add(d)
    }

    #[inline]
    fn duration_between(earlier: Self::Time, later: Self::Time) -> Duration {
        later.saturating_duration_since(earlier)
    }

    #[inline]
    fn from_std(instant: std::time::Instant) -> Self::Time {
        instant
    }

    #[inline]
    fn thread_id() -> Option<NonZeroU64> {
        Some(THREAD_ID.with(|id| *id))
    }

    #[inline]
    fn yield_now() {
        std::thread::yield_now();
    }

    #[inline]
    fn spin_limit() -> u32 {
        10
    }
}
