//! Counting the statements a contender really sends: PostgreSQL's
//! `log_statement = 'all'` and MariaDB's general log, read back from the
//! servers' log files between two offsets.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, MySqlConnection, PgConnection};

use crate::runner::Result;
use crate::targets::{Servers, Target};

enum Admin {
    /// The `postgres` superuser over the private unix socket.
    Postgres(PgConnection),
    /// The bench user (it holds the global privileges general_log needs).
    MariaDb(MySqlConnection),
}

/// A server's statement log, switched on while contenders are verified.
pub struct StatementLog {
    admin: Admin,
    file: PathBuf,
}

impl StatementLog {
    /// The log of `target`'s server; `None` for SQLite (no server, no round trips).
    pub async fn open(servers: &Servers, target: Target) -> Result<Option<Self>> {
        Ok(Some(match target {
            Target::SqliteFile | Target::SqliteMemory => return Ok(None),
            Target::Postgres => {
                let options = PgConnectOptions::new()
                    .socket(servers.var("PG_SOCKET_DIR")?)
                    .port(servers.var("PG_PORT")?.parse()?)
                    .username("postgres")
                    .database("postgres");
                let admin = Admin::Postgres(PgConnection::connect_with(&options).await?);
                Self {
                    admin,
                    file: servers.var("PG_LOG")?.into(),
                }
            }
            Target::MariaDb => {
                let options = MySqlConnectOptions::from_str(&servers.mariadb_url)?;
                let admin = Admin::MariaDb(MySqlConnection::connect_with(&options).await?);
                let dir = PathBuf::from(servers.var("MARIADB_LOG")?);
                let file = dir.with_file_name("general.log");
                Self { admin, file }
            }
        }))
    }

    /// Switches statement logging on or off for every connection.
    pub async fn enable(&mut self, on: bool) -> Result<()> {
        match &mut self.admin {
            Admin::Postgres(conn) => {
                let sql = if on {
                    "ALTER SYSTEM SET log_statement = 'all'"
                } else {
                    "ALTER SYSTEM RESET log_statement"
                };
                conn.execute(sql).await?;
                conn.execute("SELECT pg_reload_conf()").await?;
            }
            Admin::MariaDb(conn) => {
                if on {
                    let file = self.file.display().to_string().replace('\'', "''");
                    let sql = format!("SET GLOBAL general_log_file = '{file}'");
                    conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                    conn.execute("SET GLOBAL log_output = 'FILE'").await?;
                }
                let sql = if on {
                    "SET GLOBAL general_log = 1"
                } else {
                    "SET GLOBAL general_log = 0"
                };
                conn.execute(sql).await?;
            }
        }
        // Backends pick up a reload between statements; give them a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    }

    /// A function returning the current end of the log file.
    pub fn offset_reader(&self) -> impl Fn() -> u64 + Send + 'static {
        let file = self.file.clone();
        move || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0)
    }

    /// Statements logged after `offset`.
    pub async fn count_since(&self, offset: u64) -> Result<u64> {
        // The servers write their logs asynchronously to us.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let bytes = std::fs::read(&self.file)?;
        let start = usize::try_from(offset)?.min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[start..]);
        let postgres = matches!(self.admin, Admin::Postgres(_));
        Ok(text
            .lines()
            .filter(|line| is_statement(line, postgres))
            .count() as u64)
    }
}

/// Whether a log line records one statement a client sent.
fn is_statement(line: &str, postgres: bool) -> bool {
    if postgres {
        return line.contains("LOG:  statement: ") || line.contains("LOG:  execute ");
    }
    // General log: "[time\t]\t<thread> <Command>\t<argument>".
    line.split('\t').any(|field| {
        let mut words = field.split_whitespace();
        matches!((words.next(), words.next(), words.next()), (Some(id), Some("Query" | "Execute"), None)
            if id.chars().all(|c| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::is_statement;

    #[test]
    fn recognises_logged_statements() {
        assert!(is_statement(
            "2025-01-01 UTC [12] LOG:  statement: BEGIN",
            true
        ));
        assert!(is_statement(
            "2025-01-01 UTC [12] LOG:  execute sqlx_s_1: SELECT 1",
            true
        ));
        assert!(!is_statement(
            "2025-01-01 UTC [12] LOG:  checkpoint starting",
            true
        ));
        assert!(is_statement("\t\t     12 Query\tBEGIN", false));
        assert!(is_statement(
            "250101 10:00:00\t     12 Execute\tSELECT 1",
            false
        ));
        assert!(!is_statement("\t\t     12 Prepare\tSELECT ?", false));
        assert!(!is_statement(
            "\t\t     12 Connect\tsqlreg@localhost",
            false
        ));
    }
}
