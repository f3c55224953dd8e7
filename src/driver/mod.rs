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
mod migrate;
mod mysql;
mod postgres;
pub(crate) mod scratch;
mod semconv;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryFutureExt};
use sea_orm::{DatabaseConnection, DbBackend};
use sqlx::pool::PoolConnection;
use sqlx::{MySql, Postgres, Sqlite};

use crate::config::DbConfig;
use crate::error::{ConnectFailure, Result};
use crate::stats::Counters;
use crate::url::{Backend, DbUrl};
use connect::PoolHooks;

pub(crate) use conflict::{Aborted, describe as describe_failure, explain, is_conflict, is_fatal};
pub(crate) use connect::{MemoryDatabase, redact};
pub(crate) use migrate::{MIGRATIONS_TABLE, MigrationLock, Recorded};
pub(crate) use semconv::{identifier_quote, system_name};

/// A sqlx pool of one of the supported backends.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(sqlx::Pool<Sqlite>),
    Postgres(sqlx::Pool<Postgres>),
    MySql(sqlx::Pool<MySql>),
}

/// A connection checked out of a [`Pool`].
pub(crate) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
    MySql(PoolConnection<MySql>),
}

/// What opening a database produced: the pool and, for in-memory SQLite, the
/// private temporary file that must live as long as the pool.
pub(crate) struct Opened {
    pub(crate) pool: Pool,
    pub(crate) memory: Option<MemoryDatabase>,
}

impl Pool {
    /// Connects once (creating the database first if `create_db` allows and it
    /// is missing), so a wrong password or a closed port fails here with the
    /// real cause, then builds the pool.
    pub(crate) async fn open(
        url: &DbUrl,
        config: &DbConfig,
        counters: Arc<Counters>,
    ) -> Result<Opened> {
        let hooks = PoolHooks { counters };
        match url.backend() {
            Backend::Sqlite => sqlite::open(url, config, &hooks).await,
            Backend::Postgres => postgres::open(url, config, &hooks).await,
            Backend::MySql => mysql::open(url, config, &hooks).await,
        }
    }

    /// One connection attempt outside the pool, to learn why the pool cannot
    /// open connections (the pool itself only reports that it timed out).
    /// The error is the failure's class and the driver's message, redacted.
    pub(crate) async fn probe(
        &self,
        url: &DbUrl,
        timeout: Duration,
    ) -> Result<(), (ConnectFailure, String)> {
        match self {
            Self::Sqlite(pool) => connect::probe(pool, url, timeout, sqlite::classify).await,
            Self::Postgres(pool) => connect::probe(pool, url, timeout, postgres::classify).await,
            Self::MySql(pool) => connect::probe(pool, url, timeout, mysql::classify).await,
        }
    }

    /// Checks a connection out (sqlx applies `acquire_timeout`, pre-ping and
    /// recycling). The future owns what it needs, so it can run as a task.
    ///
    /// Boxed: sqlx's acquire futures are 3–18 KB, and held inline they made
    /// every `get()` future 18 KB, copied whole on each move (now 4.7 KB).
    pub(crate) fn acquire(&self) -> BoxFuture<'static, Result<Conn, sqlx::Error>> {
        match self {
            Self::Sqlite(pool) => pool.acquire().map_ok(Conn::Sqlite).boxed(),
            Self::Postgres(pool) => pool.acquire().map_ok(Conn::Postgres).boxed(),
            Self::MySql(pool) => pool.acquire().map_ok(Conn::MySql).boxed(),
        }
    }

    /// Open connections, idle or not.
    pub(crate) fn size(&self) -> u32 {
        each_backend!(self, Pool(pool) => pool.size())
    }

    /// Open connections that nobody holds.
    pub(crate) fn num_idle(&self) -> u32 {
        each_backend!(self, Pool(pool) => u32::try_from(pool.num_idle()).unwrap_or(u32::MAX))
    }

    /// The most connections the pool will open.
    pub(crate) fn max_size(&self) -> u32 {
        each_backend!(self, Pool(pool) => pool.options().get_max_connections())
    }

    /// Closes every connection; checked-out ones close when they come back.
    pub(crate) async fn close(&self) {
        each_backend!(self, Pool(pool) => pool.close().await);
    }

    /// sea-orm's view of the same pool (no second pool, no second set of options).
    pub(crate) fn database_connection(&self) -> DatabaseConnection {
        each_backend!(self, Pool(pool) => DatabaseConnection::from(pool.clone()))
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
