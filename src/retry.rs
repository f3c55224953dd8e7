//! When and how long to wait before running a transaction again: the
//! attempt budget, the jittered exponential backoff of `session.retry`, and
//! the gate that lets a transaction on its last attempt run alone.

use std::time::Duration;

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

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

    /// Whether attempt number `attempt` is the last one allowed, and the
    /// transaction has already lost at least once.
    pub(crate) fn is_last_retry(&self, attempt: u32) -> bool {
        attempt > 1 && attempt == self.attempts
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
        half + half.mul_f64(crate::random::unit())
    }
}

/// Where the retrying form's attempts pass: side by side, except the last
/// attempt of a transaction that kept losing, which waits until the attempts
/// in flight have finished and runs alone. Backoff alone cannot stop one
/// unlucky transaction from losing every time to a stream of fresh ones on a
/// hot row; running its last attempt alone does, among this registry's
/// transactions (other processes and plain sessions still compete).
#[derive(Default)]
pub(crate) struct Gate(RwLock<()>);

/// Held for the length of one attempt: shared, alone, or neither for a
/// transaction begun inside another's attempt (which must not queue at the
/// gate its caller already holds).
pub(crate) struct Pass<'a> {
    _shared: Option<RwLockReadGuard<'a, ()>>,
    _alone: Option<RwLockWriteGuard<'a, ()>>,
}

tokio::task_local! {
    /// Set while a task runs an attempt that holds a pass.
    static IN_ATTEMPT: ();
}

impl Gate {
    /// Waits for a pass: shared, or `alone` for a last attempt.
    pub(crate) async fn pass(&self, alone: bool) -> Pass<'_> {
        let (mut shared, mut exclusive) = (None, None);
        if IN_ATTEMPT.try_with(|()| ()).is_err() {
            if alone {
                exclusive = Some(self.0.write().await);
            } else {
                shared = Some(self.0.read().await);
            }
        }
        Pass {
            _shared: shared,
            _alone: exclusive,
        }
    }

    /// Runs one attempt's future marked as holding a pass.
    pub(crate) async fn within<F: Future>(attempt: F) -> F::Output {
        IN_ATTEMPT.scope((), attempt).await
    }
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
