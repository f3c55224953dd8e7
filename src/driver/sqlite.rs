//! SQLite: a file (created when `create_db` allows) or a private in-memory
//! database, with WAL, `busy_timeout` and foreign keys on every connection.

use std::str::FromStr;
use std::sync::Arc;

use sea_orm::{Statement, Value, Values};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Executor, SqlStr, Sqlite};

use super::conflict::{Aborted, sqlite_primary_code};
use super::connect::{self, MemoryDatabase, Opening};
use super::{Connecting, Opened, Pool};
use crate::config::{DbConfig, Isolation};
use crate::error::{ConnectFailure, Error, Result};
use crate::replication::LastWrite;
use crate::stats::Counters;
use crate::url::{DbUrl, SqliteTarget};

/// SQLite's result code for "unable to open database file".
const SQLITE_CANTOPEN: &str = "14";

/// SQLite's primary result code for a failed constraint.
const SQLITE_CONSTRAINT: i32 = 19;

pub(super) async fn open(
    url: &DbUrl,
    config: &DbConfig,
    counters: Arc<Counters>,
    connecting: Connecting,
    writes: Option<Arc<LastWrite>>,
) -> Result<Opened> {
    let (options, memory) = connect_options(url, config)?;
    // SQLite creates the file itself (create_if_missing), so there is nothing
    // to create on a server.
    if connecting == Connecting::Eagerly {
        connect::verify::<Sqlite>(&options, url, config, classify, async || Ok(())).await?;
    }
    // SQLite does not enforce read-only access: nothing to change.
    let sessions = Opening::new(options.clone());
    // Only the server the registry starts on wraps its engine.
    let engine = (connecting == Connecting::Eagerly).then(|| Opening::new(options));
    let pools = connect::pools(sessions, engine, url, config, counters, classify, writes);
    Ok(Opened {
        pool: Pool::Sqlite(pools),
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

/// `BEGIN IMMEDIATE` for every transaction that may write: it takes the write
/// lock up front, waiting up to `busy_timeout`, instead of beginning deferred
/// and failing at once ("database is locked", `SQLITE_BUSY_SNAPSHOT`) when a
/// read lock cannot be upgraded after another writer committed. Read-only
/// transactions begin deferred, so readers never queue behind writers.
/// Isolation needs no statement: SQLite transactions are always serializable.
pub(super) fn begin_statement(read_only: bool) -> Option<SqlStr> {
    (!read_only).then(|| sqlx::SqlSafeStr::into_sql_str("BEGIN IMMEDIATE"))
}

/// Whether a read-only session may run its statements without a
/// transaction: SQLite transactions are serializable, so only when the
/// session asked for no more than READ COMMITTED (each statement then sees
/// its own snapshot, as it would under that level).
pub(super) fn reads_without_transaction(isolation: Option<Isolation>) -> bool {
    isolation == Some(Isolation::ReadCommitted)
}

/// Out of memory, interrupted, I/O error and disk full may roll the whole
/// transaction back automatically; treat them as if they did. A
/// constraint failure whose conflict resolution is ROLLBACK (`INSERT OR
/// ROLLBACK`, a trigger's `RAISE(ROLLBACK, ..)`) ended the transaction too,
/// where the default (ABORT) undid the statement alone: the error does not
/// tell them apart, so the connection is asked. `BEGIN` is refused inside a
/// transaction; outside one it begins a transaction that the session's
/// rollback ends. Only that rare error costs the extra step.
pub(super) async fn aborts_transaction(conn: &mut SqliteConnection, err: &sqlx::Error) -> Aborted {
    let sqlx::Error::Database(db) = err else {
        return Aborted::No;
    };
    match sqlite_primary_code(db.as_ref()) {
        Some(7 | 9 | 10 | 13) => Aborted::Whole,
        Some(SQLITE_CONSTRAINT) => match conn.execute("BEGIN").await {
            Ok(_) => Aborted::Whole,
            Err(_) => Aborted::No,
        },
        _ => Aborted::No,
    }
}

/// `stmt` with the integer bound to its LIMIT written into its text, where
/// that leaves its meaning alone. SQLite plans a statement around the
/// integer bound to its LIMIT, and so parses and plans a cached statement
/// again every time that parameter is bound: sea-orm's `.one()` (`LIMIT ?`
/// bound to 1) paid that at every run, about 40 k instructions, half of an
/// entity read session. A LIMIT in the text is a constant, and the plan
/// stays cached (one statement per LIMIT value, which a program has few
/// of; OFFSET stays bound: it does not re-plan). Only where the LIMIT's
/// value is certain: the text ends in ` LIMIT ?` or ` LIMIT ? OFFSET ?` and
/// holds exactly one `?` per value (a `?` in a literal, a comment or a name
/// breaks the count), so its last `?`s are its last values.
pub(super) fn limit_in_text(stmt: &Statement) -> Option<Statement> {
    let values = &stmt.values.as_ref()?.0;
    let sql = stmt.sql.as_str();
    let (head, bound_after) = match sql.strip_suffix(" LIMIT ?") {
        Some(head) => (head, 0),
        None => (sql.strip_suffix(" LIMIT ? OFFSET ?")?, 1),
    };
    if sql.bytes().filter(|&byte| byte == b'?').count() != values.len() {
        return None;
    }
    let at = values.len().checked_sub(1 + bound_after)?;
    let limit = non_negative_integer(&values[at])?;
    let offset = if bound_after == 1 { " OFFSET ?" } else { "" };
    let mut values = values.clone();
    values.remove(at);
    Some(Statement {
        sql: format!("{head} LIMIT {limit}{offset}"),
        values: Some(Values(values)),
        db_backend: stmt.db_backend,
    })
}

fn non_negative_integer(value: &Value) -> Option<u64> {
    let signed = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    match *value {
        Value::TinyInt(v) => signed(v.map(i64::from)),
        Value::SmallInt(v) => signed(v.map(i64::from)),
        Value::Int(v) => signed(v.map(i64::from)),
        Value::BigInt(v) => signed(v),
        Value::TinyUnsigned(v) => v.map(u64::from),
        Value::SmallUnsigned(v) => v.map(u64::from),
        Value::Unsigned(v) => v.map(u64::from),
        Value::BigUnsigned(v) => v,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, Statement, Value};

    use super::limit_in_text;

    fn statement(sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
    }

    #[test]
    fn a_bound_limit_is_written_into_the_text() {
        let one = statement(
            r#"SELECT "t"."id" FROM "t" WHERE "t"."id" = ? LIMIT ?"#,
            vec![7.into(), 1u64.into()],
        );
        let planned = limit_in_text(&one).expect("rewritten");
        assert_eq!(
            planned.sql,
            r#"SELECT "t"."id" FROM "t" WHERE "t"."id" = ? LIMIT 1"#
        );
        assert_eq!(planned.values.unwrap().0, vec![Value::from(7)]);
    }

    #[test]
    fn the_offset_stays_bound() {
        let page = statement(
            "SELECT id FROM t WHERE a = ? LIMIT ? OFFSET ?",
            vec!["x".into(), 20i64.into(), 40i64.into()],
        );
        let planned = limit_in_text(&page).expect("rewritten");
        assert_eq!(
            planned.sql,
            "SELECT id FROM t WHERE a = ? LIMIT 20 OFFSET ?"
        );
        assert_eq!(
            planned.values.unwrap().0,
            vec![Value::from("x"), Value::from(40i64)]
        );
    }

    #[test]
    fn a_limit_whose_value_is_not_certain_stays_bound() {
        let unchanged = [
            // A `?` in a literal: the count no longer says which value is the LIMIT's.
            statement(
                "SELECT '?' FROM t WHERE id = ? LIMIT ?",
                vec![1.into(), 2.into()],
            ),
            // The `LIMIT ?` is in a comment.
            statement("SELECT id FROM t WHERE id = ? -- LIMIT ?", vec![1.into()]),
            // Not an integer, or negative.
            statement("SELECT id FROM t LIMIT ?", vec!["1".into()]),
            statement("SELECT id FROM t LIMIT ?", vec![(-1i64).into()]),
            // No LIMIT at the end.
            statement("SELECT id FROM t WHERE id = ?", vec![1.into()]),
        ];
        for stmt in unchanged {
            assert!(limit_in_text(&stmt).is_none(), "{}", stmt.sql);
        }
    }
}
