//! When and how long to wait before running a transaction again: the
//! attempt budget and the jittered exponential backoff of `session.retry`.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use crate::config::RetryConfig;

/// The retry budget of one call of the retrying form.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    attempts: u32,
    min: Duration,
    max: Duration,
}

impl Retry {
    pub(crate) fn new(config: &RetryConfig) -> Self {
        Self {
            attempts: config.attempts.max(1),
            min: config.backoff.min,
            max: config.backoff.max,
        }
    }

    /// The same budget with `attempts` in all.
    pub(crate) fn with_attempts(self, attempts: u32) -> Self {
        Self {
            attempts: attempts.max(1),
            ..self
        }
    }

    /// Whether another attempt may follow attempt number `attempt` (from 1).
    pub(crate) fn allows_after(&self, attempt: u32) -> bool {
        attempt < self.attempts
    }

    /// The pause after failed attempt number `attempt` (from 1): `min`
    /// doubled per attempt, capped at `max`, then drawn uniformly between
    /// half of that and all of it, so colliding sessions drift apart.
    pub(crate) fn pause(&self, attempt: u32) -> Duration {
        let doubled = self.min.saturating_mul(
            1_u32
                .checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let ceiling = doubled.min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(unit_random())
    }
}

/// A number in `[0, 1)` from the standard library's randomly seeded hasher:
/// jitter needs spread, not cryptographic quality.
fn unit_random() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    // 53 random bits make every f64 in [0, 1) equally likely.
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Retry;
    use crate::config::RetryConfig;

    #[test]
    fn pauses_double_within_jitter_and_stop_at_max() {
        let retry = Retry::new(
            &RetryConfig::default().backoff(Duration::from_millis(10), Duration::from_millis(50)),
        );
        for _ in 0..100 {
            let first = retry.pause(1);
            assert!((Duration::from_millis(5)..=Duration::from_millis(10)).contains(&first));
            let second = retry.pause(2);
            assert!((Duration::from_millis(10)..=Duration::from_millis(20)).contains(&second));
            let late = retry.pause(30);
            assert!((Duration::from_millis(25)..=Duration::from_millis(50)).contains(&late));
        }
    }

    #[test]
    fn attempts_count_the_first_one() {
        let retry = Retry::new(&RetryConfig::default().attempts(3));
        assert!(retry.allows_after(1));
        assert!(retry.allows_after(2));
        assert!(!retry.allows_after(3));
        assert!(!retry.with_attempts(1).allows_after(1));
    }
}
