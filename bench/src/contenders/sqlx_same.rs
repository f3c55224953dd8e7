//! sqlx's pool sending exactly the statements sqlreg sent, so the ratio of
//! sqlreg to it measures the registry alone, apart from which statements a
//! session needs.
//!
//! On PostgreSQL and MariaDB the statements are read back from the server's
//! log of sqlreg's verification run in the same group (see `verify`): the
//! first session one connection logged, each statement replayed as text
//! except the workload's own SELECT or INSERT, which is prepared and bound
//! as sqlreg's body sends it. On PostgreSQL a read workload's connections
//! are opened with `default_transaction_read_only=on`, as sqlreg opens its
//! read connections (a connection option, not a statement, so no log shows
//! it). SQLite has no statement log: its statements are written here as
//! sqlreg's README gives them — `BEGIN` (deferred) for a read session,
//! `BEGIN IMMEDIATE` for a write session, the statement, `COMMIT`.

use std::sync::{Arc, OnceLock};

use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{AssertSqlSafe, Executor, MySqlPool, PgPool, SqlitePool};

use crate::data::Dialect;
use crate::runner::{BoxFuture, Client, Op, Result};
use crate::targets::{Servers, Target};

/// One statement of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Sent as text, as logged (`BEGIN READ ONLY`, `COMMIT`, …).
    Text(Arc<str>),
    /// The workload's own statement, prepared, with the session's id bound.
    Statement,
}

/// The steps of one sqlreg session in a group, set once sqlreg's
/// statements have been verified.
pub type Replay = Arc<OnceLock<Vec<Step>>>;

/// The steps of one session from the statements the server logged for it.
pub fn steps_from_log(logged: &[String], dialect: Dialect, op: Op) -> Vec<Step> {
    let own = match op {
        Op::Insert => dialect.insert(),
        _ => dialect.select(),
    };
    let prefix = own.split(['$', '?']).next().unwrap_or(own);
    logged
        .iter()
        .map(|text| {
            if text.starts_with(prefix) {
                Step::Statement
            } else {
                Step::Text(Arc::from(text.as_str()))
            }
        })
        .collect()
}

/// SQLite's steps, as sqlreg's README describes its sessions.
fn sqlite_steps(op: Op) -> Vec<Step> {
    let begin = if op == Op::Insert {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN"
    };
    vec![
        Step::Text(Arc::from(begin)),
        Step::Statement,
        Step::Text(Arc::from("COMMIT")),
    ]
}

enum AnyPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// A sqlx pool replaying sqlreg's session.
pub struct SqlxSame {
    pool: AnyPool,
    dialect: Dialect,
    replay: Replay,
}

impl SqlxSame {
    /// A pool of `max` connections for sessions doing `op`.
    pub async fn connect(
        servers: &Servers,
        target: Target,
        op: Op,
        max: u32,
        replay: Replay,
    ) -> Result<Self> {
        let url = servers.sqlx_url(target);
        let pool = match target.dialect() {
            Dialect::Sqlite => {
                let _ = replay.set(sqlite_steps(op));
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .test_before_acquire(false)
                    .connect(&url)
                    .await?;
                if target.private_memory() {
                    for sql in Dialect::Sqlite.seed() {
                        pool.execute(AssertSqlSafe(sql)).await?;
                    }
                }
                AnyPool::Sqlite(pool)
            }
            Dialect::Postgres => {
                let mut options: PgConnectOptions = url.parse()?;
                if op == Op::SelectById {
                    options = options.options([("default_transaction_read_only", "on")]);
                }
                AnyPool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(max)
                        .test_before_acquire(false)
                        .connect_with(options)
                        .await?,
                )
            }
            Dialect::MySql => AnyPool::MySql(
                MySqlPoolOptions::new()
                    .max_connections(max)
                    .test_before_acquire(false)
                    .connect(&url)
                    .await?,
            ),
        };
        Ok(Self {
            pool,
            dialect: target.dialect(),
            replay,
        })
    }
}

/// One session: a pooled connection, every step on it, back to the pool.
macro_rules! replay {
    ($pool:expr, $steps:expr, $op:expr, $id:expr, $dialect:expr) => {{
        let mut conn = $pool.acquire().await?;
        for step in $steps {
            match (step, $op) {
                (Step::Text(sql), _) => {
                    conn.execute(AssertSqlSafe(Arc::clone(sql))).await?;
                }
                (Step::Statement, Op::SelectById) => {
                    sqlx::query_as::<_, (i32, String, i32)>($dialect.select())
                        .bind($id)
                        .fetch_one(&mut *conn)
                        .await?;
                }
                (Step::Statement, Op::Insert) => {
                    sqlx::query($dialect.insert())
                        .bind($id)
                        .execute(&mut *conn)
                        .await?;
                }
                (Step::Statement, other) => {
                    return Err(format!(
                        "sqlreg's statements are replayed for reads and inserts, not {other:?}"
                    )
                    .into());
                }
            }
        }
        Ok(())
    }};
}

impl Client for SqlxSame {
    fn session(&self, op: Op, id: i32, _task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let steps = self
                .replay
                .get()
                .ok_or("sqlreg's statements were not verified in this group")?;
            match &self.pool {
                AnyPool::Sqlite(pool) => replay!(pool, steps, op, id, self.dialect),
                AnyPool::Postgres(pool) => replay!(pool, steps, op, id, self.dialect),
                AnyPool::MySql(pool) => replay!(pool, steps, op, id, self.dialect),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_statement_is_bound_the_rest_sent_as_logged() {
        let logged = [
            "START TRANSACTION READ ONLY".to_owned(),
            "SELECT id, name, qty FROM items WHERE id = 17".to_owned(),
            "COMMIT".to_owned(),
        ];
        let steps = steps_from_log(&logged, Dialect::MySql, Op::SelectById);
        assert_eq!(
            steps,
            [
                Step::Text(Arc::from("START TRANSACTION READ ONLY")),
                Step::Statement,
                Step::Text(Arc::from("COMMIT")),
            ]
        );
        let logged = ["INSERT INTO events (item_id) VALUES ($1)".to_owned()];
        let steps = steps_from_log(&logged, Dialect::Postgres, Op::Insert);
        assert_eq!(steps, [Step::Statement]);
    }
}
