//! The one seam between sqlreg and the database drivers.
//!
//! Everything that differs per backend — connect options, per-connection
//! setup, error classification, `CREATE DATABASE`, the `BEGIN` statement —
//! lives in one file per backend. [`Pool`] and [`Conn`] dispatch to those files
//! with [`each_backend!`]; nothing outside this module matches on the backend.

/// Runs `$body` with `$inner` bound to the backend-specific value inside `$value`.
///
/// The body is compiled once per backend, so it can call generic sqlx code
/// without naming the database type.
macro_rules! each_backend {
    ($value:expr, $enum:ident($inner:ident) => $body:expr) => {
        match $value {
            $enum::Sqlite($inner) => $body,
            $enum::Postgres($inner) => $body,
            $enum::MySql($inner) => $body,
        }
    };
}

mod conflict;
mod conn;
mod connect;
mod engine;
mod hand_off;
mod migrate;
mod mysql;
mod postgres;
mod replication;
mod residue;
pub(crate) mod scratch;
mod semconv;
mod sql_text;
mod sqlite;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sea_orm::{DatabaseConnection, DbBackend};
use sqlx::{MySql, Postgres, Sqlite};

use crate::config::DbConfig;
use crate::error::Result;
use crate::pool::{CheckoutError, ConnectError, ConnectionPool, Pooled};
use crate::replication::LastWrite;
use crate::stats::Counters;
use crate::url::{Backend, DbUrl};

pub(crate) use conflict::{
    Aborted, describe as describe_failure, explain, is_conflict, is_fatal, refuses_writes,
};
pub(crate) use connect::MemoryDatabase;
pub(crate) use migrate::{MIGRATIONS_TABLE, MigrationLock, Recorded};
pub(crate) use replication::{HostConn, Prober};
pub(crate) use residue::Residue;
pub(crate) use semconv::{identifier_quote, system_name};
pub(crate) use sql_text::{may_write, summary as statement_summary};

/// One database's connections: sqlreg's pool for sessions, and — on the
/// server the registry starts on — the small sqlx pool that
/// [`engine()`](crate::SqlConnectionRegistry::engine) wraps (sea-orm can
/// only wrap a `sqlx::Pool`), opened lazily.
pub(crate) struct Pools<DB: sqlx::Database> {
    sessions: ConnectionPool<DB>,
    engine: Option<sqlx::Pool<DB>>,
}

impl<DB: sqlx::Database> Clone for Pools<DB> {
    fn clone(&self) -> Self {
        Self {
            sessions: self.sessions.clone(),
            engine: self.engine.clone(),
        }
    }
}

/// The pools of one of the supported backends.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(Pools<Sqlite>),
    Postgres(Pools<Postgres>),
    MySql(Pools<MySql>),
}

/// A connection checked out of a [`Pool`].
pub(crate) enum Conn {
    Sqlite(Pooled<Sqlite>),
    Postgres(Pooled<Postgres>),
    MySql(Pooled<MySql>),
}

/// What opening a database produced: the pool and, for in-memory SQLite, the
/// private temporary file that must live as long as the pool.
pub(crate) struct Opened {
    pub(crate) pool: Pool,
    pub(crate) memory: Option<MemoryDatabase>,
}

/// Whether opening a host's pools connects once first.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connecting {
    /// The server the registry starts on: connect once (creating the
    /// database first if `create_db` allows and it is missing), so a wrong
    /// password or a closed port fails at startup with the real cause; its
    /// pools include the engine's.
    Eagerly,
    /// A replica, or another host of a multi-host `url`: connect when a
    /// session needs it, so a server that is down at startup only sends
    /// sessions elsewhere; no engine.
    Lazily,
}

impl Pool {
    /// Builds the pools of the database at `url`, connecting first when
    /// `connecting` says so. Every connection the engine hands back counts
    /// as a write in `writes` (read-your-writes cannot see its statements).
    pub(crate) async fn open(
        url: &DbUrl,
        config: &DbConfig,
        counters: Arc<Counters>,
        connecting: Connecting,
        writes: Option<Arc<LastWrite>>,
    ) -> Result<Opened> {
        match url.backend() {
            Backend::Sqlite => sqlite::open(url, config, counters, connecting, writes).await,
            Backend::Postgres => postgres::open(url, config, counters, connecting, writes).await,
            Backend::MySql => mysql::open(url, config, counters, connecting, writes).await,
        }
    }

    /// Checks a session's connection out (`pool_timeout`, `pool_recycle` and
    /// `pool_pre_ping` apply). The future owns what it needs, so it can run
    /// as a task.
    ///
    /// Boxed: held inline, acquire futures made every `get()` future several
    /// KB, copied whole on each move.
    pub(crate) fn acquire(&self) -> BoxFuture<'static, Result<Conn, CheckoutError>> {
        match self {
            Self::Sqlite(pools) => pools
                .sessions
                .checkout()
                .map(|c| c.map(Conn::Sqlite))
                .boxed(),
            Self::Postgres(pools) => pools
                .sessions
                .checkout()
                .map(|c| c.map(Conn::Postgres))
                .boxed(),
            Self::MySql(pools) => pools
                .sessions
                .checkout()
                .map(|c| c.map(Conn::MySql))
                .boxed(),
        }
    }

    /// Open connections, idle or not: the sessions' and the engine's.
    pub(crate) fn size(&self) -> u32 {
        each_backend!(self, Pool(pools) => pools.sessions.size() + pools.engine.as_ref().map_or(0, sqlx::Pool::size))
    }

    /// Open connections that nobody holds: the sessions' and the engine's.
    pub(crate) fn num_idle(&self) -> u32 {
        each_backend!(self, Pool(pools) => {
            // sqlx counts a released connection idle only after a checkout
            // may already have taken it back out, so its count can wrap
            // below zero for a moment: never more idle than open.
            let engine = pools.engine.as_ref().map_or(0, |engine| {
                u32::try_from(engine.num_idle())
                    .unwrap_or(u32::MAX)
                    .min(engine.size())
            });
            pools.sessions.idle() + engine
        })
    }

    /// The most connections sessions use (`pool_size + max_overflow`); the
    /// engine's pool may add a few more (see `engine.rs`).
    pub(crate) fn max_size(&self) -> u32 {
        each_backend!(self, Pool(pools) => pools.sessions.max_size())
    }

    /// Why the last attempt to open a session connection failed, if it did.
    pub(crate) fn last_failure(&self) -> Option<ConnectError> {
        each_backend!(self, Pool(pools) => pools.sessions.last_failure())
    }

    /// Drops the sessions' idle connections (see [`ConnectionPool::drop_idle`]).
    pub(crate) fn drop_idle(&self) {
        each_backend!(self, Pool(pools) => pools.sessions.drop_idle());
    }

    /// Refuses new checkouts, closes idle connections, and waits up to
    /// `grace` for checked-out ones to come back and close. Whether all did.
    pub(crate) async fn close(&self, grace: Duration) -> bool {
        each_backend!(self, Pool(pools) => {
            let (sessions, engine) = tokio::join!(
                pools.sessions.close(grace),
                tokio::time::timeout(grace, async {
                    if let Some(engine) = &pools.engine {
                        engine.close().await;
                    }
                }),
            );
            sessions && engine.is_ok()
        })
    }

    /// sea-orm's view of the engine's pool; `None` on a server opened
    /// lazily, which has none.
    pub(crate) fn database_connection(&self) -> Option<DatabaseConnection> {
        each_backend!(self, Pool(pools) => pools.engine.clone().map(DatabaseConnection::from))
    }

    /// The SQL dialect sea-orm builds statements for.
    pub(crate) fn db_backend(&self) -> DbBackend {
        match self {
            Self::Sqlite(_) => DbBackend::Sqlite,
            Self::Postgres(_) => DbBackend::Postgres,
            Self::MySql(_) => DbBackend::MySql,
        }
    }
}
