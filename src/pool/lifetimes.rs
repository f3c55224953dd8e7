//! Each connection's own lifetime under `pool_recycle`, so connections
//! opened together (at startup, after a failover) are not all replaced in
//! the same second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::random;

/// `(√5 − 1) / 2`: stepping by it around the unit circle leaves the points
/// so far evenly spread at every count (no gap above ~1.9 / count).
const GOLDEN: f64 = 0.618_033_988_749_894_9;

/// The lifetimes a pool hands its new connections: each between half of
/// `pool_recycle` and all of it — none lives longer than asked, since a
/// server-side or proxy cut-off is what `pool_recycle` is usually set
/// below — placed along that half by a low-discrepancy sequence rather than
/// drawn independently, so that any run of connections opened one after
/// the other expires evenly spread (independent draws clump: over a minute
/// of load, the busiest second replaced ~2.3× the mean; see `bench`).
pub(super) struct Lifetimes {
    recycle: Option<Duration>,
    /// Where the sequence starts: random, so that two processes started
    /// together do not replace their connections in step.
    start: f64,
    drawn: AtomicU64,
}

impl Lifetimes {
    pub(super) fn new(recycle: Option<Duration>) -> Self {
        Self {
            recycle,
            start: random::unit(),
            drawn: AtomicU64::new(0),
        }
    }

    /// The lifetime of the next connection the pool opens (`None`: no
    /// `pool_recycle`).
    pub(super) fn next(&self) -> Option<Duration> {
        let recycle = self.recycle?;
        let step = self.drawn.fetch_add(1, Ordering::Relaxed);
        Some(recycle.mul_f64(1.0 - self.fraction(step) / 2.0))
    }

    /// Where the `step`-th lifetime lies along the half of `pool_recycle`.
    fn fraction(&self, step: u64) -> f64 {
        // Precision lost past 2^53 steps only shifts the (already random)
        // position.
        #[allow(clippy::cast_precision_loss)]
        let step = step as f64;
        (self.start + step * GOLDEN).fract()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Lifetimes;

    #[test]
    fn lifetimes_lie_in_the_second_half_of_pool_recycle() {
        let lifetimes = Lifetimes::new(Some(Duration::from_secs(100)));
        for _ in 0..500 {
            let lifetime = lifetimes.next().unwrap().as_secs_f64();
            assert!((50.0..=100.0).contains(&lifetime), "{lifetime}");
        }
        assert_eq!(Lifetimes::new(None).next(), None);
    }

    /// Any number of connections opened one after the other expire spread
    /// over the whole half: the widest gap between their deadlines (round
    /// the half, as the next generation follows on) is at most twice the
    /// even spacing.
    #[test]
    fn connections_opened_together_expire_evenly_spread() {
        for _ in 0..50 {
            let lifetimes = Lifetimes::new(Some(Duration::from_secs(100)));
            let mut drawn: Vec<f64> = Vec::new();
            for count in 1..=40_u32 {
                drawn.push(lifetimes.next().unwrap().as_secs_f64());
                if count < 2 {
                    continue;
                }
                let mut sorted = drawn.clone();
                sorted.sort_by(f64::total_cmp);
                let widest = sorted
                    .windows(2)
                    .map(|pair| pair[1] - pair[0])
                    .chain([50.0 - (sorted[sorted.len() - 1] - sorted[0])])
                    .fold(0.0, f64::max);
                let even = 50.0 / f64::from(count);
                assert!(widest <= 2.0 * even, "{count}: {sorted:?}");
            }
        }
    }
}
