//! What the pool has done and looks like now: counters kept by the registry,
//! a snapshot for [`SqlConnectionRegistry::stats`](crate::SqlConnectionRegistry::stats),
//! and the same figures through the `metrics` facade for any exporter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::replication::Role;

/// A snapshot of one registry's pool (serializable, e.g. for a health endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// Open connections: the sessions' pool's and the engine's.
    pub size: u32,
    /// Open connections waiting in a pool, the sessions' or the engine's.
    pub idle: u32,
    /// Connections held by live sessions.
    pub in_use: u32,
    /// Callers waiting for a connection.
    pub waiting: u32,
    /// The most connections sessions use (`pool_size + max_overflow`); the
    /// engine's pool may add 2 (see the README's connection budget).
    pub max: u32,
    /// Sessions that got a connection, since the registry started.
    pub acquired: u64,
    /// Connections opened.
    pub created: u64,
    /// Connections closed (`created - size`): recycled, idle, overflow or broken.
    pub closed: u64,
    /// Checkouts that gave up after `pool_timeout`.
    pub timed_out: u64,
    /// Connections thrown away because they broke or could not be cleaned up.
    pub evicted: u64,
    /// Transactions the retrying form ran again after a transient conflict.
    pub retries: u64,
}

/// One server of a registry: [`PoolStats`] of its pools and, for a
/// replica, whether read sessions may go to it
/// ([`SqlConnectionRegistry::host_stats`](crate::SqlConnectionRegistry::host_stats)).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct HostStats {
    /// The server's URL, password redacted.
    pub url: String,
    /// Whether it is one of the config's `replicas` (else a host of `url`).
    pub replica: bool,
    /// Why the host takes no sessions right now (unreachable); `None`
    /// while it answers.
    pub down: Option<String>,
    /// How far a replica is behind the primary, judged from replication
    /// positions (`None` for the primary, or before it was first asked).
    pub lag_seconds: Option<f64>,
    /// For a host of a multi-host `url`: what it said it was when last
    /// asked (`None` before that, while it is unreachable, and for a plain
    /// `url` or a replica, which are not asked their role).
    pub role: Option<Role>,
    /// For a host of a multi-host PostgreSQL `url`: the timeline it is on
    /// (higher after each promotion).
    pub timeline: Option<u64>,
    /// Its pools.
    pub pool: PoolStats,
}

/// The counters one registry keeps; shared with its sessions and pool hooks.
pub(crate) struct Counters {
    gauges: Gauges,
    pub(crate) in_use: AtomicU32,
    pub(crate) waiting: AtomicU32,
    acquired: Counted,
    created: Counted,
    timed_out: Counted,
    evicted: Counted,
    retries: Counted,
}

/// One counter, kept here for `stats()` and mirrored to the `metrics` facade
/// through a handle registered once (no label lookup per event).
struct Counted {
    value: AtomicU64,
    metric: metrics::Counter,
}

impl Counted {
    fn new(name: &'static str, database: &str) -> Self {
        Self {
            value: AtomicU64::new(0),
            metric: metrics::counter!(name, "database" => database.to_owned()),
        }
    }

    fn add(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
        self.metric.increment(1);
    }

    fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

impl Counters {
    /// Counters for one database; metric handles come from the recorder
    /// installed at this moment (install yours before connecting).
    pub(crate) fn new(database: String) -> Self {
        Self {
            in_use: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            acquired: Counted::new("sqlreg_acquired_total", &database),
            created: Counted::new("sqlreg_created_total", &database),
            timed_out: Counted::new("sqlreg_timed_out_total", &database),
            evicted: Counted::new("sqlreg_evicted_total", &database),
            retries: Counted::new("sqlreg_retries_total", &database),
            gauges: Gauges::new(&database),
        }
    }

    pub(crate) fn acquired(&self) {
        self.acquired.add();
    }

    pub(crate) fn created(&self) {
        self.created.add();
    }

    pub(crate) fn timed_out(&self) {
        self.timed_out.add();
    }

    pub(crate) fn evicted(&self) {
        self.evicted.add();
    }

    pub(crate) fn retried(&self) {
        self.retries.add();
    }

    /// Combines the counters with the pool's own figures, and publishes the
    /// gauges so exporters see the same snapshot.
    pub(crate) fn snapshot(&self, size: u32, idle: u32, max: u32) -> PoolStats {
        let created = self.created.get();
        let stats = PoolStats {
            size,
            idle,
            in_use: self.in_use.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
            max,
            acquired: self.acquired.get(),
            created,
            closed: created.saturating_sub(u64::from(size)),
            timed_out: self.timed_out.get(),
            evicted: self.evicted.get(),
            retries: self.retries.get(),
        };
        self.gauges.publish(&stats);
        stats
    }
}

/// The pool's gauges, registered once per database.
struct Gauges {
    size: metrics::Gauge,
    idle: metrics::Gauge,
    in_use: metrics::Gauge,
    waiting: metrics::Gauge,
}

impl Gauges {
    fn new(database: &str) -> Self {
        let gauge = |name: &'static str| metrics::gauge!(name, "database" => database.to_owned());
        Self {
            size: gauge("sqlreg_pool_size"),
            idle: gauge("sqlreg_pool_idle"),
            in_use: gauge("sqlreg_pool_in_use"),
            waiting: gauge("sqlreg_pool_waiting"),
        }
    }

    fn publish(&self, stats: &PoolStats) {
        self.size.set(f64::from(stats.size));
        self.idle.set(f64::from(stats.idle));
        self.in_use.set(f64::from(stats.in_use));
        self.waiting.set(f64::from(stats.waiting));
    }
}

/// Counts one unit (a waiting caller, a held connection) until dropped —
/// also when the future holding it is cancelled.
pub(crate) struct Gauge<'a>(&'a AtomicU32);

impl<'a> Gauge<'a> {
    pub(crate) fn enter(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a session in its server's `in_use` until dropped — whichever
/// way the session ends.
pub(crate) struct InUse(Arc<Counters>);

impl InUse {
    pub(crate) fn enter(counters: &Arc<Counters>) -> Self {
        counters.in_use.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(counters))
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}
