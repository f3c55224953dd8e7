//! Where read sessions run: on a replica that is reachable, within
//! `routing.replica_max_lag` of the primary and — for read-your-writes —
//! has replayed the newest write the session must see; spread across the
//! replicas in turn (and the primary, with `primary_reads`). Everything
//! else runs on the primary. A background monitor keeps each replica's
//! health and lag current (see `monitor.rs`).

mod monitor;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cluster::Cluster;
use crate::config::{DbConfig, Fallback, RoutingConfig};
use crate::driver::Connecting;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::replication::{LastWrite, ReplicationPosition};
use crate::session::{Request, Session};
use crate::stats::HostStats;
use crate::url::DbUrl;

/// How long a read session waits for a replica to replay a write it must
/// see before it goes to the primary instead: long enough for a replica
/// that keeps up (replay takes well under a millisecond on a LAN), short
/// enough that a lagging one costs little.
const FRESHNESS_WAIT: Duration = Duration::from_millis(50);

/// The replicas of one registry and how read sessions pick among them.
pub(crate) struct Router {
    replicas: Arc<[Replica]>,
    /// The next replica to try first (round robin).
    next: AtomicUsize,
    routing: RoutingConfig,
    /// The primary's commit position after the newest write session.
    last_write: Option<Arc<LastWrite>>,
    /// Stopped when the router is dropped or closed.
    monitor: tokio::task::AbortHandle,
    primary_url: String,
}

/// One replica: its pools and what the monitor last saw of it.
struct Replica {
    host: Host,
    health: Mutex<Health>,
}

/// What the monitor (or a failed checkout) last learnt about a replica.
#[derive(Debug, Clone, Default)]
struct Health {
    /// Why the replica could not be reached or asked; `None` while it answers.
    down: Option<String>,
    /// How far behind the primary it is, judged from positions.
    lag: Option<Duration>,
    /// The newest position it is known to have replayed.
    replayed: Option<ReplicationPosition>,
}

impl Replica {
    fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn update(&self, change: impl FnOnce(&mut Health)) {
        if let Ok(mut health) = self.health.lock() {
            change(&mut health);
        }
    }

    /// Reachable and, when its lag is known, within `max_lag`.
    fn usable(&self, max_lag: Duration) -> bool {
        let health = self.health();
        health.down.is_none() && health.lag.is_none_or(|lag| lag <= max_lag)
    }
}

impl Router {
    /// Builds a pool for each replica (connected lazily: a replica that is
    /// down at startup only sends reads elsewhere) and starts the monitor.
    ///
    /// # Errors
    ///
    /// [`Error::Url`] for a replica URL the driver cannot use.
    pub(crate) async fn open(
        cluster: Arc<Cluster>,
        urls: Vec<DbUrl>,
        config: &DbConfig,
        last_write: Option<Arc<LastWrite>>,
    ) -> Result<Self> {
        let mut replicas = Vec::with_capacity(urls.len());
        for url in urls {
            let host = Host::open(url, config, Connecting::Lazily, None).await?;
            replicas.push(Replica {
                host,
                health: Mutex::new(Health::default()),
            });
        }
        let replicas: Arc<[Replica]> = replicas.into();
        let primary_url = cluster.url().redacted();
        let monitor = monitor::spawn(cluster, config.clone(), Arc::clone(&replicas));
        Ok(Self {
            replicas,
            next: AtomicUsize::new(0),
            routing: config.routing.clone(),
            last_write,
            monitor,
            primary_url,
        })
    }

    /// A read session on a replica that can serve it, or `None` when it
    /// belongs on the primary: `primary_reads` gave the primary its turn, the
    /// read must see a write no usable replica has replayed within
    /// [`FRESHNESS_WAIT`], or no replica is usable and `fallback` is
    /// `primary`.
    ///
    /// # Errors
    ///
    /// [`Error::Acquire`] when no replica is usable and `fallback` is
    /// `error`.
    pub(crate) async fn read_session(&self, request: &Request<'_>) -> Result<Option<Session>> {
        let Ok(required) = self.required(request.fresh_as) else {
            return Ok(None);
        };
        let count = self.replicas.len();
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        if self.routing.primary_reads && turn % (count + 1) == count {
            return Ok(None);
        }
        for offset in 0..count {
            let replica = &self.replicas[(turn + offset) % count];
            if replica.host.context.take_lost_connection() {
                // Its pooled connections may be dead too: no reads until the
                // monitor has reached it again.
                tracing::warn!(replica = %replica.host.url, "a session lost its connection to the replica; reads go elsewhere until it answers again");
                replica.update(|health| health.down = Some("a session lost its connection".into()));
                replica.host.pool.drop_idle();
            }
            if !replica.usable(self.routing.replica_max_lag) {
                continue;
            }
            let session = match replica.host.session(request).await {
                Ok(session) => session,
                Err(err) => {
                    tracing::warn!(replica = %replica.host.url, error = %err, "replica unreachable; reads go elsewhere until it answers again");
                    replica.update(|health| health.down = Some(err.to_string()));
                    continue;
                }
            };
            let Some(required) = &required else {
                return Ok(Some(session));
            };
            if replica
                .health()
                .replayed
                .is_some_and(|done| done.covers(required))
            {
                return Ok(Some(session));
            }
            match session.replayed(required, FRESHNESS_WAIT).await {
                Ok(true) => {
                    replica.update(|health| health.replayed = Some(required.clone()));
                    return Ok(Some(session));
                }
                Ok(false) => {
                    session.rollback().await;
                    return Ok(None); // only the primary is sure to have the write
                }
                Err(err) => {
                    tracing::warn!(replica = %replica.host.url, error = %err, "cannot ask the replica how far it replayed; reads go elsewhere until it answers again");
                    replica.update(|health| health.down = Some(err.to_string()));
                    session.rollback().await;
                }
            }
        }
        match self.routing.fallback {
            Fallback::Primary => Ok(None),
            Fallback::Error => Err(Error::Acquire {
                url: self.primary_url.clone(),
                detail: "no replica is reachable within routing.replica_max_lag, and \
                         routing.fallback is `error`"
                    .into(),
            }),
        }
    }

    /// The position a read session must see: the caller's and, with
    /// `read_your_writes`, the newest write's; `Err` when only the primary
    /// is sure to have it.
    fn required(
        &self,
        fresh_as: Option<&ReplicationPosition>,
    ) -> Result<Option<ReplicationPosition>, ()> {
        let written = match &self.last_write {
            Some(last_write) if self.routing.read_your_writes => last_write.required()?,
            _ => None,
        };
        Ok(match (written, fresh_as) {
            (Some(written), Some(asked)) if written.covers(asked) => Some(written),
            (_, Some(asked)) => Some(asked.clone()),
            (written, None) => written,
        })
    }

    /// The newest write session's commit position, if it could be read.
    pub(crate) fn write_position(&self) -> Option<ReplicationPosition> {
        self.last_write.as_ref()?.required().ok().flatten()
    }

    /// Each replica's pool figures, health and lag.
    pub(crate) fn stats(&self) -> impl Iterator<Item = HostStats> + '_ {
        self.replicas.iter().map(|replica| {
            let health = replica.health();
            HostStats {
                url: replica.host.url.redacted(),
                replica: true,
                down: health.down,
                lag_seconds: health.lag.map(|lag| lag.as_secs_f64()),
                role: None,
                timeline: None,
                pool: replica.host.stats(),
            }
        })
    }

    /// Stops the monitor and closes the replicas' pools (see
    /// [`SqlConnectionRegistry::close`](crate::SqlConnectionRegistry::close)).
    pub(crate) async fn close(&self, grace: Duration) {
        self.monitor.abort();
        let closing = self.replicas.iter().map(|r| r.host.pool.close(grace));
        futures_util::future::join_all(closing).await;
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}
