//! What a failed statement means beyond itself: whether the connection is
//! gone, whether the server aborted the transaction around it, and whether
//! running the whole transaction again may succeed (a transient conflict).
//!
//! Each backend's codes live in its own file; these functions try each
//! backend's error type in turn, so an error can be classified without
//! knowing which backend produced it (as [`Error::is_transient`](crate::Error::is_transient) must).

use super::{mysql, postgres, sqlite};

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
        sqlx::Error::Database(db) => {
            postgres::is_fatal(db.as_ref()) || mysql::is_fatal(db.as_ref())
        }
        _ => false,
    }
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
    postgres::is_conflict(db) || mysql::is_conflict(db) || sqlite::is_busy(db)
}

/// Whether `err` is SQLite's "database is locked", in any of its forms.
pub(crate) fn is_busy(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if sqlite::is_busy(db.as_ref()))
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
