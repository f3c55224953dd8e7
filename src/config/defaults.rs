//! Every default of a `db` section in one place, each with the reason for it
//! (the first five are core-lib's / SQLAlchemy's, so existing files behave
//! the same).

use std::time::Duration;

use super::pooler::Pooler;
use super::transaction::{Backoff, Isolation, RetryConfig};
use super::{DbConfig, Fallback, RoutingConfig, SessionConfig, SqliteOptions};
use crate::url::UrlConfig;

/// Statements can carry personal data: log them only when asked.
pub(crate) const LOG_QUERIES: bool = false;
/// core-lib creates a missing database by default; first runs just work.
pub(crate) const CREATE_DB: bool = true;
/// SQLAlchemy's `pool_size`: enough for a small service, cheap on the server.
pub(crate) const POOL_SIZE: u32 = 5;
/// SQLAlchemy's `max_overflow`: absorbs bursts, closed again when idle.
pub(crate) const MAX_OVERFLOW: u32 = 10;
/// SQLAlchemy's `pool_timeout`: long enough for a burst, short enough to fail visibly.
pub(crate) const POOL_TIMEOUT: Duration = Duration::from_secs(30);
/// core-lib's `pool_recycle`: one hour stays under MySQL's and proxies' idle cut-offs.
pub(crate) const POOL_RECYCLE: Option<Duration> = Some(Duration::from_secs(3600));
/// SQLAlchemy's `pool_pre_ping`: a round trip per checkout is opt-in.
pub(crate) const POOL_PRE_PING: bool = false;
/// No idle-only pre-ping unless asked: it is a round trip where a session
/// may not need one.
pub(crate) const PRE_PING_IDLE: Option<Duration> = None;
/// A server that has not answered in 10 s is down or unreachable, not slow.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Overflow connections idle for 10 minutes are closed (sqlx's default).
pub(crate) const IDLE_TIMEOUT: Option<Duration> = Some(Duration::from_secs(600));
/// No server-side limit unless asked: long reports and migrations are legitimate.
pub(crate) const STATEMENT_TIMEOUT: Option<Duration> = None;
/// A statement over 1 s is worth a WARN line even with `log_queries` off.
pub(crate) const SLOW_QUERY: Option<Duration> = Some(Duration::from_secs(1));
/// Long sessions are legitimate (batch jobs): leak warnings are opt-in.
pub(crate) const LEAK_WARNING: Option<Duration> = None;
/// In-flight requests usually finish within seconds; a shutdown should not hang on a stuck one.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Each backend's own isolation level unless asked: what its users already know.
pub(crate) const ISOLATION: Option<Isolation> = None;
/// Three attempts ride out a burst of conflicts without hiding a hot spot.
pub(crate) const RETRY_ATTEMPTS: u32 = 3;
/// A conflicting transaction usually finishes within milliseconds.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Long enough to let a busy row cool down, short enough for a request.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// WAL lets readers proceed while one connection writes.
pub(crate) const JOURNAL_MODE: &str = "wal";
/// Concurrent writers wait up to 5 s for the lock instead of failing with "database is locked".
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// `normal` is durable under WAL except for the last commits on power loss, and much faster than `full`.
pub(crate) const SYNCHRONOUS: &str = "normal";
/// SQLite ignores foreign keys unless told: match what PostgreSQL and MySQL enforce.
pub(crate) const FOREIGN_KEYS: bool = true;

/// Seconds, not minutes: a read that is 5 s old is what most pages can show;
/// a replica further behind is usually stuck, not slow.
pub(crate) const REPLICA_MAX_LAG: Duration = Duration::from_secs(5);
/// Users expect to see what they just saved (Rails and Django do the same by
/// default): a read after a committed write waits for, or skips, a replica
/// that has not replayed it.
pub(crate) const READ_YOUR_WRITES: bool = true;
/// Replicas exist to take reads off the primary; it serves them only when asked.
pub(crate) const PRIMARY_READS: bool = false;
/// A slower read beats a failed one: the primary always has the data.
pub(crate) const FALLBACK: Fallback = Fallback::Primary;

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            replica_max_lag: REPLICA_MAX_LAG,
            read_your_writes: READ_YOUR_WRITES,
            primary_reads: PRIMARY_READS,
            fallback: FALLBACK,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            pool_size: POOL_SIZE,
            max_overflow: MAX_OVERFLOW,
            pool_timeout: POOL_TIMEOUT,
            pool_recycle: POOL_RECYCLE,
            pool_pre_ping: POOL_PRE_PING,
            pre_ping_idle: PRE_PING_IDLE,
            connect_timeout: CONNECT_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            statement_timeout: STATEMENT_TIMEOUT,
            slow_query: SLOW_QUERY,
            leak_warning: LEAK_WARNING,
            close_timeout: CLOSE_TIMEOUT,
            isolation: ISOLATION,
            retry: RetryConfig::default(),
            pooler: Pooler::default(),
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: RETRY_ATTEMPTS,
            backoff: Backoff::default(),
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: BACKOFF_MIN,
            max: BACKOFF_MAX,
        }
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            journal_mode: JOURNAL_MODE.to_owned(),
            busy_timeout: BUSY_TIMEOUT,
            synchronous: SYNCHRONOUS.to_owned(),
            foreign_keys: FOREIGN_KEYS,
        }
    }
}

impl DbConfig {
    /// A section with this URL and every other key at its default.
    #[must_use]
    pub fn new(url: impl Into<UrlConfig>) -> Self {
        Self {
            log_queries: LOG_QUERIES,
            create_db: CREATE_DB,
            session: SessionConfig::default(),
            url: url.into(),
            replicas: Vec::new(),
            routing: RoutingConfig::default(),
            sqlite: SqliteOptions::default(),
            migrations: None,
            password_provider: None,
        }
    }
}

/// sqlx's and sea-orm's tools look for migrations in `./migrations`.
pub(crate) const MIGRATIONS_PATH: &str = "migrations";
/// Changing a schema on startup is a deployment decision: opt-in.
pub(crate) const MIGRATIONS_AUTO: bool = false;

/// `#[serde(default = ..)]` needs functions.
pub(crate) fn log_queries() -> bool {
    LOG_QUERIES
}

/// `#[serde(default = ..)]` needs functions.
pub(crate) fn create_db() -> bool {
    CREATE_DB
}
