//! Asking every host of a section — the primary's `url` and each of its
//! `replicas` — what it is, how far it has replayed, how far behind the
//! primary it is, and how long a round trip to it takes: what an operator
//! checks before trusting the config (`sqlreg check`).

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::streaming::{self, Linked};
use super::{ClusterMembership, LagEstimator, ReplicationPosition, Role, Standing, Streaming};
use crate::config::DbConfig;
use crate::driver::HostConn;
use crate::error::Result;

/// How long one wait for a replica lasts before the primary is sampled again.
const LAG_POLL: Duration = Duration::from_millis(50);

/// One host of a section and what probing it found.
#[derive(Debug)]
#[non_exhaustive]
pub struct HostProbe {
    /// The host's URL, password redacted.
    pub url: String,
    /// Whether the config lists it under `replicas` (else it is a host of
    /// `url`).
    pub replica: bool,
    /// What the host said, or why it could not be asked.
    pub state: Result<HostState>,
}

/// What a host said about itself.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostState {
    /// Primary or standby, as the server itself says.
    pub role: Role,
    /// PostgreSQL's timeline: after a failover the new primary's is higher,
    /// which tells two read-write hosts apart. `None` on other backends.
    pub timeline: Option<u64>,
    /// What a primary has written, or what a standby has replayed; `None` on
    /// SQLite.
    pub position: Option<ReplicationPosition>,
    /// One `SELECT 1`.
    pub round_trip: Duration,
    /// For a node of a multi-writer cluster (Galera): the cluster, the
    /// node's state and the cluster's size. `None` elsewhere.
    pub cluster: Option<ClusterMembership>,
    /// PostgreSQL: the standbys streaming from the host (which of them are
    /// synchronous) and `synchronous_standby_names`; on a standby, what it
    /// streams from, joined to the probed host that lists it (its URL, and
    /// whether that host's commits wait for it). `None` on other backends.
    pub streaming: Option<Streaming>,
    /// How far a standby is behind the primary (the first host of `url`
    /// that is one): zero
    /// when it has replayed everything the primary has written, however
    /// quiet the primary is. `None` for the primary, or when either host
    /// gives no positions. Sampled for at most `routing.replica_max_lag`: a
    /// standby that does not catch up within it shows more than that.
    pub lag: Option<Duration>,
}

/// Probes every host of `url` (one, or each of a multi-host URL) and every
/// replica of `config`, each over a
/// connection of its own opened as sessions open theirs (`connect_timeout`
/// applies); the hosts are connected to at once and closed afterwards.
///
/// A host that cannot be reached has its error in [`HostProbe::state`]; the
/// others are still probed.
///
/// # Errors
///
/// [`Error::Url`](crate::Error::Url) or [`Error::Config`](crate::Error::Config) if the URLs cannot be built (see
/// [`DbConfig::replica_urls`]).
pub async fn probe_hosts(config: &DbConfig) -> Result<Vec<HostProbe>> {
    let mut urls = config.url.to_db_url()?.hosts();
    let url_hosts = urls.len();
    urls.extend(config.replica_urls()?);
    let opened = join_all(urls.iter().map(|url| HostConn::open(url, config))).await;
    let mut conns = Vec::with_capacity(opened.len());
    let mut states = Vec::with_capacity(opened.len());
    for result in opened {
        match result {
            Ok(mut conn) => {
                states.push(describe(&mut conn).await);
                conns.push(Some(conn));
            }
            Err(err) => {
                states.push(Err(err));
                conns.push(None);
            }
        }
    }
    // Lag is measured against the first host of `url` that says it is a
    // primary (a multi-host `url` may list standbys too).
    let primary = states[..url_hosts]
        .iter()
        .position(|state| matches!(state, Ok(state) if state.role == Role::Primary));
    if let Some(index) = primary
        && let Some(mut primary_conn) = conns[index].take()
    {
        for (conn, state) in conns.iter_mut().zip(&mut states) {
            let (Some(conn), Ok(found)) = (conn, &mut *state) else {
                continue;
            };
            if found.role != Role::Standby {
                continue;
            }
            match lag(&mut primary_conn, conn, config.routing.replica_max_lag).await {
                Ok(lag) => found.lag = lag,
                Err(err) => *state = Err(err.into()),
            }
        }
        conns[index] = Some(primary_conn);
    }
    for conn in conns.into_iter().flatten() {
        conn.close().await;
    }
    let mut linked: Vec<Linked<'_>> = urls
        .iter()
        .zip(&mut states)
        .map(|(url, state)| Linked {
            url: url.redacted(),
            address: url
                .host()
                .zip(url.port())
                .map(|(host, port)| format!("{host}:{port}")),
            streaming: state.as_mut().ok().and_then(|s| s.streaming.as_mut()),
        })
        .collect();
    streaming::link(&mut linked);
    Ok(urls
        .iter()
        .zip(states)
        .enumerate()
        .map(|(index, (url, state))| HostProbe {
            url: url.redacted(),
            replica: index >= url_hosts,
            state,
        })
        .collect())
}

/// Role, timeline, position, streaming replication and round trip of one
/// host.
async fn describe(conn: &mut HostConn) -> Result<HostState> {
    let Standing {
        role,
        timeline,
        position,
        cluster,
        ..
    } = conn.probe().role().await?;
    let streaming = conn.probe().streaming().await?;
    let round_trip = conn.probe().round_trip().await?;
    Ok(HostState {
        role,
        timeline,
        position,
        round_trip,
        lag: None,
        cluster,
        streaming,
    })
}

/// How far `replica` is behind `primary`: the primary's position is sampled
/// into a [`LagEstimator`] while the replica is given short waits to replay
/// the first sample; done once it has, or after `window`.
async fn lag(
    primary: &mut HostConn,
    replica: &mut HostConn,
    window: Duration,
) -> Result<Option<Duration>, sqlx::Error> {
    let started = Instant::now();
    let Some(first) = primary.probe().commit_position().await? else {
        return Ok(None);
    };
    let mut estimator = LagEstimator::new(window);
    estimator.record(started, first.clone());
    loop {
        let left = window.saturating_sub(started.elapsed());
        let caught_up = replica.probe().wait_for(&first, LAG_POLL.min(left)).await?;
        if let Some(position) = primary.probe().commit_position().await? {
            estimator.record(Instant::now(), position);
        }
        let Some(replayed) = replica.probe().replay_position().await? else {
            return Ok(None);
        };
        if caught_up || started.elapsed() > window {
            return Ok(estimator.lag(&replayed, Instant::now()));
        }
    }
}
