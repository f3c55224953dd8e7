//! Randomness for spreading things out — retry jitter, picking a host —
//! from the standard library's randomly seeded hasher: spread, not
//! cryptographic quality, and no crate for ten lines.

use std::hash::{BuildHasher, RandomState};

/// A number in `[0, 1)`.
pub(crate) fn unit() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    // 53 random bits make every f64 in [0, 1) equally likely.
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

/// A number in `[0, count)`; `count` must not be zero.
pub(crate) fn below(count: usize) -> usize {
    // Truncation is the point: `unit() * count` is below `count`.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = (unit() * count as f64) as usize;
    index.min(count - 1)
}
