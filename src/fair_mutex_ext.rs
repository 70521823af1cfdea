//! `FairMutexExt`: a [`FairMutex`]'s switch interval and drop request,
//! reached without `unsafe`.
//!
//! `lock_api::Mutex::raw` is `unsafe`, because a raw mutex can be unlocked
//! behind its guards' back. Reading and setting the interval, or polling
//! the drop request, is not that, so the trait reaches them for the user.

use crate::fair_mutex::{FairMutex, RawFairMutex};
use core::time::Duration;

/// The switch interval and the drop request of a [`FairMutex`], as safe
/// methods (the same ones [`RawFairMutex`] has, which a `FairMutex` only
/// reaches through the `unsafe` `lock_api::Mutex::raw`).
///
/// A holder that works in a loop can poll
/// [`is_drop_requested`](Self::is_drop_requested) and let go early, as an
/// interpreter polls its eval breaker; `lock_api::MutexGuard::mutex` gives
/// the mutex from a guard.
///
/// ```
/// use gilock::{FairMutex, FairMutexExt, FairMutexGuard};
/// use std::time::Duration;
///
/// static SESSIONS: FairMutex<Vec<u64>> = FairMutex::new(Vec::new());
///
/// // At run time, e.g. from configuration; waits that start later use it.
/// SESSIONS.set_switch_interval(Duration::from_micros(500));
/// assert_eq!(SESSIONS.switch_interval(), Duration::from_micros(500));
///
/// let mut sessions = SESSIONS.lock();
/// for id in 0..1000 {
///     sessions.push(id);
///     if FairMutexGuard::mutex(&sessions).is_drop_requested() {
///         // A waiter is overdue: hand it the lock, then carry on.
///         FairMutexGuard::bump(&mut sessions);
///     }
/// }
/// assert_eq!(sessions.len(), 1000);
/// ```
pub trait FairMutexExt: sealed::Sealed {
    /// The current switch interval.
    fn switch_interval(&self) -> Duration;

    /// Changes the switch interval; waits that start later use the new one.
    /// Kept in whole microseconds, as
    /// [`RawFairMutex::with_switch_interval`] keeps it.
    fn set_switch_interval(&self, interval: Duration);

    /// Whether a waiter has waited longer than the switch interval, so that
    /// the next unlock hands the lock over. One relaxed load.
    fn is_drop_requested(&self) -> bool;
}

impl<T: ?Sized> FairMutexExt for FairMutex<T> {
    fn switch_interval(&self) -> Duration {
        raw_of(self).switch_interval()
    }

    fn set_switch_interval(&self, interval: Duration) {
        raw_of(self).set_switch_interval(interval);
    }

    #[inline]
    fn is_drop_requested(&self) -> bool {
        raw_of(self).is_drop_requested()
    }
}

/// The raw mutex, for the methods above only.
#[inline]
fn raw_of<T: ?Sized>(mutex: &FairMutex<T>) -> &RawFairMutex {
    // SAFETY:
    // - `raw` is unsafe because locking or unlocking the raw mutex behind
    //   the `Mutex`'s back breaks its guards' promise;
    // - the reference goes only to `switch_interval`, `set_switch_interval`
    //   and `is_drop_requested` (this module), none of which locks or
    //   unlocks.
    unsafe { mutex.raw() }
}

mod sealed {
    /// Only `FairMutex` implements `FairMutexExt`, so methods can be added.
    pub trait Sealed {}
    impl<T: ?Sized> Sealed for super::FairMutex<T> {}
}
