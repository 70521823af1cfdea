//! Switch intervals, shared by the fair mutex and the Gil: kept in whole
//! microseconds in 32 bits, so that the mutex stays at 8 bytes and no
//! deadline computed from an interval can overflow.

use crate::park::Instant;
use core::time::Duration;

/// CPython's default `sys.getswitchinterval()`: 5 ms.
pub(crate) const DEFAULT_MICROS: u32 = 5_000;

/// An interval in whole microseconds: zero becomes 1 µs (a waiter asks at
/// once) and anything over about 71 minutes (`u32::MAX` µs) becomes that.
pub(crate) const fn to_micros(interval: Duration) -> u32 {
    let micros = interval.as_micros();
    if micros == 0 {
        1
    } else if micros > u32::MAX as u128 {
        u32::MAX
    } else {
        micros as u32
    }
}

/// The interval kept as `micros`.
pub(crate) const fn from_micros(micros: u32) -> Duration {
    Duration::from_micros(micros as u64)
}

/// The earlier of two optional deadlines (`None`: no deadline).
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_clamped_to_what_32_bits_of_microseconds_hold() {
        assert_eq!(to_micros(Duration::ZERO), 1);
        assert_eq!(to_micros(Duration::from_nanos(999)), 1);
        assert_eq!(to_micros(Duration::from_millis(5)), DEFAULT_MICROS);
        assert_eq!(to_micros(Duration::MAX), u32::MAX);
        // Just past what 32 bits hold (`Duration::MAX` happens to truncate
        // to `u32::MAX` too, so it cannot tell clamping from truncation).
        assert_eq!(
            to_micros(Duration::from_micros(u64::from(u32::MAX) + 1)),
            u32::MAX
        );
        assert_eq!(
            from_micros(to_micros(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}
