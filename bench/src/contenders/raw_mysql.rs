//! The limit on MariaDB: the fastest a client can run the session on a
//! held connection — the whole transaction (`BEGIN; SELECT …; COMMIT`) as
//! one multi-statement text query, so one round trip instead of three, the
//! way the PostgreSQL limit pipelines it. sqlx's own `MySqlConnection`
//! sends it (the protocol code every Rust contender here shares) and the
//! row is decoded as every contender decodes it. The id is an integer the
//! bench chose, written into the text; the other contenders bind it.

use sqlx::{AssertSqlSafe, Connection, MySqlConnection, Row};
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

/// Runs `sql` (several statements) as one query and decodes the rows it returns.
async fn one_trip(conn: &mut MySqlConnection, sql: String) -> Result<()> {
    for row in sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await? {
        let _: (i32, String, i32) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    }
    Ok(())
}

impl Client for RawMySql {
    fn session(&self, op: Op, id: i32, task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut guard = self.conns[task % self.conns.len()].lock().await;
            let conn = &mut *guard;
            let select = Dialect::MySql.select().replace('?', &id.to_string());
            match op {
                Op::Checkout => Err("a held connection has no pool to check out from".into()),
                Op::SelectById => one_trip(conn, format!("BEGIN; {select}; COMMIT")).await,
                Op::FailThenSelect => {
                    one_trip(conn, format!("BEGIN; {select}; ROLLBACK")).await?;
                    one_trip(conn, format!("BEGIN; {select}; COMMIT")).await
                }
                Op::Increment => Err("the limit does not run the hot-row workload".into()),
                Op::WriteThenRead => Err("the limit does not run W8".into()),
                Op::Insert => {
                    let insert = Dialect::MySql.insert().replace('?', &id.to_string());
                    one_trip(conn, format!("BEGIN; {insert}; COMMIT")).await
                }
            }
        })
    }
}
