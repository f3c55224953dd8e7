//! One database server of a registry — a host of its `url` or one of its
//! replicas — and everything its sessions share: its pool, its counters
//! (and metrics labelled with its URL), its spans' observer, the limits
//! from the config, and its [`Health`] as the topology's monitor last saw
//! it. A session holds its server; a session that loses its connection
//! tells the server, which tells the monitor.

mod checkout;
mod health;

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend};
use sqlx::migrate::{MigrateError, Migrator};

use crate::config::DbConfig;
use crate::driver::{self, Conn, Connecting, MemoryDatabase, MigrationLock, Pool, Residue};
use crate::observe::Observer;
use crate::replication::LastWrite;
use crate::stats::{Counters, PoolStats};
use crate::url::DbUrl;

pub(crate) use health::{Answer, Health};

/// How much longer than the server-side `statement_timeout` the client waits
/// before it gives up on a server that does not answer at all.
const CLIENT_MARGIN: Duration = Duration::from_secs(1);

/// How long resetting a connection's session state may take before the
/// connection is closed instead.
const RESET_LIMIT: Duration = Duration::from_secs(5);

/// One server and its pools; shared by the topology and every session on it.
pub(crate) struct Server {
    url: DbUrl,
    /// `host:port`, as logs and errors name the server.
    address: String,
    backend: DbBackend,
    pool: Pool,
    /// Client-side bound on one statement: `statement_timeout` plus a margin.
    statement_limit: Option<Duration>,
    leak_warning: Option<Duration>,
    counters: Arc<Counters>,
    /// Spans and latency histograms.
    observer: Observer,
    /// Keeps a private in-memory database alive while the server is used.
    _memory: Option<Arc<MemoryDatabase>>,
    /// Where writes on this server are recorded (read-your-writes on
    /// replicas); `None` without replicas, and on replicas themselves.
    last_write: Option<Arc<LastWrite>>,
    health: Health,
}

impl Server {
    /// Builds the pools of the server at `url` under `config`'s `session`
    /// settings, connecting first when `connecting` says so. Writes on it
    /// are recorded in `last_write` when given.
    ///
    /// # Errors
    ///
    /// [`Error::Url`](crate::Error::Url) for a URL the driver cannot use;
    /// [`Error::Connect`](crate::Error::Connect) when connecting eagerly fails.
    pub(crate) async fn open(
        url: DbUrl,
        config: &DbConfig,
        connecting: Connecting,
        last_write: Option<Arc<LastWrite>>,
    ) -> crate::Result<Self> {
        let counters = Arc::new(Counters::new(url.redacted()));
        let opened = Pool::open(
            &url,
            config,
            Arc::clone(&counters),
            connecting,
            last_write.clone(),
        )
        .await?;
        let session = &config.session;
        Ok(Self {
            address: address(&url),
            backend: opened.pool.db_backend(),
            observer: Observer::new(&url, opened.pool.db_backend()),
            url,
            pool: opened.pool,
            statement_limit: session.statement_timeout.map(|limit| limit + CLIENT_MARGIN),
            leak_warning: session.leak_warning,
            counters,
            _memory: opened.memory.map(Arc::new),
            last_write,
            health: Health::default(),
        })
    }

    /// The server's URL (its `Display` hides the password).
    pub(crate) fn url(&self) -> &DbUrl {
        &self.url
    }

    pub(crate) fn backend(&self) -> DbBackend {
        self.backend
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub(crate) fn observer(&self) -> &Observer {
        &self.observer
    }

    /// After how long a session still open is logged as a likely leak.
    pub(crate) fn leak_warning(&self) -> Option<Duration> {
        self.leak_warning
    }

    /// What the monitor last saw of this server.
    pub(crate) fn health(&self) -> &Health {
        &self.health
    }

    /// sea-orm's view of the engine's pool; only the server the registry
    /// started on (opened eagerly) has one.
    pub(crate) fn database_connection(&self) -> Option<DatabaseConnection> {
        self.pool.database_connection()
    }

    /// After a write session committed on `conn`: records where the
    /// server's history now ends, so later read sessions wait for a replica
    /// to have replayed it. One round trip, only when replicas are
    /// configured; if it fails, reads go to the primary until the monitor
    /// has read a position past this commit.
    pub(crate) async fn record_commit(&self, conn: &mut Conn) {
        let Some(last_write) = &self.last_write else {
            return;
        };
        match self.within_limit(conn.probe().commit_position()).await {
            Ok(Some(position)) => last_write.advance(position),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %driver::describe_failure(&err), "cannot read the commit position; read sessions go to the primary until the monitor has read a newer one");
                last_write.unplaced();
                if driver::is_fatal(&err) {
                    self.lost(conn);
                }
            }
        }
    }

    /// A write whose position this server cannot read at once (an
    /// autocommit statement, a commit whose outcome is unknown, the
    /// engine): reads go to the primary until the monitor has read a
    /// position past it.
    pub(crate) fn record_unplaced_write(&self) {
        if let Some(last_write) = &self.last_write {
            last_write.unplaced();
        }
    }

    /// Runs one round trip, bounded when a `statement_timeout` is configured:
    /// a frozen or unreachable server then yields a timeout error, not a hang.
    pub(crate) async fn within_limit<T>(
        &self,
        round_trip: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        match self.statement_limit {
            None => round_trip.await,
            Some(limit) => tokio::time::timeout(limit, round_trip)
                .await
                .unwrap_or_else(|_| Err(sqlx::Error::Io(ErrorKind::TimedOut.into()))),
        }
    }

    /// Closes `conn` when it is released instead of pooling it, and counts it.
    pub(crate) fn evict(&self, conn: &mut Conn) {
        tracing::warn!(
            "connection broken or interrupted mid-round-trip; closing it instead of pooling it"
        );
        conn.close_on_drop();
        self.counters.evicted();
    }

    /// [`evict`](Self::evict), for a connection that failed as if its
    /// server went away (lost, timed out, demoted): see
    /// [`mark_suspect`](Self::mark_suspect).
    pub(crate) fn lost(&self, conn: &mut Conn) {
        self.evict(conn);
        self.mark_suspect();
    }

    /// A connection to this server failed as if it went away. A watched
    /// server (one the topology's monitor asks) drops its idle
    /// connections, which are likely dead too, and takes no sessions until
    /// the monitor has asked it again; an unwatched one (a plain `url`
    /// without replicas) has nowhere else to send sessions.
    pub(crate) fn mark_suspect(&self) {
        if self.health.mark_suspect() {
            tracing::warn!(server = %self.address, "a session lost its connection; no sessions go to this server until the monitor reaches it again");
            self.pool.drop_idle();
        }
    }

    /// Drops the idle connections (a server that stopped serving).
    pub(crate) fn drop_idle(&self) {
        self.pool.drop_idle();
    }

    /// Keeps the exported gauges current at every checkout and release,
    /// without anyone calling `stats()`.
    pub(crate) fn publish_gauges(&self) {
        let _ = self.stats();
    }

    /// The pool's figures now (taking them publishes the gauges too).
    pub(crate) fn stats(&self) -> PoolStats {
        let pool = &self.pool;
        self.counters
            .snapshot(pool.size(), pool.num_idle(), pool.max_size())
    }

    /// Hands a session's connection back to the pool, which keeps it or
    /// closes it on the spot (see `pool::Pooled`): no round trip, no task —
    /// unless the session left state on it (`residue`), which a task resets
    /// first (PostgreSQL, one round trip) or which closes the connection
    /// (backends without a reset).
    pub(crate) fn release(self: &Arc<Self>, mut conn: Conn, residue: Residue) {
        let runtime = tokio::runtime::Handle::try_current();
        match (residue, runtime) {
            (Residue::None, _) => {}
            (Residue::Resettable, Ok(runtime)) if conn.resets() => {
                let server = Arc::clone(self);
                runtime.spawn(async move {
                    let reset = tokio::time::timeout(RESET_LIMIT, conn.reset()).await;
                    if !matches!(reset, Ok(Ok(()))) {
                        tracing::warn!("resetting a connection's session state failed; closing it");
                        conn.close_on_drop();
                    }
                    drop(conn);
                    server.publish_gauges();
                });
                return;
            }
            _ => conn.close_on_drop(),
        }
        drop(conn);
        self.publish_gauges();
    }

    /// Commits `conn`'s read-only transaction in a task of its own, then
    /// releases it: the session that read through it does not wait for
    /// the end of a transaction that wrote nothing (one round trip, or
    /// SQLite worker hop, fewer). The connection goes back to the pool only
    /// once the COMMIT answered; one that failed is rolled back or closed.
    pub(crate) fn commit_then_release(self: &Arc<Self>, mut conn: Conn, residue: Residue) {
        let server = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(err) = server.within_limit(conn.commit()).await {
                server.undo_failed_commit(&mut conn, &err).await;
            }
            server.release(conn, residue);
        });
    }

    /// After `conn`'s COMMIT failed with `err`: a lost connection is
    /// closed, any other rolled back (or closed, if that fails too).
    pub(crate) async fn undo_failed_commit(&self, conn: &mut Conn, err: &sqlx::Error) {
        if driver::is_fatal(err) {
            self.evict(conn);
        } else {
            conn.rollback_all_or_close(RESET_LIMIT).await;
        }
    }

    /// The lock that keeps other processes' migrations out while this one
    /// migrates (see [`Pool::migration_lock`]).
    pub(crate) async fn migration_lock(&self) -> crate::Result<MigrationLock> {
        self.pool.migration_lock().await
    }

    /// Reverts migrations newer than `target` (see [`Pool::migrate_down`]).
    pub(crate) async fn migrate_down(
        &self,
        migrator: &Migrator,
        target: i64,
    ) -> Result<(), MigrateError> {
        self.pool.migrate_down(migrator, target).await
    }

    /// Refuses new checkouts and closes the pools (see [`Pool::close`]).
    pub(crate) async fn close(&self, grace: Duration) -> bool {
        self.pool.close(grace).await
    }
}

/// `host:port` of a one-host URL, as logs and errors name a host.
pub(crate) fn address(url: &DbUrl) -> String {
    let host = url.host().unwrap_or_default();
    match url.port().or(url.backend().default_port()) {
        Some(port) if host.contains(':') => format!("[{host}]:{port}"),
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}
