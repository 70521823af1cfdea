//! Monotonic time for deadlines, switch intervals and wait statistics.
//!
//! - std: `std::time::Instant`, never wall time.
//! - loom: loom has no clock, so time is a tick counter that only the model
//!   timer ([`crate::model::fire_timeouts`]) advances. Every deadline taken
//!   before a tick has passed after it: the model explores "the timeout fired
//!   here" at every point where the timer thread can run.
//! - no std: a clock the user installs with [`crate::set_clock`]; without one
//!   time stands still, so switch intervals never expire and timed waits only
//!   succeed or fail at once (a zero timeout).

use core::time::Duration;

/// A point on the monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant(Repr);

#[cfg(all(feature = "std", not(loom)))]
type Repr = std::time::Instant;

#[cfg(loom)]
type Repr = i64;

#[cfg(all(not(feature = "std"), not(loom)))]
type Repr = Duration;

#[cfg(all(feature = "std", not(loom)))]
impl Instant {
    pub(crate) fn now() -> Self {
        Self(std::time::Instant::now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    pub(crate) fn has_passed(&self) -> bool {
        std::time::Instant::now() >= self.0
    }

    /// `None` when the deadline lies beyond what the clock can represent:
    /// such a wait is simply untimed.
    pub(crate) fn checked_add(&self, d: Duration) -> Option<Self> {
        self.0.checked_add(d).map(Self)
    }

    pub(crate) fn from_std(instant: std::time::Instant) -> Self {
        Self(instant)
    }

    pub(crate) fn into_std(self) -> std::time::Instant {
        self.0
    }
}

#[cfg(loom)]
impl Instant {
    pub(crate) fn now() -> Self {
        Self(super::model::ticks())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        Duration::ZERO
    }

    pub(crate) fn has_passed(&self) -> bool {
        super::model::ticks() > self.0
    }

    /// A zero duration has passed already; any other passes at the next
    /// tick of the model timer.
    pub(crate) fn checked_add(&self, d: Duration) -> Option<Self> {
        if d.is_zero() {
            Some(Self(self.0 - 1))
        } else {
            Some(*self)
        }
    }

    #[cfg(feature = "std")]
    pub(crate) fn from_std(instant: std::time::Instant) -> Self {
        let now = Self::now();
        if instant <= std::time::Instant::now() {
            Self(now.0 - 1)
        } else {
            now
        }
    }
}

#[cfg(all(not(feature = "std"), not(loom)))]
impl Instant {
    pub(crate) fn now() -> Self {
        Self(user_clock::now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        user_clock::now().saturating_sub(self.0)
    }

    pub(crate) fn has_passed(&self) -> bool {
        user_clock::now() >= self.0
    }

    pub(crate) fn checked_add(&self, d: Duration) -> Option<Self> {
        if !d.is_zero() && !user_clock::installed() {
            // Time stands still without a clock: the deadline never comes.
            return None;
        }
        self.0.checked_add(d).map(Self)
    }
}

#[cfg(all(not(feature = "std"), not(loom)))]
pub(crate) mod user_clock {
    use core::sync::atomic::{AtomicPtr, Ordering};
    use core::time::Duration;

    static CLOCK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

    pub(crate) fn install(now: fn() -> Duration) {
        CLOCK.store(now as *mut (), Ordering::Release);
    }

    pub(crate) fn installed() -> bool {
        !CLOCK.load(Ordering::Acquire).is_null()
    }

    pub(crate) fn now() -> Duration {
        let ptr = CLOCK.load(Ordering::Acquire);
        if ptr.is_null() {
            return Duration::ZERO;
        }
        // SAFETY: the only non-null value ever stored is a `fn() -> Duration`
        // cast to a pointer in `install`; function pointers and data pointers
        // have the same size on every target Rust supports without std.
        let now: fn() -> Duration =
            unsafe { core::mem::transmute::<*mut (), fn() -> Duration>(ptr) };
        now()
    }
}

/// The deadline `timeout` from now, `None` when it cannot be represented
/// (the wait is then untimed, never an overflow).
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
