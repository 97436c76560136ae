//! The retry policy for transient failures (SPEC §3): attempts and
//! exponential backoff, configured on the worker and recorded in each
//! workflow's history when it starts, so replays see the same policy.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    /// Attempts per step in all (1 = no retry).
    pub max_attempts: u32,
    #[serde(with = "millis")]
    pub initial_interval: Duration,
    pub backoff_coefficient: f64,
    #[serde(with = "millis")]
    pub max_interval: Duration,
}

impl RetryConfig {
    /// The defaults (SPEC §3), which the worker's flags also show.
    pub const DEFAULT: Self = Self {
        max_attempts: 3,
        initial_interval: Duration::from_secs(1),
        backoff_coefficient: 2.0,
        max_interval: Duration::from_secs(30),
    };
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An outage wait is at most this fraction of the outage so far (and at
/// least the policy's backoff).
const OUTAGE_SHARE: u32 = 10;

impl RetryConfig {
    /// The wait before trying again while a dependency (the database) is
    /// away, after `waits` waits and `elapsed` of outage: the policy's
    /// backoff, or a tenth of the outage so far when that is longer. Each
    /// wait is a timer and a few events in the order's history; waits that
    /// grow with the outage make their number grow with the logarithm of
    /// its length (about 75 for a day, 135 for a year at the default
    /// policy), and the order notices the database is back within a tenth
    /// of the time it was away.
    pub fn outage_backoff(&self, waits: u32, elapsed: Duration) -> Duration {
        self.backoff(waits).max(elapsed / OUTAGE_SHARE)
    }

    /// The wait after failed attempt `attempt` (1-based) before the next one.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = self
            .backoff_coefficient
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(64) as i32);
        let wait = self.initial_interval.as_secs_f64() * factor;
        Duration::from_secs_f64(wait.min(self.max_interval.as_secs_f64()))
    }
}

pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_from_the_initial_interval_capped_at_the_maximum() {
        let policy = RetryConfig::default();
        let waits: Vec<u64> = (1..=7).map(|a| policy.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn outage_waits_grow_with_the_outage_so_their_number_stays_small() {
        let policy = RetryConfig::default();
        assert_eq!(
            policy.outage_backoff(2, Duration::ZERO),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.outage_backoff(9, Duration::from_secs(3600)),
            Duration::from_secs(360)
        );
        // Count the waits of outages of a day and of a year.
        let count = |outage: Duration| {
            let (mut elapsed, mut waits) = (Duration::ZERO, 0);
            while elapsed < outage {
                waits += 1;
                elapsed += policy.outage_backoff(waits, elapsed);
            }
            waits
        };
        let day = count(Duration::from_secs(24 * 3600));
        let year = count(Duration::from_secs(365 * 24 * 3600));
        assert!((50..=90).contains(&day), "{day} waits in a day");
        assert!((100..=150).contains(&year), "{year} waits in a year");
    }

    #[test]
    fn a_coefficient_below_one_does_not_shrink_waits() {
        let policy = RetryConfig {
            backoff_coefficient: 0.5,
            ..RetryConfig::default()
        };
        assert_eq!(policy.backoff(3), Duration::from_secs(1));
    }
}
