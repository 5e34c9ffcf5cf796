//! The two clocks of an invocation, as two types that cannot be compared with each other.
//!
//! - **Decision time** (`jiff::Timestamp`, [`crate::runner::Invocation::now`]): the instant a
//!   handler decides at. Every schedule, window, holiday, TTL, lease and report decision
//!   reads it. In Lambda it is the real clock when the invocation starts; locally
//!   `FLEET_NOW` may set it anywhere in the past or future (the demo replays a virtual day).
//! - **Real time left** ([`Budget`], a monotonic `std::time::Instant`): how long the
//!   invocation may still run. Every "time left" (a DNS sync stopping between records, a
//!   drain's deadline, a scheduler tick's last cluster, how long a lease must hold) reads
//!   it. In Lambda it ends at the runtime's deadline; locally after a fixed
//!   [`LOCAL_BUDGET`].
//!
//! A decision-time instant that bounds real work (a spot interruption's two minutes) is
//! turned into real time once, explicitly, with [`crate::runner::Invocation::real_instant`],
//! and a real instant into decision time with [`crate::runner::Invocation::decision_time`]:
//! both assume the decision clock runs at real speed from the invocation's start.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The budget of a local run: Lambda's longest timeout (15 minutes), so that a local run
/// never has more time than the same work would in Lambda.
pub const LOCAL_BUDGET: Duration = Duration::from_secs(900);

/// The real time an invocation may still spend. Copy it freely: it is an end instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Budget {
    ends: Instant,
}

impl Budget {
    /// A budget of `length` from this moment.
    pub fn of(length: Duration) -> Self {
        Budget::ending(Instant::now() + length)
    }

    /// A budget that ends at `ends` (a monotonic instant).
    pub fn ending(ends: Instant) -> Self {
        Budget { ends }
    }

    /// Lambda's deadline: `deadline_ms` milliseconds since the Unix epoch, by the real
    /// wall clock (the runtime's `Lambda-Runtime-Deadline-Ms` header).
    pub fn until_epoch_ms(deadline_ms: u64) -> Self {
        // Real time on purpose: the runtime's deadline is a wall-clock instant, so the
        // only way to know how long is left is to compare it with the real wall clock,
        // once, here; from then on the monotonic clock counts it down.
        let wall_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let left = Duration::from_millis(deadline_ms).saturating_sub(wall_now);
        Budget::of(left)
    }

    /// The real time left (zero once spent).
    pub fn remaining(&self) -> Duration {
        self.ends.saturating_duration_since(Instant::now())
    }

    /// Whether less than `margin` is left.
    pub fn is_within(&self, margin: Duration) -> bool {
        self.remaining() < margin
    }

    /// The monotonic instant the budget ends at (for `tokio::time::timeout_at`, sleeps).
    pub fn ends(&self) -> Instant {
        self.ends
    }

    /// The same budget with `margin` kept in hand: it ends `margin` earlier (never before
    /// now, so that a budget already short ends at once rather than in the past).
    pub fn less(&self, margin: Duration) -> Budget {
        let now = Instant::now();
        let ends = self.ends.checked_sub(margin).unwrap_or(now).max(now);
        Budget {
            ends: ends.min(self.ends),
        }
    }

    /// The earlier of this budget and `other`.
    pub fn min(self, other: Instant) -> Budget {
        Budget {
            ends: self.ends.min(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_counts_down_and_never_below_zero() {
        let b = Budget::of(Duration::from_secs(60));
        assert!(b.remaining() <= Duration::from_secs(60));
        assert!(b.remaining() > Duration::from_secs(59));
        assert!(!b.is_within(Duration::from_secs(30)));
        assert!(b.is_within(Duration::from_secs(61)));
        let spent = Budget::of(Duration::ZERO);
        assert_eq!(spent.remaining(), Duration::ZERO);
    }

    #[test]
    fn margins_end_a_budget_earlier_but_not_in_the_past() {
        let b = Budget::of(Duration::from_secs(60));
        let less = b.less(Duration::from_secs(15));
        assert!(less.remaining() <= Duration::from_secs(45));
        assert!(less.remaining() > Duration::from_secs(44));
        let short = Budget::of(Duration::from_secs(2)).less(Duration::from_secs(5));
        assert_eq!(short.remaining(), Duration::ZERO);
        assert!(short.ends() <= Instant::now());
    }

    #[test]
    fn lambdas_deadline_is_read_against_the_real_wall_clock() {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let b = Budget::until_epoch_ms(wall_ms + 30_000);
        assert!(b.remaining() > Duration::from_secs(29));
        assert!(b.remaining() <= Duration::from_secs(30));
        // A deadline already past (a slow cold start) is a spent budget, not a panic.
        assert_eq!(
            Budget::until_epoch_ms(wall_ms.saturating_sub(5_000)).remaining(),
            Duration::ZERO
        );
        assert_eq!(Budget::until_epoch_ms(0).remaining(), Duration::ZERO);
    }
}
