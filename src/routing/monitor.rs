//! The background task that keeps each replica's health current: every
//! [`INTERVAL`] it reads the primary's position (on the host sessions go to
//! now, which a failover changes) and each replica's replay position over
//! connections of its own (one per host, outside the pools), and judges
//! each replica's lag from positions, so a quiet primary never makes an
//! up-to-date replica look stale.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Replica;
use crate::cluster::Cluster;
use crate::config::DbConfig;
use crate::driver::HostConn;
use crate::replication::LagEstimator;
use crate::url::DbUrl;

/// How often the hosts are asked.
const INTERVAL: Duration = Duration::from_millis(200);

/// Starts the monitor; it runs until aborted.
pub(super) fn spawn(
    cluster: Arc<Cluster>,
    config: DbConfig,
    replicas: Arc<[Replica]>,
) -> tokio::task::AbortHandle {
    let task = tokio::spawn(async move {
        let mut monitor = Monitor {
            lag: LagEstimator::new(config.routing.replica_max_lag * 2),
            primary: Probed::new(cluster.current().url.clone()),
            replicas: replicas
                .iter()
                .map(|r| Probed::new(r.host.url.clone()))
                .collect(),
            config,
        };
        loop {
            let primary = &cluster.current().url;
            if *primary != monitor.primary.url {
                // A failover: positions are read on the new primary.
                monitor.primary = Probed::new(primary.clone());
            }
            monitor.round(&replicas).await;
            tokio::time::sleep(INTERVAL).await;
        }
    });
    task.abort_handle()
}

struct Monitor {
    config: DbConfig,
    lag: LagEstimator,
    primary: Probed,
    replicas: Vec<Probed>,
}

/// A host and the monitor's connection to it, opened again after a failure.
struct Probed {
    url: DbUrl,
    conn: Option<HostConn>,
}

impl Probed {
    fn new(url: DbUrl) -> Self {
        Self { url, conn: None }
    }

    /// The monitor's connection, opened if needed.
    async fn conn(&mut self, config: &DbConfig) -> Result<&mut HostConn, String> {
        if self.conn.is_none() {
            let conn = HostConn::open(&self.url, config)
                .await
                .map_err(|err| err.to_string())?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("opened above"))
    }
}

impl Monitor {
    async fn round(&mut self, replicas: &[Replica]) {
        let now = Instant::now();
        if let Ok(conn) = self.primary.conn(&self.config).await {
            match conn.probe().commit_position().await {
                Ok(Some(position)) => self.lag.record(now, position),
                Ok(None) => {}
                Err(_) => self.primary.conn = None,
            }
        }
        for (replica, probed) in replicas.iter().zip(&mut self.replicas) {
            let replayed = match probed.conn(&self.config).await {
                Ok(conn) => conn
                    .probe()
                    .replay_position()
                    .await
                    .map_err(|err| crate::driver::describe_failure(&err)),
                Err(err) => Err(err),
            };
            match replayed {
                Ok(position) => {
                    let lag = position.as_ref().and_then(|p| self.lag.lag(p, now));
                    replica.update(|health| {
                        if health.down.take().is_some() {
                            tracing::info!(replica = %replica.host.url, "replica answers again; reads go to it");
                        }
                        health.lag = lag;
                        if let Some(position) = position
                            && !health.replayed.as_ref().is_some_and(|r| r.covers(&position))
                        {
                            health.replayed = Some(position);
                        }
                    });
                }
                Err(reason) => {
                    probed.conn = None;
                    replica.update(|health| {
                        if health.down.is_none() {
                            tracing::warn!(replica = %replica.host.url, "replica unreachable; reads go elsewhere until it answers again");
                        }
                        health.down = Some(reason);
                    });
                }
            }
        }
    }
}
