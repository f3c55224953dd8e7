//! The one error type of sqlreg: every variant names the phase that failed and
//! carries what a person needs to fix it — never a password.

use std::fmt;
use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr, SqlErr};

use crate::redact;

/// Shorthand for `Result<T, sqlreg::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between a config file and a committed session.
///
/// URLs inside errors are always redacted (`postgresql://user:***@host/db`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration could not be read or did not have the expected shape.
    #[error("config error at `{path}`: {message}")]
    Config {
        /// Dotted key path of the offending value (or the file name).
        path: String,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },

    /// The database URL could not be built or parsed.
    #[error("invalid database url `{url}`: {message}")]
    Url {
        /// The URL as given, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        message: String,
    },

    /// The first connection (or creating the database) failed.
    #[error("cannot connect to {url}: {reason} ({detail})")]
    Connect {
        /// Redacted URL of the database.
        url: String,
        /// The class of failure, for programs that react to it.
        reason: ConnectFailure,
        /// The driver's or server's own message.
        detail: String,
    },

    /// No connection became free within `pool_timeout`.
    #[error(
        "timed out after {waited:?} waiting for a connection to {url} \
         (pool: size {size}, in use {in_use}, idle {idle}, waiting {waiting}, max {max}){}",
        .last_error.as_deref().map(|e| format!("; last connection error: {e}")).unwrap_or_default()
    )]
    PoolTimeout {
        /// Redacted URL of the database.
        url: String,
        /// How long the caller waited.
        waited: Duration,
        /// Open connections.
        size: u32,
        /// Connections checked out by sessions.
        in_use: u32,
        /// Open connections not checked out.
        idle: u32,
        /// Callers waiting for a connection, this one included.
        waiting: u32,
        /// `pool_size + max_overflow`.
        max: u32,
        /// Why new connections could not be opened, if that was the trouble.
        last_error: Option<String>,
    },

    /// Checking a connection out of the pool failed for a reason other than a timeout.
    #[error("cannot get a connection to {url}: {detail}")]
    Acquire {
        /// Redacted URL of the database.
        url: String,
        /// The driver's or server's own message.
        detail: String,
    },

    /// A statement failed.
    #[error("query failed: {0}")]
    Query(#[source] DbErr),

    /// Nothing was committed: the database refused the commit, or an earlier
    /// statement made it abort the transaction. The connection was released.
    #[error("commit failed: {0}")]
    Commit(#[source] DbErr),

    /// The retrying form ([`transaction`](crate::SqlConnectionRegistry::transaction))
    /// met a transient conflict on every attempt it was allowed; nothing was
    /// committed.
    #[error(
        "gave up after {attempts} attempt(s), each ended by a transient conflict; the last: {last}"
    )]
    Conflict {
        /// Attempts made, the first included.
        attempts: u32,
        /// The error that ended the last attempt.
        #[source]
        last: Box<Error>,
    },

    /// Part of the session's work was committed and the rest was not: a
    /// statement made the server commit the transaction by itself (MariaDB
    /// and MySQL commit implicitly before DDL such as `CREATE TABLE`), and
    /// the session then failed. What ran before `statement` is committed;
    /// what ran after it was rolled back. Never retried. Run such
    /// statements through [`connection()`](crate::SqlConnectionRegistry::connection)
    /// or in migrations, not inside a session whose work must stay whole.
    #[error(
        "partly committed: `{statement}` made the server commit the session's earlier work \
         (an implicit commit); what ran after it was rolled back{}",
        .cause.as_deref().map(|e| format!("; the session failed with: {e}")).unwrap_or_default()
    )]
    PartlyCommitted {
        /// The statement that committed implicitly, up to the object it
        /// names (never a value).
        statement: String,
        /// The failure after it, when sqlreg saw one (a statement's or the
        /// commit's); `None` when the body returned an error of its own.
        #[source]
        cause: Option<Box<Error>>,
    },

    /// A form of [`blocking::SqlConnectionRegistry`](crate::blocking::SqlConnectionRegistry)
    /// was called from async code (inside a tokio runtime), where waiting
    /// would block the runtime's thread.
    #[error(
        "blocking::SqlConnectionRegistry::{method} was called inside a tokio runtime; in async \
         code use sqlreg::SqlConnectionRegistry (its `.registry()`), or call it from \
         tokio::task::spawn_blocking"
    )]
    InsideRuntime {
        /// The method called.
        method: &'static str,
    },

    /// A row that had to exist did not (HTTP 404 in core-lib).
    #[error("not found: {0}")]
    NotFound(String),

    /// A unique constraint rejected the row (HTTP 409 in core-lib).
    #[error("duplicate: {0}")]
    Duplicate(String),

    /// No database of that name was registered (or, for the default, none
    /// is marked as the default and there is more than one).
    #[error("no database named `{name}` (known: {})", .known.join(", "))]
    UnknownDatabase {
        /// The name asked for.
        name: String,
        /// The names that are registered, in registration order.
        known: Vec<String>,
    },

    /// The registry was closed; it serves no new sessions.
    #[error("the registry for {url} is closed")]
    Closed {
        /// Redacted URL of the database.
        url: String,
    },

    /// Schema migrations could not be read, checked, applied or reverted.
    #[error("migration failed: {message}")]
    Migration {
        /// The migration at fault, when there is one.
        version: Option<i64>,
        /// Its file.
        file: Option<std::path::PathBuf>,
        /// What went wrong: the failing statement and the database's message,
        /// or how to recover.
        message: String,
    },
}

/// Why the first connection to a database failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The server rejected the user name or password.
    AuthenticationFailed,
    /// Nothing listens at the address (connection refused).
    Refused,
    /// The server did not answer within `connect_timeout`.
    TimedOut,
    /// The database does not exist (and `create_db` is off).
    UnknownDatabase,
    /// The host name could not be resolved.
    UnknownHost,
    /// The SQLite file could not be opened.
    CannotOpenFile,
    /// `create_db` could not create the database.
    CreateDatabaseFailed,
    /// `url.password_file` could not be read.
    PasswordFile,
    /// The [`PasswordProvider`](crate::PasswordProvider) failed or did not
    /// answer within `connect_timeout`; the detail carries its message.
    PasswordProvider,
    /// TLS could not be set up: the server's certificate is not trusted or
    /// does not name the host, or the server offers no TLS where the URL's
    /// `sslmode` / `ssl-mode` demands it; the detail says which.
    Tls,
    /// Anything else; the detail says what.
    Other,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AuthenticationFailed => "authentication failed (wrong user name or password)",
            Self::Refused => "connection refused (is the server running on that host and port?)",
            Self::TimedOut => "connect timed out (the server did not answer)",
            Self::UnknownDatabase => {
                "the database does not exist (set `create_db: true` to create it)"
            }
            Self::UnknownHost => "the host name could not be resolved",
            Self::CannotOpenFile => "the SQLite file cannot be opened",
            Self::CreateDatabaseFailed => "the database could not be created",
            Self::PasswordFile => "the password file cannot be read",
            Self::PasswordProvider => "the password provider failed",
            Self::Tls => "the TLS connection could not be set up",
            Self::Other => "connection failed",
        })
    }
}

impl Error {
    /// A config error at `path`.
    pub(crate) fn config(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Why connecting failed, for [`Error::Connect`]; `None` for every other error.
    #[must_use]
    pub fn connect_failure(&self) -> Option<ConnectFailure> {
        match self {
            Self::Connect { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// The HTTP status code core-lib's error handlers would answer with:
    /// 404 for [`Error::NotFound`], 409 for [`Error::Duplicate`], 503 when the
    /// pool is exhausted or closed or a conflict outlasted its retries (worth
    /// trying again later), 500 otherwise.
    #[must_use]
    pub fn status_code(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Duplicate(_) => 409,
            Self::PoolTimeout { .. } | Self::Closed { .. } | Self::Conflict { .. } => 503,
            _ => 500,
        }
    }
}

impl From<DbErr> for Error {
    /// Classifies a sea-orm error: "record not found" becomes [`Error::NotFound`],
    /// a unique violation [`Error::Duplicate`] (on every backend), anything else
    /// [`Error::Query`].
    fn from(err: DbErr) -> Self {
        if let DbErr::RecordNotFound(what) = &err {
            return Self::NotFound(what.clone());
        }
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(message)) => {
                Self::Duplicate(redact::duplicate_entry(&message))
            }
            _ => Self::Query(err),
        }
    }
}

impl From<sqlx::Error> for Error {
    /// A raw sqlx error from a statement run through [`Session::sqlx`](crate::Session::sqlx),
    /// classified like a sea-orm one.
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => Self::NotFound("no row returned".into()),
            other => DbErr::Query(RuntimeErr::SqlxError(other.into())).into(),
        }
    }
}

/// Turns a missing row into [`Error::NotFound`], like core-lib's `NotFoundErrorHandler`.
///
/// ```
/// use sqlreg::OrNotFound;
/// let missing: Option<u32> = None;
/// let err = missing.or_not_found(format_args!("user {}", 7)).unwrap_err();
/// assert_eq!(err.status_code(), 404);
/// assert_eq!(err.to_string(), "not found: user 7");
/// ```
pub trait OrNotFound<T> {
    /// `Some(v)` → `Ok(v)`; `None` → `Err(Error::NotFound(what))`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] naming `what` when there is no value.
    fn or_not_found(self, what: impl fmt::Display) -> Result<T>;
}

impl<T> OrNotFound<T> for Option<T> {
    fn or_not_found(self, what: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| Error::NotFound(what.to_string()))
    }
}
