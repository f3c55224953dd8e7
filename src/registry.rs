//! One database: its pool, its sea-orm engine, and the sessions it hands out
//! (core-lib's `SqlAlchemyConnectionRegistry`).

use std::panic::{AssertUnwindSafe, Location};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use futures_util::FutureExt;
use sea_orm::DatabaseConnection;

use crate::config::DbConfig;
use crate::driver::{self, Conn, MemoryDatabase, Pool};
use crate::error::{Error, Result};
use crate::schema::RegistryBuilder;
use crate::session::{Lease, Mode, Session};
use crate::url::DbUrl;

/// A connected database: a pool built from one `db` config section, handing
/// out [`Session`]s. Cheap to clone; clones share the pool.
///
/// ```no_run
/// # async fn run() -> sqlreg::Result<()> {
/// use sea_orm::ConnectionTrait;
///
/// let config = sqlreg::Config::from_yaml_file("config.yaml")?;
/// let db = sqlreg::SqlConnectionRegistry::connect(config.at("core_lib.db")?).await?;
/// // core-lib's `with db.get() as session:` — commits on Ok, rolls back on Err.
/// db.session(async |s| {
///     s.execute_unprepared("UPDATE users SET active = 1").await?;
///     Ok::<_, sqlreg::Error>(())
/// })
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlConnectionRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    engine: DatabaseConnection,
    url: DbUrl,
    config: DbConfig,
    waiting: AtomicU32,
    in_use: Arc<AtomicU32>,
    memory: Option<Arc<MemoryDatabase>>,
}

/// A snapshot of the pool, as [`SqlConnectionRegistry::stats`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open connections waiting in the pool (a connection on its way back
    /// from a session counts in neither `idle` nor `in_use`).
    pub idle: u32,
    /// Connections held by live sessions.
    pub in_use: u32,
    /// Callers waiting for a connection.
    pub waiting: u32,
    /// The most connections the pool opens (`pool_size + max_overflow`).
    pub max: u32,
}

impl std::fmt::Debug for SqlConnectionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlConnectionRegistry")
            .field("url", &self.inner.url)
            .field("stats", &self.stats())
            .finish()
    }
}

impl SqlConnectionRegistry {
    /// Connects to the database `config` describes, creating it first when
    /// `create_db` is on and it is missing. Fails fast with the real cause
    /// (wrong password, connection refused, unknown database).
    ///
    /// # Errors
    ///
    /// [`Error::Url`] for a URL that cannot be used, [`Error::Connect`] when
    /// the first connection or the database creation fails.
    pub async fn connect(config: DbConfig) -> Result<Self> {
        Self::builder(config).connect().await
    }

    /// Starts a registry whose `create_db` also creates the tables of the
    /// entities you register.
    pub fn builder(config: DbConfig) -> RegistryBuilder {
        RegistryBuilder::new(config)
    }

    /// Opens the pool; the builder then creates the registered tables.
    pub(crate) async fn open(config: DbConfig) -> Result<Self> {
        config.validate()?;
        let url = config.url.to_db_url()?;
        let opened = Pool::open(&url, &config).await?;
        tracing::info!(url = %url, pool_size = config.session.pool_size, "database connected");
        Ok(Self {
            inner: Arc::new(Inner {
                engine: opened.pool.database_connection(),
                pool: opened.pool,
                url,
                config,
                waiting: AtomicU32::new(0),
                in_use: Arc::default(),
                memory: opened.memory.map(Arc::new),
            }),
        })
    }

    /// The sea-orm connection over this registry's pool (core-lib's `engine()`),
    /// for queries outside a session; each statement commits on its own. The
    /// raw sqlx pool is reachable through it (`get_postgres_connection_pool()`
    /// and its twins).
    #[must_use]
    pub fn engine(&self) -> &DatabaseConnection {
        &self.inner.engine
    }

    /// The database URL (its `Display` hides the password).
    #[must_use]
    pub fn url(&self) -> &DbUrl {
        &self.inner.url
    }

    /// The configuration the registry was built from.
    #[must_use]
    pub fn config(&self) -> &DbConfig {
        &self.inner.config
    }

    /// A session: one pooled connection whose transaction begins with the
    /// first statement. End it with [`Session::commit`] or
    /// [`Session::rollback`]; dropped without either, it rolls back and warns
    /// with the location of this call.
    ///
    /// # Errors
    ///
    /// [`Error::PoolTimeout`] when no connection frees up within
    /// `pool_timeout`, [`Error::Closed`] after [`close`](Self::close),
    /// [`Error::Acquire`] when a new connection cannot be opened.
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<Session>> + Send {
        self.open_session(Mode::Transaction, Location::caller())
    }

    /// A pooled connection in autocommit mode (core-lib's `connection()`):
    /// every statement commits by itself. Dropping it returns it to the pool.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn connection(&self) -> impl Future<Output = Result<Session>> + Send {
        self.open_session(Mode::Autocommit, Location::caller())
    }

    /// Runs `body` in a session: commits when it returns `Ok`, rolls back when
    /// it returns `Err` or panics (the panic then continues), and always
    /// releases the connection. If the returned future is dropped midway, the
    /// transaction is rolled back before the connection is reused.
    ///
    /// # Errors
    ///
    /// `body`'s error, or an [`Error`] (converted into `E`) when no connection
    /// can be had or the commit fails.
    #[track_caller]
    pub fn session<T, E, F>(&self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        let opened_at = Location::caller();
        async move {
            let session = self.open_session(Mode::Transaction, opened_at).await?;
            let outcome = AssertUnwindSafe(body(&session)).catch_unwind().await;
            match outcome {
                Ok(Ok(value)) => {
                    session.commit().await?;
                    Ok(value)
                }
                Ok(Err(err)) => {
                    session.rollback().await;
                    Err(err)
                }
                Err(panic) => {
                    session.rollback().await;
                    std::panic::resume_unwind(panic)
                }
            }
        }
    }

    /// How many connections are open, idle, in use and awaited right now.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let pool = &self.inner.pool;
        PoolStats {
            size: pool.size(),
            idle: pool.num_idle(),
            in_use: self.inner.in_use.load(Ordering::Relaxed),
            waiting: self.inner.waiting.load(Ordering::Relaxed),
            max: pool.max_size(),
        }
    }

    /// Stops handing out sessions ([`Error::Closed`] from then on), waits for
    /// the sessions in flight to return their connections, and closes them all.
    pub async fn close(&self) {
        self.inner.pool.close().await;
        tracing::info!(url = %self.inner.url, "database closed");
    }

    async fn open_session(
        &self,
        mode: Mode,
        opened_at: &'static Location<'static>,
    ) -> Result<Session> {
        let conn = self.acquire().await?;
        Ok(Session::new(
            conn,
            self.inner.pool.db_backend(),
            mode,
            opened_at,
            Lease::take(&self.inner.in_use),
            self.inner.memory.clone(),
        ))
    }

    /// Checks a connection out, turning sqlx's errors into ones that say what
    /// the pool looked like.
    async fn acquire(&self) -> Result<Conn> {
        let started = Instant::now();
        let waiter = Waiter::enter(&self.inner.waiting);
        let acquired = self.inner.pool.acquire().await;
        let waiting = waiter.count();
        drop(waiter);
        acquired.map_err(|err| match err {
            sqlx::Error::PoolTimedOut => {
                let stats = self.stats();
                Error::PoolTimeout {
                    url: self.inner.url.redacted(),
                    waited: started.elapsed(),
                    size: stats.size,
                    in_use: stats.in_use,
                    idle: stats.idle,
                    waiting,
                    max: stats.max,
                }
            }
            sqlx::Error::PoolClosed => Error::Closed {
                url: self.inner.url.redacted(),
            },
            other => Error::Acquire {
                url: self.inner.url.redacted(),
                detail: driver::redact(&self.inner.url, &other.to_string()),
            },
        })
    }
}

/// Counts a caller as waiting for a connection until it is dropped, even
/// when the caller's future is cancelled.
struct Waiter<'a>(&'a AtomicU32);

impl<'a> Waiter<'a> {
    fn enter(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }

    fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
