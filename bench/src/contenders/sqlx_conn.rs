//! The driver's own floor: one statement on a held sqlx connection, no
//! pool, no transaction (autocommit). On SQLite that is one hop to sqlx's
//! worker thread, the least anything that decodes sqlx rows can cost; on a
//! server, one round trip.

use sqlx::{Connection, MySqlConnection, PgConnection, SqliteConnection};
use tokio::sync::Mutex;

use crate::data::Dialect;
use crate::runner::{BoxFuture, Client, Op, Result};
use crate::targets::{Servers, Target};

enum Held {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    MySql(MySqlConnection),
}

/// `conns` held connections; task `t` uses connection `t % conns`.
pub struct SqlxConn {
    conns: Vec<Mutex<Held>>,
    dialect: Dialect,
}

impl SqlxConn {
    /// Connects `conns` times (once, seeded, for a private in-memory database).
    pub async fn connect(servers: &Servers, target: Target, conns: usize) -> Result<Self> {
        let url = servers.sqlx_url(target);
        let count = if target.private_memory() {
            1
        } else {
            conns.max(1)
        };
        let mut held = Vec::new();
        for _ in 0..count {
            let conn = match target.dialect() {
                Dialect::Sqlite => {
                    let mut conn = SqliteConnection::connect(&url).await?;
                    if target.private_memory() {
                        for sql in Dialect::Sqlite.seed() {
                            sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(sql)).await?;
                        }
                    }
                    Held::Sqlite(conn)
                }
                Dialect::Postgres => Held::Postgres(PgConnection::connect(&url).await?),
                Dialect::MySql => Held::MySql(MySqlConnection::connect(&url).await?),
            };
            held.push(Mutex::new(conn));
        }
        Ok(Self {
            conns: held,
            dialect: target.dialect(),
        })
    }
}

/// The one statement of `op` on `$conn`.
macro_rules! statement {
    ($conn:expr, $op:expr, $id:expr, $dialect:expr) => {{
        match $op {
            Op::SelectById => {
                sqlx::query_as::<_, (i32, String, i32)>($dialect.select())
                    .bind($id)
                    .fetch_one($conn)
                    .await?;
            }
            Op::Insert => {
                sqlx::query($dialect.insert())
                    .bind($id)
                    .execute($conn)
                    .await?;
            }
            other => {
                return Err(format!("a held connection runs one statement, not {other:?}").into());
            }
        }
        Ok(())
    }};
}

impl Client for SqlxConn {
    fn session(&self, op: Op, id: i32, task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut guard = self.conns[task % self.conns.len()].lock().await;
            match &mut *guard {
                Held::Sqlite(conn) => statement!(conn, op, id, self.dialect),
                Held::Postgres(conn) => statement!(conn, op, id, self.dialect),
                Held::MySql(conn) => statement!(conn, op, id, self.dialect),
            }
        })
    }
}
