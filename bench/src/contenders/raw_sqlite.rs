//! The limit on SQLite: rusqlite, one held connection per task slot, the
//! same BEGIN / SELECT / COMMIT (BEGIN IMMEDIATE for writes, as sqlreg does).

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::data::Dialect;
use crate::runner::{BoxFuture, Client, Op, Result};
use crate::targets::{Servers, Target};

/// `conns` rusqlite connections; task `t` uses connection `t % conns`.
pub struct RawSqlite {
    conns: Vec<Mutex<Connection>>,
}

impl RawSqlite {
    /// Opens the file in WAL mode, or one private `:memory:` database (seeded).
    pub fn open(servers: &Servers, target: Target, conns: usize) -> Result<Self> {
        let open = || -> Result<Connection> {
            let conn = match target {
                Target::SqliteMemory => Connection::open_in_memory()?,
                _ => Connection::open(servers.sqlite_file())?,
            };
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "wal")?;
            conn.pragma_update(None, "synchronous", "normal")?;
            Ok(conn)
        };
        let conns = if target.private_memory() {
            let conn = open()?;
            for sql in Dialect::Sqlite.seed() {
                conn.execute_batch(&sql)?;
            }
            vec![Mutex::new(conn)]
        } else {
            (0..conns.max(1))
                .map(|_| open().map(Mutex::new))
                .collect::<Result<_>>()?
        };
        Ok(Self { conns })
    }

    fn blocking_session(&self, op: Op, id: i32, task: usize) -> Result<()> {
        let conn = self.conns[task % self.conns.len()]
            .lock()
            .map_err(|_| "poisoned")?;
        let select = |conn: &Connection| -> Result<()> {
            let mut stmt = conn.prepare_cached(Dialect::Sqlite.select())?;
            stmt.query_row(params![id], |row| {
                Ok((
                    row.get::<_, i32>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i32>(2)?,
                ))
            })?;
            Ok(())
        };
        match op {
            Op::Checkout => return Err("rusqlite has no pool to check out from".into()),
            Op::SelectById => {
                conn.execute_batch("BEGIN")?;
                select(&conn)?;
                conn.execute_batch("COMMIT")?;
            }
            Op::FailThenSelect => {
                conn.execute_batch("BEGIN")?;
                select(&conn)?;
                conn.execute_batch("ROLLBACK")?;
                conn.execute_batch("BEGIN")?;
                select(&conn)?;
                conn.execute_batch("COMMIT")?;
            }
            Op::Increment => return Err("the limit does not run the hot-row workload".into()),
            Op::WriteThenRead => return Err("the limit does not run W8".into()),
            Op::Insert => {
                conn.execute_batch("BEGIN IMMEDIATE")?;
                conn.prepare_cached(Dialect::Sqlite.insert())?
                    .execute(params![id])?;
                conn.execute_batch("COMMIT")?;
            }
        }
        Ok(())
    }
}

impl Client for RawSqlite {
    fn session(&self, op: Op, id: i32, task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.conns.len() == 1 {
                // One connection, one task: nothing else needs this thread.
                self.blocking_session(op, id, task)
            } else {
                // Many writers may wait on busy_timeout: let the runtime move on.
                tokio::task::block_in_place(|| self.blocking_session(op, id, task))
            }
        })
    }
}
