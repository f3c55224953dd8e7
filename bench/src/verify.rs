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

    /// Statements logged after `offset`, in order.
    pub async fn statements_since(&self, offset: u64) -> Result<Vec<Logged>> {
        // The servers write their logs asynchronously to us.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let bytes = std::fs::read(&self.file)?;
        let start = usize::try_from(offset)?.min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[start..]);
        let postgres = matches!(self.admin, Admin::Postgres(_));
        Ok(text
            .lines()
            .filter_map(|line| statement(line, postgres))
            .collect())
    }
}

/// One statement a client sent, as the server logged it.
#[derive(Debug, PartialEq, Eq)]
pub struct Logged {
    /// The connection that sent it (PostgreSQL's backend pid, MariaDB's thread id).
    pub connection: String,
    /// Its text (placeholders on PostgreSQL, values in MariaDB's `Execute`).
    pub text: String,
}

/// The statement a log line records, if it records one.
fn statement(line: &str, postgres: bool) -> Option<Logged> {
    if postgres {
        // "<time> UTC [<pid>] LOG:  statement: <text>" or "… LOG:  execute <name>: <text>".
        let connection = line.split_once('[')?.1.split_once(']')?.0.to_owned();
        let text = if let Some((_, text)) = line.split_once("LOG:  statement: ") {
            text
        } else {
            line.split_once("LOG:  execute ")?.1.split_once(": ")?.1
        };
        return Some(Logged {
            connection,
            text: text.to_owned(),
        });
    }
    // General log: "[time\t]\t<thread> <Command>\t<argument>".
    let fields: Vec<&str> = line.split('\t').collect();
    fields.iter().enumerate().find_map(|(i, field)| {
        let mut words = field.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(id), Some("Query" | "Execute"), None)
                if id.chars().all(|c| c.is_ascii_digit()) =>
            {
                Some(Logged {
                    connection: id.to_owned(),
                    text: fields[i + 1..].join("\t"),
                })
            }
            _ => None,
        }
    })
}

/// The statements of one session: the first `per_session` statements each
/// connection logged, the sequence most connections agree on (a connection
/// opened during the run may log its own setup first).
pub fn one_session(logged: &[Logged], per_session: usize) -> Option<Vec<String>> {
    let mut connections: Vec<(&str, Vec<&str>)> = Vec::new();
    for entry in logged {
        match connections.iter_mut().find(|(c, _)| *c == entry.connection) {
            Some((_, texts)) => texts.push(&entry.text),
            None => connections.push((&entry.connection, vec![&entry.text])),
        }
    }
    let firsts: Vec<&[&str]> = connections
        .iter()
        .filter(|(_, texts)| per_session > 0 && texts.len() >= per_session)
        .map(|(_, texts)| &texts[..per_session])
        .collect();
    let most = firsts
        .iter()
        .max_by_key(|seq| firsts.iter().filter(|other| other == seq).count())?;
    Some(most.iter().map(|t| (*t).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::{Logged, one_session, statement};

    fn is_statement(line: &str, postgres: bool) -> bool {
        statement(line, postgres).is_some()
    }

    #[test]
    fn reads_connection_and_text() {
        let line = "2025-01-01 00:00:00.000 UTC [4711] LOG:  execute sqlx_s_1: SELECT 1";
        assert_eq!(
            statement(line, true),
            Some(Logged {
                connection: "4711".into(),
                text: "SELECT 1".into()
            })
        );
        assert_eq!(
            statement(
                "250101 10:00:00\t     12 Query\tSTART TRANSACTION READ ONLY",
                false
            )
            .map(|l| (l.connection, l.text)),
            Some(("12".into(), "START TRANSACTION READ ONLY".into()))
        );
    }

    #[test]
    fn one_session_is_the_sequence_most_connections_start_with() {
        let log = |c: &str, t: &str| Logged {
            connection: c.into(),
            text: t.into(),
        };
        let logged = [
            log("1", "BEGIN"),
            log("2", "SET x"),
            log("1", "SELECT"),
            log("3", "BEGIN"),
            log("2", "BEGIN"),
            log("1", "COMMIT"),
            log("3", "SELECT"),
            log("2", "SELECT"),
            log("3", "COMMIT"),
        ];
        assert_eq!(
            one_session(&logged, 3),
            Some(vec!["BEGIN".into(), "SELECT".into(), "COMMIT".into()])
        );
        assert_eq!(one_session(&logged, 4), None);
    }

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
