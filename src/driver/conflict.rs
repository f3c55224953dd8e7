//! What a failed statement means beyond itself: whether the connection is
//! gone, whether the server aborted the transaction around it, and whether
//! running the whole transaction again may succeed (a transient conflict).
//!
//! These functions try each backend's error type in turn, so an error can be
//! classified without knowing which backend produced it (as
//! [`Error::is_transient`](crate::Error::is_transient) must). They need
//! nothing but sqlx, so the error type below every layer can ask them
//! without an arrow running back up; the backend files use them too.

use std::borrow::Cow;
use std::fmt;

use sea_orm::{DbErr, RuntimeErr};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::mysql::MySqlDatabaseError;
use sqlx::postgres::{PgDatabaseError, PgSeverity};
use sqlx::sqlite::SqliteError;

use crate::error::Error;

impl Error {
    /// Whether the whole session, run again, may succeed: the database ended
    /// it over a conflict with a concurrent transaction — a serialization
    /// failure or deadlock (PostgreSQL 40001 / 40P01), a deadlock, lock wait
    /// timeout or changed record (MariaDB 1213 / 1205 / 1020; Galera's
    /// certification failures and brute-force aborts are 1213s), a database
    /// still locked after `busy_timeout` (SQLite) — and nothing was committed.
    /// [`transaction`](crate::SqlConnectionRegistry::transaction) retries
    /// exactly these (and a connection lost before COMMIT); callers of
    /// [`session`](crate::SqlConnectionRegistry::session) can build their own
    /// policy on it. A lost connection is not transient here: outside a
    /// transaction, the statement it cut off may have committed.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Query(err) | Self::Commit(err) => sqlx_error(err).is_some_and(is_conflict),
            Self::Conflict { .. } => true,
            _ => false,
        }
    }
}

/// The sqlx error a sea-orm error carries, if any.
fn sqlx_error(err: &DbErr) -> Option<&sqlx::Error> {
    match err {
        DbErr::Query(RuntimeErr::SqlxError(inner))
        | DbErr::Exec(RuntimeErr::SqlxError(inner))
        | DbErr::Conn(RuntimeErr::SqlxError(inner)) => Some(inner),
        _ => None,
    }
}

/// What a failed statement did to the transaction it ran in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aborted {
    /// Nothing: the statement failed alone and the transaction goes on.
    No,
    /// The server refuses every further statement until the innermost
    /// savepoint is rolled back, and turns COMMIT into ROLLBACK (PostgreSQL).
    UntilSavepoint,
    /// The server has rolled the whole transaction back; later statements
    /// would run outside any transaction (MariaDB after a deadlock).
    Whole,
}

/// Whether `err` means the connection is unusable (lost, killed, timed out
/// mid-statement, server shutting down) rather than one failed statement.
pub(crate) fn is_fatal(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => postgres_fatal(db.as_ref()) || mysql_fatal(db.as_ref()),
        _ => false,
    }
}

/// Whether `err` refuses a write because the server only reads now:
/// PostgreSQL 25006 (a standby, or a primary demoted to one), and 0A000
/// "cannot set transaction read-write mode during recovery" (a standby's
/// answer to `BEGIN READ WRITE`); MySQL / MariaDB 1290 / 1836
/// (`--read-only`) and 1792 (read-only transaction).
/// In a session that meant to write, that says the host is no longer the
/// primary; in a read session it is only the caller's write refused.
pub(crate) fn refuses_writes(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    let db = db.as_ref();
    match postgres_code(db) {
        Some("25006") => return true,
        Some("0A000") => return db.message().contains("during recovery"),
        _ => {}
    }
    mysql_number(db).is_some_and(|number| matches!(number, 1290 | 1836 | 1792))
}

/// Whether `err` is a conflict with a concurrent transaction that the server
/// resolved by failing this one: a serialization failure or deadlock
/// (PostgreSQL 40001 / 40P01), a deadlock, lock wait timeout or changed record
/// (MariaDB 1213 / 1205 / 1020), a busy database (SQLite). Running the whole
/// transaction again may succeed.
pub(crate) fn is_conflict(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    let db = db.as_ref();
    postgres_conflict(db) || mysql_conflict(db) || sqlite_busy(db)
}

/// `err`, worded for the person who can fix it: SQLite's "database is
/// locked" says the lock was not obtained within `sqlite.busy_timeout`;
/// PostgreSQL's "prepared statement … already exists / does not exist"
/// (42P05 / 26000) says a transaction pooler is in the way.
pub(crate) fn explain(err: sqlx::Error) -> sqlx::Error {
    match err {
        sqlx::Error::Database(db) if sqlite_busy(db.as_ref()) => {
            sqlx::Error::Database(Box::new(Explained::new(db, LOCK_NOT_OBTAINED)))
        }
        sqlx::Error::Database(db)
            if matches!(postgres_code(db.as_ref()), Some("42P05" | "26000")) =>
        {
            sqlx::Error::Database(Box::new(Explained::new(db, POOLER_IN_THE_WAY)))
        }
        other => other,
    }
}

const LOCK_NOT_OBTAINED: &str = "the lock was not obtained within `sqlite.busy_timeout`: raise \
                                 it, or keep write sessions shorter";

/// What a prepared statement that another client made or closed means.
const POOLER_IN_THE_WAY: &str = "a transaction pooler (PgBouncer, RDS Proxy, \
     Supavisor, PgCat) seems to be between sqlreg and the server: set `session.pooler: \
     transaction` (or `session` for a pooler in session mode)";

/// A database error with a hint added to its message; classified exactly
/// like the error it wraps.
#[derive(Debug)]
struct Explained {
    inner: Box<dyn DatabaseError>,
    message: String,
}

impl Explained {
    fn new(inner: Box<dyn DatabaseError>, hint: &str) -> Self {
        let message = format!("{} ({hint})", inner.message());
        Self { inner, message }
    }
}

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Explained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.inner.as_error())
    }
}

impl DatabaseError for Explained {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.inner.code()
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        self.inner.kind()
    }
}

/// A short name for what went wrong, for retry logs and error messages
/// (`serialization failure (40001)`); never a value from the statement.
pub(crate) fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            format!("{} (code {code})", db.message())
        }
        other if is_fatal(other) => "the connection was lost".to_owned(),
        other => other.to_string(),
    }
}

/// PostgreSQL's SQLSTATE, if `err` is a PostgreSQL error.
pub(super) fn postgres_code(err: &dyn DatabaseError) -> Option<&str> {
    unexplained(err)
        .try_downcast_ref::<PgDatabaseError>()
        .map(PgDatabaseError::code)
}

/// The driver's own error behind an [`Explained`] one.
fn unexplained(err: &dyn DatabaseError) -> &dyn DatabaseError {
    match err.try_downcast_ref::<Explained>() {
        Some(explained) => explained.inner.as_ref(),
        None => err,
    }
}

/// Every error of severity FATAL or PANIC ends the connection (the
/// server closes it: admin shutdown 57P01, crash 57P02, idle-session and
/// idle-in-transaction timeouts 57P05 / 25P03, recovery conflicts on a
/// standby, …), and so do connection exceptions (class 08) and the
/// shutdown / crash / cannot-connect codes 57P01–57P03 at any severity.
fn postgres_fatal(err: &dyn DatabaseError) -> bool {
    let Some(pg) = unexplained(err).try_downcast_ref::<PgDatabaseError>() else {
        return false;
    };
    let code = pg.code();
    matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)
        || code.starts_with("08")
        || matches!(code, "57P01" | "57P02" | "57P03")
}

/// A serialization failure (40001) or a detected deadlock (40P01): the
/// server rolled this transaction back in favour of a concurrent one.
fn postgres_conflict(err: &dyn DatabaseError) -> bool {
    postgres_code(err).is_some_and(|code| matches!(code, "40001" | "40P01"))
}

/// MySQL's / MariaDB's error number, if `err` is one of theirs.
pub(super) fn mysql_number(err: &dyn DatabaseError) -> Option<u16> {
    unexplained(err)
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number)
}

/// Server shutdown (1053), a Galera node not ready for clients (1047: cut
/// off from the cluster's primary component, joining, or shutting down),
/// connection killed (1927), gone away (2006), lost during query (2013)
/// and idle disconnect (4031) end the connection.
fn mysql_fatal(err: &dyn DatabaseError) -> bool {
    mysql_number(err)
        .is_some_and(|number| matches!(number, 1047 | 1053 | 1927 | 2006 | 2013 | 4031))
}

/// Deadlock (1213), lock wait timeout (1205) and MariaDB's snapshot check
/// under REPEATABLE READ, "record has changed since last read" (1020).
///
/// Galera reports its two conflicts as 1213 too, with InnoDB's own message
/// ("Deadlock found when trying to get lock"): a certification failure (this
/// node's write set lost to one another node committed first; the error
/// comes at COMMIT) and a brute-force abort (a replicated write set needed a
/// row this open transaction had locked; the error comes at its next
/// statement or COMMIT). Nothing was committed in either case, so both are
/// retried; only the servers' counters (`wsrep_local_cert_failures`,
/// `wsrep_local_bf_aborts`, `Innodb_deadlocks`) tell the three apart.
fn mysql_conflict(err: &dyn DatabaseError) -> bool {
    mysql_number(err).is_some_and(|number| matches!(number, 1213 | 1205 | 1020))
}

/// SQLite's primary result code: sqlx reports extended codes (517 is
/// `SQLITE_BUSY_SNAPSHOT`), whose low byte is the primary one.
pub(super) fn sqlite_primary_code(err: &dyn DatabaseError) -> Option<i32> {
    unexplained(err).try_downcast_ref::<SqliteError>()?;
    let code: i32 = err.code()?.parse().ok()?;
    Some(code & 0xff)
}

/// `SQLITE_BUSY` in any of its forms: the lock was not obtained within
/// `busy_timeout`.
fn sqlite_busy(err: &dyn DatabaseError) -> bool {
    sqlite_primary_code(err) == Some(5)
}
