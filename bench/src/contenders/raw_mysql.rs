//! The limit on MariaDB: sqlx's own `MySqlConnection`, held, no pool, no
//! transaction object — BEGIN and COMMIT as plain text, the SELECT as a
//! server-side prepared statement cached on the connection. It is the
//! protocol code every Rust contender here shares, so what remains above it
//! is exactly the pool and the library layers.

use sqlx::{Connection, Executor, MySqlConnection};
use tokio::sync::Mutex;

use crate::data::Dialect;
use crate::runner::{BoxFuture, Client, Op, Result};
use crate::targets::Servers;

/// `conns` held connections; task `t` uses connection `t % conns`.
pub struct RawMySql {
    conns: Vec<Mutex<MySqlConnection>>,
}

impl RawMySql {
    /// Connects `conns` times.
    pub async fn connect(servers: &Servers, conns: usize) -> Result<Self> {
        let mut held = Vec::new();
        for _ in 0..conns.max(1) {
            held.push(Mutex::new(
                MySqlConnection::connect(&servers.mariadb_url).await?,
            ));
        }
        Ok(Self { conns: held })
    }
}

async fn select(conn: &mut MySqlConnection, id: i32) -> Result<()> {
    sqlx::query_as::<_, (i32, String, i32)>(Dialect::MySql.select())
        .bind(id)
        .fetch_one(conn)
        .await?;
    Ok(())
}

impl Client for RawMySql {
    fn session(&self, op: Op, id: i32, task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut guard = self.conns[task % self.conns.len()].lock().await;
            let conn = &mut *guard;
            match op {
                Op::Checkout => {
                    return Err("a held connection has no pool to check out from".into());
                }
                Op::SelectById => {
                    conn.execute("BEGIN").await?;
                    select(conn, id).await?;
                    conn.execute("COMMIT").await?;
                }
                Op::FailThenSelect => {
                    conn.execute("BEGIN").await?;
                    select(conn, id).await?;
                    conn.execute("ROLLBACK").await?;
                    conn.execute("BEGIN").await?;
                    select(conn, id).await?;
                    conn.execute("COMMIT").await?;
                }
                Op::Increment => return Err("the limit does not run the hot-row workload".into()),
                Op::Insert => {
                    conn.execute("BEGIN").await?;
                    sqlx::query(Dialect::MySql.insert())
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    conn.execute("COMMIT").await?;
                }
            }
            Ok(())
        })
    }
}
