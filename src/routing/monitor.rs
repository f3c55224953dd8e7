//! The background task that keeps each replica's health current: every
//! [`INTERVAL`] it reads the primary's position (on the host sessions go to
//! now, which a failover changes) and each replica's replay position over
//! connections of its own (a [`Prober`] per host, outside the pools), and judges
//! each replica's lag from positions, so a quiet primary never makes an
//! up-to-date replica look stale.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Replica;
use crate::cluster::Cluster;
use crate::config::DbConfig;
use crate::driver::Prober;
use crate::replication::LagEstimator;

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
            primary: Prober::new(cluster.current().url.clone()),
            replicas: replicas
                .iter()
                .map(|r| Prober::new(r.host.url.clone()))
                .collect(),
            config,
        };
        loop {
            let primary = &cluster.current().url;
            if *primary != monitor.primary.url {
                // A failover: positions are read on the new primary.
                monitor.primary = Prober::new(primary.clone());
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
    primary: Prober,
    replicas: Vec<Prober>,
}

impl Monitor {
    async fn round(&mut self, replicas: &[Replica]) {
        let now = Instant::now();
        let committed = self
            .primary
            .ask(&self.config, async |probe| probe.commit_position().await)
            .await;
        if let Ok(Some(position)) = committed {
            self.lag.record(now, position);
        }
        for (replica, prober) in replicas.iter().zip(&mut self.replicas) {
            let replayed = prober
                .ask(&self.config, async |probe| probe.replay_position().await)
                .await;
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
