//! Replication probes, dispatched to each backend's `replication` module:
//! a host's role, the primary's position after a write, a replica's replay
//! position, and a bounded wait for a replica to replay a position. SQLite
//! has no replication: it is a primary and has no positions.
//!
//! [`Probe`] borrows any sqlx connection of a backend, so the same probes
//! run on a [`HostConn`] opened for them and on a pooled connection.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};

use super::{Conn, connect, mysql, postgres};
use crate::config::DbConfig;
use crate::error::{ConnectFailure, Result};
use crate::replication::{ReplicationPosition, Role, Standing, Streaming};
use crate::url::{Backend, DbUrl};

/// A connection of its own to one host, for probing it.
pub(crate) enum HostConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    MySql(MySqlConnection),
}

/// A monitor's way to one host: a [`HostConn`] opened when a probe first
/// needs it and dropped when one fails, so the next probe opens it again.
/// Every probe is bounded by `connect_timeout`: a host that stops answering
/// cannot hold up a monitor's round.
pub(crate) struct Prober {
    pub(crate) url: DbUrl,
    conn: Option<HostConn>,
}

/// A connection of one backend, borrowed for a probe.
pub(crate) enum Probe<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
    MySql(&'c mut MySqlConnection),
}

impl HostConn {
    /// Connects to the host of `url` within `connect_timeout`, with the
    /// options sessions use.
    ///
    /// A SQLite file must exist already: probing never creates one.
    pub(crate) async fn open(url: &DbUrl, config: &DbConfig) -> Result<Self> {
        match url.backend() {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(&url.to_sqlx_url())
                    .map_err(|err| connect::connect_error(url, ConnectFailure::Other, &err))?;
                connect::connect_once::<sqlx::Sqlite>(&options, config.session.connect_timeout)
                    .await
                    .map(Self::Sqlite)
                    .map_err(|err| {
                        connect::connect_error(url, ConnectFailure::CannotOpenFile, &err)
                    })
            }
            Backend::Postgres => postgres::replication::connect(url, config)
                .await
                .map(Self::Postgres),
            Backend::MySql => mysql::replication::connect(url, config)
                .await
                .map(Self::MySql),
        }
    }

    /// The probes, on this connection.
    pub(crate) fn probe(&mut self) -> Probe<'_> {
        match self {
            Self::Sqlite(conn) => Probe::Sqlite(conn),
            Self::Postgres(conn) => Probe::Postgres(conn),
            Self::MySql(conn) => Probe::MySql(conn),
        }
    }

    /// Closes the connection politely; a failure only means it is gone already.
    pub(crate) async fn close(self) {
        let _ = match self {
            Self::Sqlite(conn) => conn.close().await,
            Self::Postgres(conn) => conn.close().await,
            Self::MySql(conn) => conn.close().await,
        };
    }
}

impl Prober {
    pub(crate) fn new(url: DbUrl) -> Self {
        Self { url, conn: None }
    }

    /// Runs `probe` on the host, connecting first if needed; why it failed,
    /// as text for a health report, otherwise.
    pub(crate) async fn ask<T>(
        &mut self,
        config: &DbConfig,
        probe: impl for<'c> AsyncFnOnce(Probe<'c>) -> Result<T, sqlx::Error>,
    ) -> Result<T, String> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => match HostConn::open(&self.url, config).await {
                Ok(opened) => self.conn.insert(opened),
                Err(err) => return Err(err.to_string()),
            },
        };
        let limit = config.session.connect_timeout;
        let failure = match tokio::time::timeout(limit, probe(conn.probe())).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(err)) => super::describe_failure(&err),
            Err(_) => "no answer within connect_timeout".to_owned(),
        };
        self.conn = None;
        Err(failure)
    }
}

impl Conn {
    /// The probes, on a pooled connection (a session's).
    pub(crate) fn probe(&mut self) -> Probe<'_> {
        match self {
            Self::Sqlite(conn) => Probe::Sqlite(conn),
            Self::Postgres(conn) => Probe::Postgres(conn),
            Self::MySql(conn) => Probe::MySql(conn),
        }
    }
}

impl Probe<'_> {
    /// Primary or standby, the timeline (PostgreSQL) it is on, whether it
    /// takes writes, and its position, in one round trip.
    pub(crate) async fn role(self) -> Result<Standing, sqlx::Error> {
        match self {
            Self::Sqlite(_) => Ok(Standing {
                role: Role::Primary,
                timeline: None,
                writable: true,
                position: None,
                cluster: None,
            }),
            Self::Postgres(conn) => postgres::replication::role(conn).await,
            Self::MySql(conn) => mysql::replication::role(conn).await,
        }
    }

    /// Who streams from the host and what it streams from (PostgreSQL);
    /// `None` on backends sqlreg reads no such thing from. One query more
    /// than [`Probe::role`]: for `sqlreg check`, not the monitor.
    pub(crate) async fn streaming(self) -> Result<Option<Streaming>, sqlx::Error> {
        match self {
            Self::Sqlite(_) | Self::MySql(_) => Ok(None),
            Self::Postgres(conn) => postgres::replication::streaming(conn).await.map(Some),
        }
    }

    /// Where a primary's history ends: a replica that has replayed this
    /// has every commit that returned before the call. `None` on SQLite.
    pub(crate) async fn commit_position(self) -> Result<Option<ReplicationPosition>, sqlx::Error> {
        match self {
            Self::Sqlite(_) => Ok(None),
            Self::Postgres(conn) => postgres::replication::commit_position(conn).await,
            Self::MySql(conn) => mysql::replication::commit_position(conn).await,
        }
    }

    /// How far the host has replayed (a primary: all it wrote). `None` on
    /// SQLite.
    pub(crate) async fn replay_position(self) -> Result<Option<ReplicationPosition>, sqlx::Error> {
        match self {
            Self::Sqlite(_) => Ok(None),
            Self::Postgres(conn) => postgres::replication::replay_position(conn).await,
            Self::MySql(conn) => mysql::replication::replay_position(conn).await,
        }
    }

    /// Waits at most `bound` for the host to replay `target`; whether it
    /// did. SQLite has all there is.
    pub(crate) async fn wait_for(
        self,
        target: &ReplicationPosition,
        bound: Duration,
    ) -> Result<bool, sqlx::Error> {
        match self {
            Self::Sqlite(_) => Ok(true),
            Self::Postgres(conn) => postgres::replication::wait_for(conn, target, bound).await,
            Self::MySql(conn) => mysql::replication::wait_for(conn, target, bound).await,
        }
    }

    /// The time one `SELECT 1` takes: a round trip (SQLite: a worker hop).
    pub(crate) async fn round_trip(self) -> Result<Duration, sqlx::Error> {
        let started = Instant::now();
        match self {
            Self::Sqlite(conn) => conn.execute("SELECT 1").await.map(drop),
            Self::Postgres(conn) => conn.execute("SELECT 1").await.map(drop),
            Self::MySql(conn) => conn.execute("SELECT 1").await.map(drop),
        }?;
        Ok(started.elapsed())
    }
}
