//! The limit on PostgreSQL: tokio-postgres on held connections with a
//! prepared statement, BEGIN / SELECT / COMMIT pipelined — the same three
//! statements everyone sends, in one round trip instead of three.

use tokio::sync::Mutex;
use tokio_postgres::{Client as PgClient, NoTls, Statement};

use crate::data::Dialect;
use crate::runner::{BoxFuture, Client, Op, Result};
use crate::targets::Servers;

struct Held {
    client: PgClient,
    select: Statement,
    insert: Statement,
}

/// `conns` tokio-postgres connections; task `t` uses connection `t % conns`.
pub struct RawPg {
    conns: Vec<Mutex<Held>>,
}

impl RawPg {
    /// Connects `conns` times and prepares the statements.
    pub async fn connect(servers: &Servers, conns: usize) -> Result<Self> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(servers.var("PG_PORT")?.parse()?)
            .user(servers.var("USER")?)
            .password(servers.var("PASSWORD")?)
            .dbname(servers.var("DATABASE")?)
            .application_name("bench-tokio-postgres");
        let mut held = Vec::new();
        for _ in 0..conns.max(1) {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(connection);
            let select = client.prepare(Dialect::Postgres.select()).await?;
            let insert = client.prepare(Dialect::Postgres.insert()).await?;
            held.push(Mutex::new(Held {
                client,
                select,
                insert,
            }));
        }
        Ok(Self { conns: held })
    }
}

async fn begin(c: &PgClient) -> Result<()> {
    end(c, "BEGIN").await
}

async fn end(c: &PgClient, sql: &str) -> Result<()> {
    Ok(c.batch_execute(sql).await?)
}

async fn select(held: &Held, id: i32) -> Result<()> {
    let row = held.client.query_one(&held.select, &[&id]).await?;
    let _: (i32, String, i32) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    Ok(())
}

impl Client for RawPg {
    fn session(&self, op: Op, id: i32, task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let held = self.conns[task % self.conns.len()].lock().await;
            let c = &held.client;
            // try_join! polls in order, so the statements go out in order,
            // back to back, and their answers come back in one round trip.
            match op {
                Op::Checkout => return Err("tokio-postgres has no pool to check out from".into()),
                Op::SelectById => {
                    tokio::try_join!(begin(c), select(&held, id), end(c, "COMMIT"))?;
                }
                Op::FailThenSelect => {
                    tokio::try_join!(begin(c), select(&held, id), end(c, "ROLLBACK"))?;
                    tokio::try_join!(begin(c), select(&held, id), end(c, "COMMIT"))?;
                }
                Op::Increment => return Err("the limit does not run the hot-row workload".into()),
                Op::WriteThenRead => return Err("the limit does not run W8".into()),
                Op::Insert => {
                    let insert = async { Ok(c.execute(&held.insert, &[&id]).await.map(drop)?) };
                    tokio::try_join!(begin(c), insert, end(c, "COMMIT"))?;
                }
            }
            Ok(())
        })
    }
}
