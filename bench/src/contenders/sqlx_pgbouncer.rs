//! W9: sqlx's pool through PgBouncer in transaction mode, set up as sqlx's
//! docs say for it: `statement_cache_capacity(0)`, and every query
//! `.persistent(false)`, since with a capacity of 0 sqlx 0.9 still names
//! its statements, and two clients' names collide on a shared server
//! connection. Sessions as [`super::sqlx_pool`] runs them: `begin`, the
//! statement, `commit`.

use std::str::FromStr;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::data::Dialect;
use crate::runner::{BoxFuture, Client, Op, Result};
use crate::targets::Servers;

/// A sqlx pool of `max` connections to PgBouncer's transaction-mode port.
pub struct SqlxPgbouncer {
    pool: PgPool,
}

impl SqlxPgbouncer {
    /// Connects to the PostgreSQL server's database through PgBouncer.
    pub async fn connect(servers: &Servers, max: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(&servers.pg_url)?
            .port(servers.var("PGBOUNCER_PORT")?.parse()?)
            .statement_cache_capacity(0);
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

impl Client for SqlxPgbouncer {
    fn session(&self, op: Op, id: i32, _task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let dialect = Dialect::Postgres;
            let mut tx = self.pool.begin().await?;
            match op {
                Op::SelectById => {
                    sqlx::query_as::<_, (i32, String, i32)>(dialect.select())
                        .bind(id)
                        .persistent(false)
                        .fetch_one(&mut *tx)
                        .await?;
                }
                Op::Insert => {
                    sqlx::query(dialect.insert())
                        .bind(id)
                        .persistent(false)
                        .execute(&mut *tx)
                        .await?;
                }
                other => return Err(format!("W9's sqlx pool does not run {other:?}").into()),
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
