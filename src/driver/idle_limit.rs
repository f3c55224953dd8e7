//! QueuePool's rule for overflow: a connection coming back to a pool that
//! already holds `pool_size` idle connections is closed, not kept.

use std::sync::{Arc, Mutex, PoisonError};

/// Reads the pool's idle count; set once the pool exists.
type IdleCount = Box<dyn Fn() -> usize + Send + Sync>;

/// Shared between the pool's `after_release` hook and the registry.
///
/// The hook needs the pool it belongs to, which holds the hook: that cycle
/// is broken by [`IdleLimit::release`] when the registry closes or drops.
#[derive(Clone)]
pub(crate) struct IdleLimit {
    pool_size: usize,
    idle: Arc<Mutex<Option<IdleCount>>>,
}

impl IdleLimit {
    pub(super) fn new(pool_size: u32) -> Self {
        Self {
            pool_size: usize::try_from(pool_size).unwrap_or(usize::MAX),
            idle: Arc::default(),
        }
    }

    /// Starts counting the idle connections of `pool`.
    pub(super) fn watch<DB: sqlx::Database>(&self, pool: &sqlx::Pool<DB>) {
        let pool = pool.clone();
        *self.idle.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Box::new(move || pool.num_idle()));
    }

    /// Whether a returning connection may stay idle in the pool.
    pub(super) fn keeps_another(&self) -> bool {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.as_ref().is_none_or(|count| count() < self.pool_size)
    }

    /// Lets go of the pool, so it can be dropped once nothing else holds it.
    pub(crate) fn release(&self) {
        *self.idle.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}
