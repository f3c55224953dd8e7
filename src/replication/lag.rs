//! How many seconds a replica is behind, judged from positions rather than
//! from the replica's last replay timestamp: that timestamp grows while the
//! primary writes nothing, so a quiet primary would make an up-to-date
//! replica look stale. Here a replica that has replayed the primary's
//! latest position is zero seconds behind, however long ago that was.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::ReplicationPosition;

/// Samples kept; with the window's resolution they span at least the window.
const CAPACITY: usize = 64;

/// Recent positions of the primary, each with the moment it was first seen.
///
/// A replica's lag is the age of the oldest sample it has not replayed: the
/// primary had data at that moment that the replica still lacks. This is a
/// lower bound that is off by at most the gap between samples, and it is
/// zero whenever the replica has replayed the newest sample.
#[derive(Debug)]
pub(crate) struct LagEstimator {
    samples: VecDeque<(Instant, ReplicationPosition)>,
    /// How far back the history is meant to reach.
    window: Duration,
    /// Samples closer together than this are merged (the older moment is kept).
    resolution: Duration,
}

impl LagEstimator {
    /// An estimator that can tell lags up to about `window` (beyond it, it
    /// says at least the age of its oldest sample, which is more than
    /// `window` once it has run that long).
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            samples: VecDeque::with_capacity(CAPACITY),
            window,
            // Samples are at least this far apart, so a full history spans
            // (CAPACITY - 1) steps: more than `window`.
            resolution: window / u32::try_from(CAPACITY - 2).unwrap_or(u32::MAX),
        }
    }

    /// Records that the primary was at `position` at `at`.
    ///
    /// An unchanged position keeps the moment it was first seen; a position
    /// that does not cover the previous one (a failover to another primary)
    /// starts the history afresh.
    pub(crate) fn record(&mut self, at: Instant, position: ReplicationPosition) {
        if let Some((seen, newest)) = self.samples.back_mut() {
            if *newest == position {
                return;
            }
            if !position.covers(newest) {
                self.samples.clear();
            } else if at.saturating_duration_since(*seen) < self.resolution {
                // Overstates the lag of a replica between the two positions
                // by less than `resolution`.
                *newest = position;
                return;
            }
        }
        if self.samples.len() == CAPACITY {
            self.samples.pop_front();
        }
        self.samples.push_back((at, position));
    }

    /// How far behind a replica that has replayed up to `replayed` is at
    /// `now`; `None` before the first sample.
    pub(crate) fn lag(&self, replayed: &ReplicationPosition, now: Instant) -> Option<Duration> {
        self.samples.back()?;
        Some(
            self.samples
                .iter()
                .find(|(_, position)| !replayed.covers(position))
                .map_or(Duration::ZERO, |(seen, _)| {
                    now.saturating_duration_since(*seen)
                }),
        )
    }
}

impl LagEstimator {
    /// [`lag`](Self::lag), when it is known to be the replica's lag: a
    /// replica that has not replayed even the oldest sample is at least
    /// that sample's age behind, by how much more is unknown — `None`,
    /// unless that age already exceeds the window (then it is far behind).
    /// Right after a start or a failover, whose history begins afresh, a
    /// replica is known only once it has replayed a sample.
    pub(crate) fn known_lag(
        &self,
        replayed: &ReplicationPosition,
        now: Instant,
    ) -> Option<Duration> {
        let (oldest_seen, oldest) = self.samples.front()?;
        let age = now.saturating_duration_since(*oldest_seen);
        if !replayed.covers(oldest) && age <= self.window {
            return None;
        }
        self.lag(replayed, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{CAPACITY, LagEstimator};
    use crate::replication::ReplicationPosition;

    fn lsn(n: u64) -> ReplicationPosition {
        ReplicationPosition::Lsn(n)
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn nothing_known_before_the_first_sample() {
        let estimator = LagEstimator::new(secs(5.0));
        assert_eq!(estimator.lag(&lsn(1), Instant::now()), None);
    }

    #[test]
    fn a_quiet_primary_never_makes_an_up_to_date_replica_stale() {
        let t0 = Instant::now();
        let mut estimator = LagEstimator::new(secs(5.0));
        for tick in 0..100 {
            estimator.record(t0 + secs(f64::from(tick)), lsn(42));
        }
        assert_eq!(
            estimator.lag(&lsn(42), t0 + secs(3600.0)),
            Some(Duration::ZERO)
        );
        // One that has not replayed the primary's position is behind since
        // that position was first seen.
        assert_eq!(
            estimator.lag(&lsn(41), t0 + secs(3600.0)),
            Some(secs(3600.0))
        );
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_position_not_replayed() {
        let t0 = Instant::now();
        let mut estimator = LagEstimator::new(secs(5.0));
        estimator.record(t0, lsn(100));
        estimator.record(t0 + secs(1.0), lsn(200));
        estimator.record(t0 + secs(2.0), lsn(300));
        let now = t0 + secs(3.0);
        assert_eq!(estimator.lag(&lsn(100), now), Some(secs(2.0)));
        assert_eq!(estimator.lag(&lsn(250), now), Some(secs(1.0)));
        assert_eq!(estimator.lag(&lsn(300), now), Some(Duration::ZERO));
        assert_eq!(estimator.lag(&lsn(999), now), Some(Duration::ZERO));
        assert_eq!(estimator.lag(&lsn(50), now), Some(secs(3.0)));
    }

    #[test]
    fn busy_primaries_keep_a_bounded_history_that_still_spans_the_window() {
        let t0 = Instant::now();
        let window = secs(5.0);
        let mut estimator = LagEstimator::new(window);
        // 10 000 commits a second for 20 s.
        for n in 0..200_000_u32 {
            estimator.record(t0 + secs(f64::from(n) / 10_000.0), lsn(u64::from(n) + 1));
        }
        assert!(estimator.samples.len() <= CAPACITY);
        let now = t0 + secs(20.0);
        // A replica 10 s behind is seen beyond the window, not as fresh.
        let lag = estimator.lag(&lsn(100_000), now).unwrap();
        assert!(lag > window, "{lag:?}");
        // One 1 s behind is seen within one resolution step of that.
        let lag = estimator.lag(&lsn(190_000), now).unwrap();
        let step = estimator.resolution;
        assert!(
            lag <= secs(1.0) + step && lag + step >= secs(1.0),
            "{lag:?}"
        );
    }

    #[test]
    fn a_new_primary_starts_the_history_afresh() {
        let t0 = Instant::now();
        let mut estimator = LagEstimator::new(secs(5.0));
        estimator.record(t0, lsn(1_000));
        // After a failover the new primary's positions are not comparable.
        estimator.record(t0 + secs(1.0), "0-1-5".parse().unwrap());
        let replayed = "0-1-5".parse().unwrap();
        assert_eq!(
            estimator.lag(&replayed, t0 + secs(9.0)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_replica_behind_the_whole_short_history_has_no_known_lag() {
        let t0 = Instant::now();
        let mut estimator = LagEstimator::new(secs(5.0));
        estimator.record(t0, lsn(1_000));
        estimator.record(t0 + secs(0.2), lsn(2_000));
        let now = t0 + secs(0.4);
        // Behind the first sample of a fresh history: by how much is unknown.
        assert_eq!(estimator.known_lag(&lsn(10), now), None);
        assert_eq!(estimator.known_lag(&lsn(1_500), now), Some(secs(0.2)));
        assert_eq!(estimator.known_lag(&lsn(2_000), now), Some(Duration::ZERO));
        // Once the oldest sample is older than the window, it is far behind.
        let late = t0 + secs(6.0);
        assert_eq!(estimator.known_lag(&lsn(10), late), Some(secs(6.0)));
    }
}
