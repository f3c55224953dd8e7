//! The one seam between sqlreg and the database drivers.
//!
//! Everything that differs per backend — connect options, per-connection
//! setup, error classification, `CREATE DATABASE`, the `BEGIN` statement —
//! lives in one file per backend. [`Pool`] and [`Conn`] dispatch to those files
//! with [`each_backend!`]; nothing outside this module matches on the backend.

mod connect;
mod mysql;
mod postgres;
mod sqlite;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryFutureExt};
use sea_orm::{DatabaseConnection, DbBackend, ExecResult, QueryResult, Statement, Values};
use sea_query_sqlx::SqlxValues;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Executor, MySql, Postgres, SqlSafeStr, Sqlite};
use sqlx_core::transaction::TransactionManager;

use crate::config::DbConfig;
use crate::error::{ConnectFailure, Result};
use crate::stats::Counters;
use crate::url::{Backend, DbUrl};
use connect::PoolHooks;

pub(crate) use connect::{MemoryDatabase, redact};

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

/// The bound values of a sea-orm statement, in the form sqlx binds.
fn arguments(stmt: &Statement) -> SqlxValues {
    SqlxValues(stmt.values.clone().unwrap_or(Values(Vec::new())))
}

impl Conn {
    /// Runs a statement that returns no rows.
    pub(crate) async fn execute(&mut self, stmt: &Statement) -> Result<ExecResult, sqlx::Error> {
        each_backend!(self, Conn(conn) => {
            sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), arguments(stmt))
                .execute(&mut **conn)
                .await
                .map(ExecResult::from)
        })
    }

    /// Runs SQL text without parameters (may hold several statements).
    pub(crate) async fn execute_unprepared(
        &mut self,
        sql: &str,
    ) -> Result<ExecResult, sqlx::Error> {
        each_backend!(self, Conn(conn) => conn
            .execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .map(ExecResult::from))
    }

    /// Runs a query and returns its first row, if any.
    pub(crate) async fn fetch_optional(
        &mut self,
        stmt: &Statement,
    ) -> Result<Option<QueryResult>, sqlx::Error> {
        each_backend!(self, Conn(conn) => {
            sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), arguments(stmt))
                .fetch_optional(&mut **conn)
                .await
                .map(|row| row.map(QueryResult::from))
        })
    }

    /// Runs a query and returns all its rows.
    pub(crate) async fn fetch_all(
        &mut self,
        stmt: &Statement,
    ) -> Result<Vec<QueryResult>, sqlx::Error> {
        each_backend!(self, Conn(conn) => {
            sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), arguments(stmt))
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.into_iter().map(QueryResult::from).collect())
        })
    }

    /// Opens a transaction (depth 0) or a savepoint (deeper). `first_sql` is
    /// the statement about to run, so SQLite can take the write lock up front;
    /// a `read_only` transaction refuses writes where the server can.
    pub(crate) async fn begin(
        &mut self,
        first_sql: Option<&str>,
        read_only: bool,
    ) -> Result<(), sqlx::Error> {
        let outermost = self.transaction_depth() == 0;
        match self {
            Self::Sqlite(conn) => {
                let statement = sqlite::begin_statement(first_sql, read_only, outermost);
                <Sqlite as Database>::TransactionManager::begin(conn, statement).await
            }
            Self::Postgres(conn) => {
                let statement =
                    (read_only && outermost).then_some("BEGIN READ ONLY".into_sql_str());
                <Postgres as Database>::TransactionManager::begin(conn, statement).await
            }
            Self::MySql(conn) => {
                let statement = (read_only && outermost)
                    .then_some("START TRANSACTION READ ONLY".into_sql_str());
                <MySql as Database>::TransactionManager::begin(conn, statement).await
            }
        }
    }

    /// Commits the innermost transaction or releases the innermost savepoint.
    pub(crate) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        each_backend!(self, Conn(conn) => commit(conn).await)
    }

    /// Rolls back the innermost transaction or savepoint.
    pub(crate) async fn rollback(&mut self) -> Result<(), sqlx::Error> {
        each_backend!(self, Conn(conn) => rollback(conn).await)
    }

    /// Open transactions plus savepoints on this connection.
    pub(crate) fn transaction_depth(&self) -> usize {
        each_backend!(self, Conn(conn) => depth(conn))
    }

    /// The backend's own sqlx connection, if it is of type `C`.
    pub(crate) fn downcast_mut<C: Any>(&mut self) -> Option<&mut C> {
        each_backend!(self, Conn(conn) => (&mut **conn as &mut dyn Any).downcast_mut::<C>())
    }

    /// Whether `err` means this connection is unusable (lost, killed, timed
    /// out mid-statement, server shutting down) rather than one failed statement.
    pub(crate) fn is_fatal(&self, err: &sqlx::Error) -> bool {
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => match self {
                Self::Sqlite(_) => false,
                Self::Postgres(_) => postgres::is_fatal(db.as_ref()),
                Self::MySql(_) => mysql::is_fatal(db.as_ref()),
            },
            _ => false,
        }
    }

    /// Closes the connection instead of returning it to the pool.
    pub(crate) async fn close(self) {
        each_backend!(self, Conn(conn) => {
            let _ = conn.close().await;
        });
    }

    /// Makes sure the connection is closed, not pooled, when it is dropped.
    pub(crate) fn close_on_drop(&mut self) {
        each_backend!(self, Conn(conn) => conn.close_on_drop());
    }

    /// Rolls back whatever is open, with a bound on how long that may take;
    /// a connection that cannot be rolled back is closed instead of pooled.
    pub(crate) async fn rollback_all_or_close(&mut self, limit: Duration) {
        let rolled_back = tokio::time::timeout(limit, async {
            while self.transaction_depth() > 0 {
                self.rollback().await?;
            }
            Ok::<_, sqlx::Error>(())
        })
        .await;
        if !matches!(rolled_back, Ok(Ok(()))) {
            tracing::warn!(
                "rollback failed or timed out; closing the connection instead of pooling it"
            );
            self.close_on_drop();
        }
    }
}

fn depth<DB: Database>(conn: &PoolConnection<DB>) -> usize {
    DB::TransactionManager::get_transaction_depth(conn)
}

async fn commit<DB: Database>(conn: &mut PoolConnection<DB>) -> Result<(), sqlx::Error> {
    DB::TransactionManager::commit(conn).await
}

async fn rollback<DB: Database>(conn: &mut PoolConnection<DB>) -> Result<(), sqlx::Error> {
    DB::TransactionManager::rollback(conn).await
}
