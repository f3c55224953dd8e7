//! A connection checked out of the pool: statements, transactions and
//! savepoints, dispatched to the backend's sqlx connection.

use std::any::Any;
use std::borrow::Cow;
use std::time::Duration;

use sea_orm::{ExecResult, QueryResult, Statement, Values};
use sea_query_sqlx::SqlxValues;
use sqlx::{Database, Executor, MySql, Postgres, Sqlite};
use sqlx_core::transaction::TransactionManager;

use super::conflict::Aborted;
use super::{Conn, mysql, postgres, sqlite};
use crate::config::Isolation;
use crate::pool::Pooled;

/// The bound values of a sea-orm statement, in the form sqlx binds.
fn arguments(stmt: &Statement) -> SqlxValues {
    SqlxValues(stmt.values.clone().unwrap_or(Values(Vec::new())))
}

impl Conn {
    /// `stmt` as this backend runs it best: on SQLite with a bound LIMIT
    /// written into its text (see `sqlite::limit_in_text`).
    fn planned<'s>(&self, stmt: &'s Statement) -> Cow<'s, Statement> {
        match self {
            Self::Sqlite(_) => sqlite::limit_in_text(stmt).map_or(Cow::Borrowed(stmt), Cow::Owned),
            Self::Postgres(_) | Self::MySql(_) => Cow::Borrowed(stmt),
        }
    }

    /// Runs a statement that returns no rows.
    pub(crate) async fn execute(&mut self, stmt: &Statement) -> Result<ExecResult, sqlx::Error> {
        let planned = self.planned(stmt);
        let stmt = &*planned;
        each_backend!(self, Conn(conn) => {
            let named = conn.transaction_settings().is_none();
            sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), arguments(stmt))
                .persistent(named)
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
        let planned = self.planned(stmt);
        let stmt = &*planned;
        each_backend!(self, Conn(conn) => {
            let named = conn.transaction_settings().is_none();
            sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), arguments(stmt))
                .persistent(named)
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
        let planned = self.planned(stmt);
        let stmt = &*planned;
        each_backend!(self, Conn(conn) => {
            let named = conn.transaction_settings().is_none();
            sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), arguments(stmt))
                .persistent(named)
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.into_iter().map(QueryResult::from).collect())
        })
    }

    /// Opens a transaction (depth 0) or a savepoint (deeper). The outermost
    /// `BEGIN` carries the access mode and the isolation level where the
    /// backend allows it, so neither costs a round trip of its own.
    pub(crate) async fn begin(
        &mut self,
        read_only: bool,
        isolation: Option<Isolation>,
    ) -> Result<(), sqlx::Error> {
        let outermost = self.transaction_depth() == 0;
        // MariaDB's DDL commits implicitly and runs outside the transaction,
        // so a write transaction needs a connection that writes by default.
        if outermost && !read_only && matches!(self, Self::MySql(_)) {
            self.writes_by_default(true).await?;
        }
        match self {
            Self::Sqlite(conn) => {
                let statement = sqlite::begin_statement(read_only).filter(|_| outermost);
                <Sqlite as Database>::TransactionManager::begin(conn, statement).await
            }
            Self::Postgres(conn) => {
                let settings = conn.transaction_settings();
                let statement =
                    outermost.then(|| postgres::begin_statement(read_only, isolation, settings));
                <Postgres as Database>::TransactionManager::begin(conn, statement).await
            }
            Self::MySql(conn) => {
                let statement = outermost.then(|| mysql::begin_statement(read_only, isolation));
                <MySql as Database>::TransactionManager::begin(conn, statement).await
            }
        }
    }

    /// Begins the transaction again after the server ended it under the
    /// session (a MariaDB statement that commits implicitly): sqlx still
    /// counts the first one open, so only the statement is sent.
    pub(crate) async fn begin_again(
        &mut self,
        read_only: bool,
        isolation: Option<Isolation>,
    ) -> Result<(), sqlx::Error> {
        let statement = match self {
            Self::Sqlite(_) => sqlite::begin_statement(read_only),
            Self::Postgres(conn) => Some(postgres::begin_statement(
                read_only,
                isolation,
                conn.transaction_settings(),
            )),
            Self::MySql(_) => Some(mysql::begin_statement(read_only, isolation)),
        };
        let statement = statement
            .as_ref()
            .map_or("BEGIN", |statement| statement.as_str());
        self.execute_unprepared(statement).await.map(drop)
    }

    /// Opens savepoint `id`. sqlreg names and counts its savepoints itself,
    /// so that an interrupted one can be found and undone by name (sqlx's
    /// count goes wrong when a savepoint statement is cut off mid-round-trip).
    /// `id` is never reused within a transaction: a `SAVEPOINT` cut off
    /// after it reached the server leaves a savepoint sqlreg does not count,
    /// and a later one of the same name would make `ROLLBACK TO` undo back
    /// to that stale one — work the session was told was done.
    pub(crate) async fn savepoint(&mut self, id: u32) -> Result<(), sqlx::Error> {
        self.execute_unprepared(&format!("SAVEPOINT sqlreg_savepoint_{id}"))
            .await
            .map(drop)
    }

    /// Keeps savepoint `id`'s work in the enclosing transaction.
    pub(crate) async fn release_savepoint(&mut self, id: u32) -> Result<(), sqlx::Error> {
        self.execute_unprepared(&format!("RELEASE SAVEPOINT sqlreg_savepoint_{id}"))
            .await
            .map(drop)
    }

    /// Undoes savepoint `id`'s work (and every savepoint inside it) and
    /// removes it, in one round trip.
    pub(crate) async fn undo_savepoint(&mut self, id: u32) -> Result<(), sqlx::Error> {
        self.execute_unprepared(&format!(
            "ROLLBACK TO SAVEPOINT sqlreg_savepoint_{id}; RELEASE SAVEPOINT sqlreg_savepoint_{id}"
        ))
        .await
        .map(drop)
    }

    /// Whether a read-only session at `isolation` may run its statements
    /// without a transaction and see the same rows: when each statement
    /// takes its own snapshot anyway (READ COMMITTED).
    /// Never behind a transaction pooler: there no default outlives a
    /// transaction, so only `BEGIN READ ONLY` keeps a read session's promise.
    pub(crate) fn reads_without_transaction(&self, isolation: Option<Isolation>) -> bool {
        if self.shares_server() {
            return false;
        }
        match self {
            Self::Sqlite(_) => sqlite::reads_without_transaction(isolation),
            Self::Postgres(_) => postgres::reads_without_transaction(isolation),
            Self::MySql(_) => mysql::reads_without_transaction(isolation),
        }
    }

    /// Makes statements outside a transaction able to write (`writes`) or
    /// refused by the server when they try, so that a read session that
    /// skips BEGIN still cannot write. PostgreSQL session connections open
    /// refusing such writes (a write session names READ WRITE in its BEGIN;
    /// an autocommit one lifts the default once per connection), MariaDB
    /// ones allowing them (a read session at READ COMMITTED makes the
    /// connection read-only first). Costs a round trip only when the
    /// default changes; SQLite does not enforce read-only access, so there
    /// it costs nothing.
    pub(crate) async fn writes_by_default(&mut self, writes: bool) -> Result<(), sqlx::Error> {
        let current = each_backend!(self, Conn(conn) => conn.writes_by_default());
        if current == writes {
            return Ok(());
        }
        let statement = match self {
            Self::Sqlite(_) => None,
            Self::Postgres(_) => Some(postgres::default_access_statement(writes)),
            Self::MySql(_) => Some(mysql::default_access_statement(writes)),
        };
        if let Some(sql) = statement {
            self.execute_unprepared(sql).await?;
        }
        each_backend!(self, Conn(conn) => conn.set_writes_by_default(writes));
        Ok(())
    }

    /// What `err`, just returned by a statement inside a transaction, did to
    /// that transaction on this backend.
    pub(crate) async fn aborted_by(&mut self, err: &sqlx::Error) -> Aborted {
        match self {
            Self::Sqlite(conn) => sqlite::aborts_transaction(conn, err).await,
            Self::Postgres(_) => postgres::aborts_transaction(err),
            Self::MySql(conn) => mysql::aborts_transaction(conn, err).await,
        }
    }

    /// Asks the server whether the open transaction is still usable, for
    /// statements sqlreg did not see (those run through `Session::sqlx()`):
    /// PostgreSQL refuses a statement in an aborted transaction, MariaDB
    /// reports `@@in_transaction = 0` once it rolled one back. SQLite gives
    /// no such answer; its rare automatic rollbacks surface at COMMIT.
    pub(crate) async fn transaction_survived(&mut self) -> Result<bool, sqlx::Error> {
        match self {
            Self::Sqlite(_) => Ok(true),
            // A simple query: no named statement, behind a pooler too.
            Self::Postgres(conn) => match sqlx::raw_sql("SELECT 1").execute(&mut **conn).await {
                Ok(_) => Ok(true),
                Err(err) if postgres::aborts_transaction(&err) != Aborted::No => Ok(false),
                Err(err) => Err(err),
            },
            Self::MySql(conn) => {
                let open: u64 = sqlx::query_scalar("SELECT @@in_transaction")
                    .fetch_one(&mut **conn)
                    .await?;
                Ok(open == 1)
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
    pub(crate) fn downcast_ref<C: Any>(&self) -> Option<&C> {
        each_backend!(self, Conn(conn) => (&**conn as &dyn Any).downcast_ref::<C>())
    }

    /// The backend's own sqlx connection, if it is of type `C`.
    pub(crate) fn downcast_mut<C: Any>(&mut self) -> Option<&mut C> {
        each_backend!(self, Conn(conn) => (&mut **conn as &mut dyn Any).downcast_mut::<C>())
    }

    /// Makes sure the connection is closed, not pooled, when it is dropped.
    pub(crate) fn close_on_drop(&mut self) {
        each_backend!(self, Conn(conn) => conn.close_on_release());
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

fn depth<DB: Database>(conn: &Pooled<DB>) -> usize {
    DB::TransactionManager::get_transaction_depth(conn)
}

async fn commit<DB: Database>(conn: &mut Pooled<DB>) -> Result<(), sqlx::Error> {
    DB::TransactionManager::commit(conn).await
}

async fn rollback<DB: Database>(conn: &mut Pooled<DB>) -> Result<(), sqlx::Error> {
    DB::TransactionManager::rollback(conn).await
}
