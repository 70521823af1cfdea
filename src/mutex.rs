//! The `parking_lot` names for the crate's one mutex: `Mutex`, `MutexGuard`,
//! `MappedMutexGuard` and `MappedFairMutexGuard`, all over [`RawFairMutex`].
//!
//! gilock has one mutex algorithm, so `Mutex<T>` and
//! [`FairMutex<T>`](crate::FairMutex) are the same type: code written for
//! `parking_lot::Mutex` or `parking_lot::FairMutex` compiles against either
//! name.

use crate::fair_mutex::RawFairMutex;

/// A mutex protecting a `T`, under `parking_lot`'s name: the same type as
/// [`FairMutex<T>`](crate::FairMutex) (`lock_api::Mutex` over
/// [`RawFairMutex`]).
///
/// It is unfair until a waiter is overdue, then fair: an unlock lets a
/// running thread re-take the lock (the throughput of `parking_lot::Mutex`)
/// until some waiter has waited one switch interval (5 ms unless set with
/// [`RawFairMutex::with_switch_interval`] or
/// [`set_switch_interval`](RawFairMutex::set_switch_interval)); from then on
/// each unlock hands the lock to the oldest waiter. So where
/// `parking_lot::Mutex` can starve a waiter, this one bounds every wait by
/// about (threads ahead + 1) × interval. `MutexGuard::unlock_fair` and
/// `bump` hand off at once, as in `parking_lot`.
///
/// Differences a `parking_lot` user may notice: the lock takes 8 bytes (the
/// state byte and the interval), not 1; its guards are `Send` (as
/// `parking_lot`'s with its `send_guard` feature), since ownership is not
/// tied to a thread; and without `std` there is no `try_lock_for`.
///
/// # Example
///
/// ```
/// use gilock::{Mutex, MutexGuard};
///
/// static COUNTER: Mutex<(u64, &str)> = Mutex::new((0, "requests"));
///
/// COUNTER.lock().0 += 1;
/// let guard = COUNTER.try_lock().expect("nobody holds it");
/// let mut count = MutexGuard::map(guard, |pair| &mut pair.0);
/// *count *= 2;
/// drop(count);
/// assert_eq!(*COUNTER.lock(), (2, "requests"));
/// ```
///
/// With `std`, `try_lock_for` and `try_lock_until` wait at most so long.
pub type Mutex<T> = lock_api::Mutex<RawFairMutex, T>;

/// The guard of a [`Mutex`]; the same type as
/// [`FairMutexGuard`](crate::FairMutexGuard). The lock is released when it
/// drops.
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, RawFairMutex, T>;

/// A [`MutexGuard`] narrowed to a part of the data by `MutexGuard::map`;
/// the same type as [`MappedFairMutexGuard`]. It cannot be unlocked
/// temporarily (`unlocked`, `bump`), since the part might move meanwhile.
pub type MappedMutexGuard<'a, T> = lock_api::MappedMutexGuard<'a, RawFairMutex, T>;

/// A [`FairMutexGuard`](crate::FairMutexGuard) narrowed to a part of the
/// data by `FairMutexGuard::map`; the same type as [`MappedMutexGuard`].
pub type MappedFairMutexGuard<'a, T> = lock_api::MappedMutexGuard<'a, RawFairMutex, T>;

static_assertions::assert_type_eq_all!(Mutex<u8>, crate::FairMutex<u8>);
static_assertions::assert_type_eq_all!(MutexGuard<'static, u8>, crate::FairMutexGuard<'static, u8>);
static_assertions::assert_impl_all!(Mutex<core::cell::Cell<u8>>: Send, Sync);
