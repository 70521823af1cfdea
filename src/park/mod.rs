//! Putting a waiting thread to sleep and waking it: FIFO queues keyed by an
//! address, with the contract of `parking_lot_core`.
//!
//! Three backends, chosen at compile time, share this interface:
//! - `parking_lot.rs` (std): `parking_lot_core` itself;
//! - `model.rs` (`--cfg loom`): a model parking lot over loom's `Mutex` and
//!   `thread::park`, whose timed parks are fired by a model timer thread;
//! - `spin.rs` (no std): the same queue, with waiters spinning on a flag.
//!
//! The contract every primitive relies on:
//! - `park` calls `validate` with the queue locked; if it returns true the
//!   thread joins the tail of the queue for `key`, the queue is unlocked, and
//!   `before_sleep` runs before the thread sleeps.
//! - A thread leaves the queue only by an unpark (which hands it a token) or
//!   by its deadline passing, in which case `timed_out(key, was_last)` runs
//!   with the queue locked. Exactly one of the two happens.
//! - `unpark_one` / `unpark_filter` remove threads oldest first and run their
//!   callback with the queue locked, before any removed thread wakes, so the
//!   callback can publish the state the woken threads will see.
//! - Callbacks run with the queue locked: they must not park, unpark or
//!   unwind.

pub(crate) mod clock;

#[cfg(all(feature = "std", not(loom)))]
mod parking_lot;
#[cfg(all(feature = "std", not(loom)))]
pub(crate) use self::parking_lot::{park, unpark_filter, unpark_one};
#[cfg(all(feature = "std", not(loom)))]
pub(crate) use parking_lot_core::{FilterOp, ParkResult, ParkToken, UnparkResult, UnparkToken};

#[cfg(any(loom, not(feature = "std")))]
mod queue;
#[cfg(any(loom, not(feature = "std")))]
pub(crate) use self::queue::{FilterOp, ParkResult, ParkToken, UnparkResult, UnparkToken};

#[cfg(loom)]
pub(crate) mod model;
#[cfg(loom)]
pub(crate) use self::model::{park, unpark_filter, unpark_one};

#[cfg(all(not(feature = "std"), not(loom)))]
mod spin;
#[cfg(all(not(feature = "std"), not(loom)))]
pub(crate) use self::spin::{park, unpark_filter, unpark_one};

pub(crate) use self::clock::Instant;

/// The token an unparker hands over when nothing special is meant.
pub(crate) const DEFAULT_UNPARK_TOKEN: UnparkToken = UnparkToken(0);
