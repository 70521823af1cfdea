//! The std backend: `parking_lot_core`, whose global hash table of FIFO
//! queues and OS-level parking are exactly the contract of this layer.

use super::{FilterOp, Instant, ParkResult, ParkToken, UnparkResult, UnparkToken};

/// Parks the calling thread in the queue for `key` (see the module docs).
///
/// # Safety
/// `key` must be an address the calling primitive owns, and the callbacks
/// must not park, unpark or unwind.
#[inline]
pub(crate) unsafe fn park(
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
            deadline.map(Instant::into_std),
        )
    }
}

/// Unparks the oldest thread parked on `key`.
///
/// # Safety
/// As [`park`].
#[inline]
pub(crate) unsafe fn unpark_one(
    key: usize,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    // SAFETY: forwarded from this function's contract.
    unsafe { parking_lot_core::unpark_one(key, callback) }
}

/// Unparks the threads on `key` that `filter` selects, oldest first.
///
/// # Safety
/// As [`park`].
#[inline]
pub(crate) unsafe fn unpark_filter(
    key: usize,
    filter: impl FnMut(ParkToken) -> FilterOp,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    // SAFETY: forwarded from this function's contract.
    unsafe { parking_lot_core::unpark_filter(key, filter, callback) }
}
