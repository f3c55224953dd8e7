//! sqlx's pool used directly: `begin` / `fetch_one` / `commit`, with
//! `test_before_acquire` off as sqlreg sets it (its `pool_pre_ping: false`).
//! W6's read-modify-write is sqlx's documented transaction, at the server's
//! default isolation: `pool.begin()`, fetch, update, `tx.commit()`.

use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Executor, MySqlPool, PgPool, SqlitePool};

use crate::data::Dialect;
use crate::hot_row;
use crate::runner::{BoxFuture, Client, Op, Result};
use crate::targets::{Servers, Target};

enum AnyPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// A sqlx pool of `max` connections on one target.
pub struct SqlxPool {
    pool: AnyPool,
    dialect: Dialect,
}

impl SqlxPool {
    /// Connects (and seeds a private in-memory database).
    pub async fn connect(servers: &Servers, target: Target, max: u32) -> Result<Self> {
        let url = servers.sqlx_url(target);
        let pool = match target.dialect() {
            Dialect::Sqlite => AnyPool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(max)
                    .test_before_acquire(false)
                    .connect(&url)
                    .await?,
            ),
            Dialect::Postgres => AnyPool::Postgres(
                PgPoolOptions::new()
                    .max_connections(max)
                    .test_before_acquire(false)
                    .connect(&url)
                    .await?,
            ),
            Dialect::MySql => AnyPool::MySql(
                MySqlPoolOptions::new()
                    .max_connections(max)
                    .test_before_acquire(false)
                    .connect(&url)
                    .await?,
            ),
        };
        if let (true, AnyPool::Sqlite(pool)) = (target.private_memory(), &pool) {
            for sql in target.dialect().seed() {
                pool.execute(sqlx::AssertSqlSafe(sql)).await?;
            }
        }
        Ok(Self {
            pool,
            dialect: target.dialect(),
        })
    }
}

/// One session on a sqlx pool; the same text for every backend.
macro_rules! session {
    ($pool:expr, $op:expr, $id:expr, $dialect:expr) => {{
        let select = |id: i32| sqlx::query_as::<_, (i32, String, i32)>($dialect.select()).bind(id);
        match $op {
            Op::Checkout => drop($pool.acquire().await?),
            Op::WriteThenRead => return Err("the sqlx pool does not run W8".into()),
            Op::SelectById => {
                let mut tx = $pool.begin().await?;
                select($id).fetch_one(&mut *tx).await?;
                tx.commit().await?;
            }
            Op::FailThenSelect => {
                let mut tx = $pool.begin().await?;
                select($id).fetch_one(&mut *tx).await?;
                tx.rollback().await?;
                let mut tx = $pool.begin().await?;
                select($id).fetch_one(&mut *tx).await?;
                tx.commit().await?;
            }
            Op::Increment => {
                let mut tx = $pool.begin().await?;
                let (qty,): (i32,) = sqlx::query_as($dialect.select_counter())
                    .bind(hot_row::ID)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query($dialect.update_counter())
                    .bind(qty + 1)
                    .bind(hot_row::ID)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Op::Insert => {
                let mut tx = $pool.begin().await?;
                sqlx::query($dialect.insert())
                    .bind($id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }};
}

impl Client for SqlxPool {
    fn session(&self, op: Op, id: i32, _task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match &self.pool {
                AnyPool::Sqlite(pool) => session!(pool, op, id, self.dialect),
                AnyPool::Postgres(pool) => session!(pool, op, id, self.dialect),
                AnyPool::MySql(pool) => session!(pool, op, id, self.dialect),
            }
        })
    }

    fn counter(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            let sql = self.dialect.select_counter();
            let qty: i32 = match &self.pool {
                AnyPool::Sqlite(pool) => {
                    sqlx::query_scalar(sql)
                        .bind(hot_row::ID)
                        .fetch_one(pool)
                        .await?
                }
                AnyPool::Postgres(pool) => {
                    sqlx::query_scalar(sql)
                        .bind(hot_row::ID)
                        .fetch_one(pool)
                        .await?
                }
                AnyPool::MySql(pool) => {
                    sqlx::query_scalar(sql)
                        .bind(hot_row::ID)
                        .fetch_one(pool)
                        .await?
                }
            };
            Ok(i64::from(qty))
        })
    }
}
