//! One database: its pool, its sea-orm engine, and the sessions it hands out
//! (core-lib's `SqlAlchemyConnectionRegistry`).

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::DbConfig;
use crate::error::Result;
use crate::replication::ReplicationPosition;
use crate::retry::Gate;
use crate::schema::RegistryBuilder;
use crate::stats::{HostStats, PoolStats};
use crate::topology::Topology;
use crate::url::DbUrl;

mod migration_conn;
mod options;
mod run;
mod sessions;
mod transaction;

pub use options::SessionOptions;

pub(crate) use migration_conn::MigrationConn;

/// A connected database: a pool built from one `db` config section, handing
/// out [`Session`](crate::Session)s. Cheap to clone; clones share the pool.
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
    /// The servers: the hosts of `url` and the replicas.
    topology: Topology,
    config: DbConfig,
    /// Where the retrying form's attempts pass (a last attempt runs alone).
    gate: Gate,
}

impl std::fmt::Debug for SqlConnectionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlConnectionRegistry")
            .field("url", self.inner.topology.url())
            .field("stats", &self.stats())
            .finish()
    }
}

impl SqlConnectionRegistry {
    /// Connects to the database `config` describes, creating it first when
    /// `create_db` is on and it is missing, then applies pending migrations
    /// when `migrations.auto` is on. Fails fast with the real cause (wrong
    /// password, connection refused, unknown database).
    ///
    /// # Errors
    ///
    /// [`Error::Url`](crate::Error::Url) for a URL that cannot be used, [`Error::Connect`](crate::Error::Connect) when
    /// the first connection or the database creation fails,
    /// [`Error::Migration`](crate::Error::Migration) when a migration fails.
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
        let topology = Topology::open(&config).await?;
        tracing::info!(url = %topology.url(), pool_size = config.session.pool_size, "database connected");
        Ok(Self {
            inner: Arc::new(Inner {
                topology,
                config,
                gate: Gate::default(),
            }),
        })
    }

    /// The sea-orm connection for queries outside a session (core-lib's
    /// `engine()`); each statement commits on its own. With a multi-host
    /// `url` it stays on the host chosen at connect time: sea-orm wraps one
    /// fixed pool, so only sessions follow a failover. sea-orm can only wrap
    /// a `sqlx::Pool`, so the engine has a small one of its own, opened on
    /// first use and counted in [`stats`](Self::stats) (see the README's
    /// connection budget). The raw sqlx pool is reachable through it
    /// (`get_postgres_connection_pool()` and its twins).
    #[must_use]
    pub fn engine(&self) -> &DatabaseConnection {
        self.inner.topology.engine()
    }

    /// The database URL (its `Display` hides the password).
    #[must_use]
    pub fn url(&self) -> &DbUrl {
        self.inner.topology.url()
    }

    /// The configuration the registry was built from.
    #[must_use]
    pub fn config(&self) -> &DbConfig {
        &self.inner.config
    }

    /// How many connections are open, idle, in use and awaited right now,
    /// and what the pool has done since it started. The same figures go to
    /// the `metrics` facade (`sqlreg_*`, labelled with the database). With
    /// a multi-host `url`, the host sessions go to now (see
    /// [`host_stats`](Self::host_stats) for every host).
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        self.inner.topology.current().stats()
    }

    /// Where the primary's history stood after the newest write session of
    /// this registry committed (with replicas configured; else `None`).
    /// Carry it as text to another process or request and pass it to
    /// [`SessionOptions::fresh_as`] for a read that sees that write.
    #[must_use]
    pub fn write_position(&self) -> Option<ReplicationPosition> {
        self.inner.topology.write_position()
    }

    /// [`stats`](Self::stats) of every server: the hosts of `url` first
    /// (with a multi-host `url`, each one's role and timeline), then each
    /// replica with whether reads may go to it and how far behind it is.
    #[must_use]
    pub fn host_stats(&self) -> Vec<HostStats> {
        self.inner.topology.stats()
    }

    /// Stops handing out sessions ([`Error::Closed`](crate::Error::Closed) from then on), waits up
    /// to `session.close_timeout` for the sessions in flight to return their
    /// connections, and closes the connections. Connections of sessions still
    /// running after that close as soon as those sessions end.
    pub async fn close(&self) {
        let grace = self.inner.config.session.close_timeout;
        let topology = &self.inner.topology;
        if !topology.close(grace).await {
            tracing::warn!(
                url = %topology.url(),
                in_use = self.stats().in_use,
                "sessions still running after close_timeout; their connections close when they end"
            );
        }
        tracing::info!(url = %topology.url(), "database closed");
    }
}
