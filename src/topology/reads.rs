//! The replicas' policy: where read sessions run — on a replica that
//! answers, whose lag is known and within `routing.replica_max_lag`, and
//! that has replayed the newest write the read must see (read-your-writes);
//! spread across the replicas in turn (and the primary, with
//! `primary_reads`). Lag is judged from positions, so a quiet primary
//! never makes an up-to-date replica look stale.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::host_set::{HostSet, Policy, Round};
use crate::config::{Fallback, RoutingConfig};
use crate::error::{Error, Result};
use crate::replication::{LagEstimator, ReplicationPosition};
use crate::server::{Answer, Server};
use crate::session::{Request, Session};
use crate::url::DbUrl;

/// How long a read session waits for a replica to replay a write it must
/// see before it goes to the primary instead: long enough for a replica
/// that keeps up (replay takes well under a millisecond on a LAN), short
/// enough that a lagging one costs little.
const FRESHNESS_WAIT: Duration = Duration::from_millis(50);

/// How read sessions pick among the replicas.
pub(super) struct Reads {
    routing: RoutingConfig,
    /// The next replica to try first (round robin).
    next: AtomicUsize,
    /// The primary's recent positions, to judge lag by.
    history: Mutex<LagEstimator>,
}

impl Reads {
    pub(super) fn new(routing: RoutingConfig) -> Self {
        Self {
            history: Mutex::new(LagEstimator::new(routing.replica_max_lag * 2)),
            routing,
            next: AtomicUsize::new(0),
        }
    }

    pub(super) fn read_your_writes(&self) -> bool {
        self.routing.read_your_writes
    }

    /// Answers, not suspect, and known to be within `replica_max_lag`.
    fn usable(&self, server: &Server) -> bool {
        let max = self.routing.replica_max_lag;
        server.health().down().is_none() && self.lag(server).is_some_and(|lag| lag <= max)
    }
}

impl Policy for Reads {
    /// Judges each replica's lag against the primary's position. A replica
    /// on another timeline than the primary (PostgreSQL: still following
    /// the old primary after a failover, or an old primary not yet rewound)
    /// has positions that cannot be compared with the primary's: its lag is
    /// unknown and nothing it replayed counts, so it serves no reads until
    /// it follows the primary's history.
    fn observe(&self, servers: &[Arc<Server>], round: &Round) {
        let Ok(mut history) = self.history.lock() else {
            return;
        };
        if let Some(primary) = &round.primary {
            history.record(round.at, primary.clone());
        }
        for server in servers {
            let Answer::Up(standing) = server.health().seen().answer else {
                continue;
            };
            let same_history = match (round.timeline, standing.timeline) {
                (Some(primary), Some(replica)) => primary == replica,
                _ => true,
            };
            let replayed = standing.position.filter(|_| same_history);
            let lag = replayed
                .as_ref()
                .and_then(|replayed| history.known_lag(replayed, round.at));
            // What it replays now, not the most it ever did: a node rewound
            // onto a new timeline goes back.
            server.health().update(|seen| {
                seen.lag = lag;
                seen.replayed = replayed;
            });
        }
    }

    fn lag(&self, server: &Server) -> Option<Duration> {
        server.health().seen().lag
    }
}

impl HostSet<Reads> {
    /// A read session on a replica that can serve it, or `None` when it
    /// belongs on the primary: `primary_reads` gave the primary its turn, the
    /// read must see a write (`required`) no usable replica has replayed
    /// within [`FRESHNESS_WAIT`], or no replica is usable and `fallback` is
    /// `primary`.
    ///
    /// # Errors
    ///
    /// [`Error::Acquire`] when no replica is usable and `fallback` is
    /// `error`.
    pub(super) async fn read_session(
        &self,
        required: Option<ReplicationPosition>,
        request: &Request<'_>,
        primary_url: &DbUrl,
    ) -> Result<Option<Session>> {
        let reads = self.policy();
        let replicas = self.servers();
        let count = replicas.len();
        let turn = reads.next.fetch_add(1, Ordering::Relaxed);
        if reads.routing.primary_reads && turn % (count + 1) == count {
            return Ok(None);
        }
        for offset in 0..count {
            let replica = &replicas[(turn + offset) % count];
            if !reads.usable(replica) {
                continue;
            }
            let session = match Session::open(replica, request).await {
                Ok(session) => session,
                Err(err) => {
                    tracing::warn!(replica = %replica.url(), error = %err, "replica unreachable; reads go elsewhere until it answers again");
                    replica.mark_suspect();
                    continue;
                }
            };
            let Some(required) = &required else {
                return Ok(Some(session));
            };
            if replica
                .health()
                .seen()
                .replayed
                .is_some_and(|done| done.covers(required))
            {
                return Ok(Some(session));
            }
            match session.replayed(required, FRESHNESS_WAIT).await {
                Ok(true) => {
                    replica
                        .health()
                        .update(|seen| seen.replayed = Some(required.clone()));
                    return Ok(Some(session));
                }
                Ok(false) => {
                    session.rollback().await;
                    return Ok(None); // only the primary is sure to have the write
                }
                Err(err) => {
                    tracing::warn!(replica = %replica.url(), error = %err, "cannot ask the replica how far it replayed; reads go elsewhere until it answers again");
                    replica.mark_suspect();
                    session.rollback().await;
                }
            }
        }
        match reads.routing.fallback {
            Fallback::Primary => Ok(None),
            Fallback::Error => Err(Error::Acquire {
                url: primary_url.redacted(),
                detail: "no replica is reachable within routing.replica_max_lag, and \
                         routing.fallback is `error`"
                    .into(),
            }),
        }
    }
}
