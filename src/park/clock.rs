//! Monotonic time for deadlines, switch intervals and wait statistics, on
//! the backend's clock:
//!
//! - std: `std::time::Instant`, never wall time.
//! - loom: model time, which only the model timer moves
//!   ([`crate::model::fire_timeouts`], `advance`, `Timer`): a deadline is
//!   "now + its duration" on that clock, so deadlines compare as real ones
//!   do, and loom explores each step of the clock at every point where the
//!   timer can run.
//! - no std: a clock the user installs with `set_clock`; without one time
//!   stands still, so switch intervals never expire and timed waits only
//!   succeed or fail at once (a zero timeout).

use super::{Backend, Selected};
use core::time::Duration;

type Time = <Selected as Backend>::Time;

/// A point on the backend's monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant(Time);

impl Instant {
    #[inline]
    pub(crate) fn now() -> Self {
        Self(Selected::now())
    }

    /// Time from `earlier` to `self`; zero if `self` is not later.
    #[inline]
    pub(crate) fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        Selected::duration_between(earlier.0, self.0)
    }

    /// Whether the clock has reached `self`.
    #[inline]
    pub(crate) fn has_passed(&self) -> bool {
        Selected::now() >= self.0
    }

    /// `None` when the deadline lies beyond what the clock can represent
    /// (or never comes, without a clock): such a wait is simply untimed.
    #[inline]
    pub(crate) fn checked_add(&self, d: Duration) -> Option<Self> {
        Selected::checked_add(self.0, d).map(Self)
    }

    /// The instant of this build's clock for a std one.
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn from_std(instant: std::time::Instant) -> Self {
        Self(Selected::from_std(instant))
    }

    /// A `std::time::Instant` `timeout` from now on this build's clock
    /// (see `Backend::std_deadline_after`); `None` when it cannot be
    /// represented.
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn std_deadline_after(timeout: Duration) -> Option<std::time::Instant> {
        Selected::std_deadline_after(timeout)
    }

    /// The backend's representation, for the backend itself.
    #[inline]
    pub(super) fn time(self) -> Time {
        self.0
    }
}

/// The deadline `timeout` from now, `None` when it cannot be represented
/// (the wait is then untimed, never an overflow).
#[inline]
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
