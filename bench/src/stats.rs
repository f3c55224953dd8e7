//! Median, min–max over runs, and latency percentiles.

use std::time::Duration;

/// Median, min and max of a set of runs' ops/s.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spread {
    /// The median run.
    pub median: f64,
    /// The slowest run.
    pub min: f64,
    /// The fastest run.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (empty gives zeros).
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        };
        Self {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }
}

/// The `q`-quantile (0..=1) of `latencies`, nearest rank.
pub fn percentile(latencies: &mut [Duration], q: f64) -> Option<Duration> {
    if latencies.is_empty() {
        return None;
    }
    latencies.sort_unstable();
    let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
    Some(latencies[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 2.0, 3.0, 4.0]).median, 2.5);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut l: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut l, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&mut l, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&mut [], 0.5), None);
    }
}
