//! Connect-time logic shared by every backend: the fail-fast first
//! connection, error classification, pool options and statement logging.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use log::LevelFilter;
use sqlx::pool::PoolOptions;
use sqlx::{ConnectOptions, Connection, Database, Executor};
use sqlx_core::transaction::TransactionManager;

use crate::config::DbConfig;
use crate::error::{ConnectFailure, Error, Result};
use crate::stats::Counters;
use crate::url::DbUrl;

/// How a backend names the database-level connect failures it recognises
/// (authentication, unknown database, …) from a server error.
pub(super) type ClassifyDatabaseError =
    fn(&dyn sqlx::error::DatabaseError) -> Option<ConnectFailure>;

/// Opens one connection within `connect_timeout`, creating the database first
/// when the server says it is missing and `create_db` is on, and closes it
/// again: its only job is to fail fast with the real cause.
pub(super) async fn verify<DB: Database>(
    options: &<DB::Connection as Connection>::Options,
    url: &DbUrl,
    config: &DbConfig,
    classify: ClassifyDatabaseError,
    create_database: impl AsyncFnOnce() -> Result<()>,
) -> Result<()> {
    let timeout = config.session.connect_timeout;
    let conn = match connect_once::<DB>(options, timeout).await {
        Err(err)
            if config.create_db && failure(&err, classify) == ConnectFailure::UnknownDatabase =>
        {
            tracing::info!(url = %url, "database does not exist; creating it (create_db: true)");
            create_database().await?;
            connect_once::<DB>(options, timeout).await
        }
        other => other,
    }
    .map_err(|err| connect_error(url, failure(&err, classify), &err))?;
    // A failed close only means the server went away after saying hello: the
    // pool will find out on its own.
    let _ = conn.close().await;
    Ok(())
}

/// One attempt with `pool`'s own connect options; see `Pool::probe`.
pub(super) async fn probe<DB: Database>(
    pool: &sqlx::Pool<DB>,
    url: &DbUrl,
    timeout: Duration,
    classify: ClassifyDatabaseError,
) -> Result<(), (ConnectFailure, String)> {
    match connect_once::<DB>(&pool.connect_options(), timeout).await {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(err) => Err((failure(&err, classify), redact(url, &err.to_string()))),
    }
}

/// One connection attempt, bounded by `timeout`.
pub(super) async fn connect_once<DB: Database>(
    options: &<DB::Connection as Connection>::Options,
    timeout: Duration,
) -> Result<DB::Connection, sqlx::Error> {
    tokio::time::timeout(timeout, options.connect())
        .await
        .unwrap_or_else(|_| Err(sqlx::Error::Io(ErrorKind::TimedOut.into())))
}

/// Sorts a connect error into the classes a person acts on differently.
pub(super) fn failure(err: &sqlx::Error, classify: ClassifyDatabaseError) -> ConnectFailure {
    match err {
        sqlx::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => ConnectFailure::Refused,
            ErrorKind::TimedOut => ConnectFailure::TimedOut,
            _ if io.to_string().contains("lookup address") => ConnectFailure::UnknownHost,
            _ => ConnectFailure::Other,
        },
        sqlx::Error::PoolTimedOut => ConnectFailure::TimedOut,
        sqlx::Error::Database(db) => classify(db.as_ref()).unwrap_or(ConnectFailure::Other),
        _ => ConnectFailure::Other,
    }
}

/// A connect error with the URL and the driver's message, password removed.
pub(super) fn connect_error(url: &DbUrl, reason: ConnectFailure, err: &sqlx::Error) -> Error {
    Error::Connect {
        url: url.redacted(),
        reason,
        detail: redact(url, &err.to_string()),
    }
}

/// Removes the password (as given or percent-encoded) from a driver
/// message, should a driver ever echo it.
pub(crate) fn redact(url: &DbUrl, message: &str) -> String {
    let encoded = url.encoded_password().unwrap_or_default();
    crate::redact::scrub_password(message, &[url.password().unwrap_or_default(), &encoded])
}

/// Statement logging as the config asks: every statement at INFO with its
/// duration when `log_queries` is on, slow ones at WARN always. sqlx never
/// logs bound parameter values.
pub(super) fn with_logging<O: ConnectOptions>(options: O, config: &DbConfig) -> O {
    let every = if config.log_queries {
        LevelFilter::Info
    } else {
        LevelFilter::Off
    };
    let options = options.log_statements(every);
    match config.session.slow_query {
        Some(threshold) => options.log_slow_statements(LevelFilter::Warn, threshold),
        None => options.log_slow_statements(LevelFilter::Off, Duration::MAX),
    }
}

/// What the pool's hooks report to.
pub(crate) struct PoolHooks {
    pub(crate) counters: Arc<Counters>,
}

/// The pool settings shared by all backends, straight from `session:`.
/// `setup` is SQL run on every new connection (a backend's per-session settings).
pub(super) fn pool_options<DB: Database>(
    config: &DbConfig,
    hooks: &PoolHooks,
    setup: Option<String>,
) -> PoolOptions<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let session = &config.session;
    let counters = Arc::clone(&hooks.counters);
    let mut options = PoolOptions::new();
    if let Some(recycle) = session.pool_recycle {
        // SQLAlchemy replaces an old connection at checkout; sqlx alone
        // only checks `max_lifetime` when a connection is released.
        options =
            options.before_acquire(move |_, meta| Box::pin(async move { Ok(meta.age < recycle) }));
    }
    options
        // QueuePool's ceiling: the steady pool plus the overflow.
        .max_connections(session.pool_size + session.max_overflow)
        // QueuePool opens connections on demand, never ahead of time.
        .min_connections(0)
        .acquire_timeout(session.pool_timeout)
        .max_lifetime(session.pool_recycle)
        .idle_timeout(session.idle_timeout)
        // A round trip per checkout: only when the config asks for pre-ping.
        .test_before_acquire(session.pool_pre_ping)
        .after_connect(move |conn: &mut DB::Connection, _| {
            counters.created();
            let setup = setup.clone();
            Box::pin(async move {
                if let Some(sql) = setup {
                    conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                }
                Ok(())
            })
        })
        // Last line of defence: a connection still inside a transaction is
        // closed, never handed to the next session.
        .after_release(|conn, _| {
            let clean = DB::TransactionManager::get_transaction_depth(conn) == 0;
            Box::pin(async move { Ok(clean) })
        })
}

/// The private file behind an in-memory SQLite database.
///
/// sqlx's `sqlite::memory:` shares one cache between connections, where a
/// reader waits on an uncommitted writer forever. A private WAL file in a
/// temporary directory gives every connection of the pool the same database
/// with proper locking, and disappears with the registry.
pub(crate) struct MemoryDatabase {
    dir: tempfile::TempDir,
}

impl MemoryDatabase {
    /// Creates the temporary directory that will hold the database file.
    pub(super) fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sqlreg-memory-")
            .tempdir()
            .map_err(|err| Error::Connect {
                url: "sqlite://".into(),
                reason: ConnectFailure::CannotOpenFile,
                detail: format!("cannot create a temporary directory: {err}"),
            })?;
        Ok(Self { dir })
    }

    /// The database file inside the temporary directory.
    pub(super) fn path(&self) -> PathBuf {
        self.dir.path().join("memory.db")
    }
}
