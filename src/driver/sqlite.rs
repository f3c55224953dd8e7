//! SQLite: a file (created when `create_db` allows) or a private in-memory
//! database, with WAL, `busy_timeout` and foreign keys on every connection.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{SqlStr, Sqlite};

use super::connect::{self, MemoryDatabase, PoolHooks};
use super::{Opened, Pool};
use crate::config::DbConfig;
use crate::error::{ConnectFailure, Error, Result};
use crate::url::{DbUrl, SqliteTarget};

/// SQLite's result code for "unable to open database file".
const SQLITE_CANTOPEN: &str = "14";

pub(super) async fn open(url: &DbUrl, config: &DbConfig, hooks: &PoolHooks) -> Result<Opened> {
    let (options, memory) = connect_options(url, config)?;
    // SQLite creates the file itself (create_if_missing), so there is nothing
    // to create on a server.
    connect::verify::<Sqlite>(&options, url, config, classify, async || Ok(())).await?;
    let pool = connect::pool_options::<Sqlite>(config, hooks, None).connect_lazy_with(options);
    Ok(Opened {
        pool: Pool::Sqlite(pool),
        memory,
    })
}

/// The per-connection settings: sqlx applies them as pragmas on every new
/// connection of the pool, not only the first.
fn connect_options(
    url: &DbUrl,
    config: &DbConfig,
) -> Result<(SqliteConnectOptions, Option<MemoryDatabase>)> {
    let sqlite = &config.sqlite;
    let setting = |key: &str, message: String| Error::config(format!("sqlite.{key}"), message);
    let journal_mode = SqliteJournalMode::from_str(&sqlite.journal_mode)
        .map_err(|err| setting("journal_mode", err.to_string()))?;
    let synchronous = SqliteSynchronous::from_str(&sqlite.synchronous)
        .map_err(|err| setting("synchronous", err.to_string()))?;
    let base = SqliteConnectOptions::new()
        .busy_timeout(sqlite.busy_timeout)
        .foreign_keys(sqlite.foreign_keys);
    let (options, memory) = match url.sqlite_target() {
        Some(SqliteTarget::File(path)) => {
            let read_only = url.query().iter().any(|(k, v)| k == "mode" && v == "ro");
            let options = base
                .filename(path)
                .create_if_missing(config.create_db)
                .read_only(read_only)
                .journal_mode(journal_mode)
                .synchronous(synchronous);
            (options, None)
        }
        _ => {
            let memory = MemoryDatabase::new()?;
            // Nothing survives the registry, so durability buys nothing here.
            let options = base
                .filename(memory.path())
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Off);
            (options, Some(memory))
        }
    };
    Ok((connect::with_logging(options, config), memory))
}

pub(super) fn classify(err: &dyn sqlx::error::DatabaseError) -> Option<ConnectFailure> {
    (err.code().as_deref() == Some(SQLITE_CANTOPEN)).then_some(ConnectFailure::CannotOpenFile)
}

/// `BEGIN IMMEDIATE` for a transaction whose first statement writes: it takes
/// the write lock up front, waiting up to `busy_timeout`, instead of failing
/// with "database is locked" when a read lock cannot be upgraded later.
/// Reads and read-only sessions begin deferred so readers stay concurrent
/// under WAL.
pub(super) fn begin_statement(
    first_sql: Option<&str>,
    read_only: bool,
    outermost: bool,
) -> Option<SqlStr> {
    let reads = read_only || first_sql.is_some_and(is_read);
    (outermost && !reads).then(|| sqlx::SqlSafeStr::into_sql_str("BEGIN IMMEDIATE"))
}

/// Whether a statement only reads (its first keyword is SELECT, VALUES,
/// EXPLAIN or PRAGMA, or a WITH that ends in a SELECT).
fn is_read(sql: &str) -> bool {
    let first_word = |s: &str| {
        s.trim_start_matches(|c: char| c.is_whitespace() || c == '(')
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase()
    };
    match first_word(sql).as_str() {
        "SELECT" | "VALUES" | "EXPLAIN" | "PRAGMA" => true,
        "WITH" => {
            let upper = sql.to_ascii_uppercase();
            !["INSERT", "UPDATE", "DELETE", "REPLACE"]
                .iter()
                .any(|word| upper.contains(word))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_read;

    #[test]
    fn reads_and_writes_are_told_apart() {
        assert!(is_read("SELECT * FROM t"));
        assert!(is_read("  (select 1)"));
        assert!(is_read("WITH x AS (SELECT 1) SELECT * FROM x"));
        assert!(!is_read(
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"
        ));
        assert!(!is_read("INSERT INTO t VALUES (1)"));
        assert!(!is_read("update t set a = 1"));
        assert!(!is_read("CREATE TABLE t (a int)"));
    }
}
