//! A set of servers that do one job — the hosts of `url`, or the replicas —
//! and the [`Policy`] that decides which of them serve, from what the
//! monitor saw.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::replication::ReplicationPosition;
use crate::server::{Answer, Server};
use crate::stats::HostStats;

/// What differs between the sets: what a monitor round means for which
/// servers serve.
pub(super) trait Policy: Send + Sync {
    /// Takes a round's answers, already in each server's health.
    fn observe(&self, servers: &[Arc<Server>], round: &Round);

    /// A server's lag behind the primary, for figures (replicas only).
    fn lag(&self, server: &Server) -> Option<Duration>;
}

/// One monitor round, as the policies see it.
pub(super) struct Round {
    /// When its answers came in.
    pub(super) at: Instant,
    /// The position of the primary that serves sessions now, if it gave one.
    pub(super) primary: Option<ReplicationPosition>,
    /// That primary's timeline (PostgreSQL), if it gave one.
    pub(super) timeline: Option<u64>,
}

/// Servers and their policy.
pub(super) struct HostSet<P> {
    servers: Vec<Arc<Server>>,
    policy: P,
}

impl<P: Policy> HostSet<P> {
    pub(super) fn new(servers: Vec<Arc<Server>>, policy: P) -> Self {
        Self { servers, policy }
    }

    pub(super) fn servers(&self) -> &[Arc<Server>] {
        &self.servers
    }

    pub(super) fn policy(&self) -> &P {
        &self.policy
    }

    /// Hands a monitor round to the policy.
    pub(super) fn observe(&self, round: &Round) {
        self.policy.observe(&self.servers, round);
    }

    /// Each server's pool figures and what the monitor last saw of it.
    pub(super) fn stats(&self, replica: bool) -> impl Iterator<Item = HostStats> + '_ {
        self.servers.iter().map(move |server| {
            let (role, timeline) = match server.health().seen().answer {
                Answer::Up(standing) => (Some(standing.role), standing.timeline),
                _ => (None, None),
            };
            HostStats {
                url: server.url().redacted(),
                replica,
                down: server.health().down(),
                lag_seconds: self.policy.lag(server).map(|lag| lag.as_secs_f64()),
                role,
                timeline,
                pool: server.stats(),
            }
        })
    }

    /// Closes every server's pools; whether every connection closed
    /// within `grace`.
    pub(super) async fn close(&self, grace: Duration) -> bool {
        let closing = self.servers.iter().map(|server| server.close(grace));
        futures_util::future::join_all(closing)
            .await
            .into_iter()
            .all(|closed| closed)
    }
}
