//! Virtual time: [`SimTime`] is a point on the simulator's clock, in nanoseconds since the
//! simulator was created. Intervals are [`core::time::Duration`]s.
//!
//! In stepped mode the clock moves only when the simulator is stepped
//! ([`crate::Sim::step`], [`crate::Sim::run_until`]); in threaded mode it follows the host's
//! monotonic clock from the moment the firmware thread started.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in simulated time, in nanoseconds since the simulator was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub u64);

impl SimTime {
    /// Time zero.
    pub const ZERO: SimTime = SimTime(0);
    /// The far future (never).
    pub const NEVER: SimTime = SimTime(u64::MAX);

    /// From nanoseconds.
    pub const fn from_nanos(ns: u64) -> SimTime {
        SimTime(ns)
    }

    /// From microseconds.
    pub const fn from_micros(us: u64) -> SimTime {
        SimTime(us.saturating_mul(1_000))
    }

    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> SimTime {
        SimTime(ms.saturating_mul(1_000_000))
    }

    /// From seconds.
    pub const fn from_secs(s: u64) -> SimTime {
        SimTime(s.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since time zero.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Microseconds since time zero (truncated).
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    /// The interval from `earlier` to `self` (zero if `earlier` is later).
    pub const fn since(self, earlier: SimTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`SimTime::NEVER`].
    pub fn saturating_add(self, d: Duration) -> SimTime {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        SimTime(self.0.saturating_add(ns))
    }
}

impl Add<Duration> for SimTime {
    type Output = SimTime;
    fn add(self, d: Duration) -> SimTime {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for SimTime {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub for SimTime {
    type Output = Duration;
    fn sub(self, rhs: SimTime) -> Duration {
        self.since(rhs)
    }
}

impl fmt::Display for SimTime {
    /// Seconds with nanosecond precision: `12.000345678`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == SimTime::NEVER {
            return f.write_str("never");
        }
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_display() {
        let t = SimTime::from_micros(1_500);
        assert_eq!(t.as_nanos(), 1_500_000);
        assert_eq!((t + Duration::from_micros(500)).as_micros(), 2_000);
        assert_eq!(
            SimTime::from_secs(2) - t,
            Duration::from_nanos(1_998_500_000)
        );
        assert_eq!(t - SimTime::from_secs(2), Duration::ZERO);
        assert_eq!(SimTime::from_millis(12).to_string(), "0.012000000");
        assert_eq!(SimTime::NEVER.to_string(), "never");
        assert_eq!(SimTime::NEVER + Duration::from_secs(1), SimTime::NEVER);
    }
}
