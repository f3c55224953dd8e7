//! Connect-time logic shared by every backend: the fail-fast first
//! connection, error classification, building the pools and statement logging.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use log::LevelFilter;
use sqlx::{ConnectOptions, Connection, Database, Executor};

use super::{Pools, engine, tls};
use crate::config::DbConfig;
use crate::credentials::PasswordSource;
use crate::error::{ConnectFailure, Error, Result};
use crate::pool::{ConnectError, ConnectionPool, Explain, Fresh, Refresh, Setup};
use crate::replication::LastWrite;
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
    if tls::is_tls_failure(err) {
        return ConnectFailure::Tls;
    }
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
        detail: detail(url, err),
    }
}

/// The driver's message on a failed connect, password removed, with a
/// hint where the cause is known: a connection pooler refuses the startup
/// `options` sqlreg sends on a direct PostgreSQL connection; TLS could not
/// be set up (see `tls::hint`).
fn detail(url: &DbUrl, err: &sqlx::Error) -> String {
    let message = redact(url, &err.to_string());
    if let Some(hint) = tls::hint(url, err) {
        format!("{message}; {}", redact(url, &hint))
    } else if message.contains("unsupported startup parameter") {
        format!(
            "{message} (a connection pooler such as PgBouncer is in the way: set \
             `session.pooler: transaction`, or `session` for a pooler in session mode)"
        )
    } else {
        message
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

/// How one pool opens its connections: the connect options, then SQL run on
/// every new connection (a backend's per-session settings).
pub(super) struct Opening<DB: Database> {
    pub(super) options: <DB::Connection as Connection>::Options,
    pub(super) setup: Option<String>,
    /// Whether statements outside a transaction may write on a new
    /// connection (see `Conn::writes_by_default`).
    pub(super) writes_by_default: bool,
    /// Behind a transaction pooler: see `Fresh::transaction_settings`.
    pub(super) transaction_settings: Option<String>,
    /// With `url.password_file` or a password provider: where each new
    /// connection's password comes from.
    pub(super) password: Option<Rotating<DB>>,
}

impl<DB: Database> Opening<DB> {
    /// Connections opened with `options` alone, writable by default.
    pub(super) fn new(options: <DB::Connection as Connection>::Options) -> Self {
        Self {
            options,
            setup: None,
            writes_by_default: true,
            transaction_settings: None,
            password: None,
        }
    }
}

/// The pools of one database: sqlreg's pool for sessions and, when given
/// its opening, the engine's sqlx pool, whose releases count in `writes`.
pub(super) fn pools<DB: Database>(
    sessions: Opening<DB>,
    engine: Option<Opening<DB>>,
    url: &DbUrl,
    config: &DbConfig,
    counters: Arc<Counters>,
    classify: ClassifyDatabaseError,
    writes: Option<Arc<LastWrite>>,
) -> Pools<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let url = url.clone();
    let explain: Explain = Box::new(move |err| ConnectError {
        reason: failure(err, classify),
        detail: detail(&url, err),
    });
    let engine = engine.map(|engine| {
        engine::engine_pool(
            engine.options,
            config,
            Arc::clone(&counters),
            engine.setup,
            writes,
        )
    });
    let refresh = sessions
        .password
        .map(|password| password.refresh(engine.clone()));
    let sessions = ConnectionPool::new(
        sessions.options,
        sessions.setup.map(setup_hook::<DB>),
        Fresh {
            writes_by_default: sessions.writes_by_default,
            transaction_settings: sessions.transaction_settings.map(Arc::from),
        },
        refresh,
        explain,
        &config.session,
        counters,
    );
    Pools { sessions, engine }
}

/// A backend's connect options with another password.
pub(super) type SetPassword<DB> = fn(
    <<DB as Database>::Connection as Connection>::Options,
    &str,
) -> <<DB as Database>::Connection as Connection>::Options;

/// Where each new connection's password comes from, and how it is set on
/// a backend's connect options.
pub(super) struct Rotating<DB: Database> {
    source: PasswordSource,
    set: SetPassword<DB>,
}

/// With `url.password_file` or a password provider that serves `url`: the
/// password asked again for each new connection of the sessions' pool, set
/// on its options with `set`.
pub(super) fn rotating<DB: Database>(
    url: &DbUrl,
    config: &DbConfig,
    set: SetPassword<DB>,
) -> Option<Rotating<DB>> {
    PasswordSource::of(url, config).map(|source| Rotating { source, set })
}

impl<DB: Database> Rotating<DB> {
    /// The sessions' pool's refresh. Each password it gets also becomes
    /// the one the `engine` pool opens its next connections with: sqlx's
    /// pool cannot ask for one per connection.
    fn refresh(self, engine: Option<sqlx::Pool<DB>>) -> Refresh<DB> {
        let Self { source, set } = self;
        Box::new(move |options| {
            let (source, options, engine) = (source.clone(), options.clone(), engine.clone());
            Box::pin(async move {
                let password = source.password().await.map_err(|err| match err {
                    Error::Connect { reason, detail, .. } => ConnectError { reason, detail },
                    other => ConnectError {
                        reason: ConnectFailure::Other,
                        detail: other.to_string(),
                    },
                })?;
                if let Some(engine) = engine {
                    engine.set_connect_options(set((*engine.connect_options()).clone(), &password));
                }
                Ok(set(options, &password))
            })
        })
    }
}

/// Runs `sql` on a new connection.
fn setup_hook<DB: Database>(sql: String) -> Setup<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    Box::new(move |conn| {
        let sql = sql.clone();
        Box::pin(async move {
            conn.execute(sqlx::AssertSqlSafe(sql)).await?;
            Ok(())
        })
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
