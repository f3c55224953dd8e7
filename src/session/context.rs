//! What every session of one registry shares: the pool, the limits from the
//! config, the registry's counters, and handing a connection back.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::DbBackend;

use crate::config::SessionConfig;
use crate::driver::{self, Conn, MemoryDatabase, Pool, Residue};
use crate::observe::Observer;
use crate::replication::LastWrite;
use crate::stats::{Counters, PoolStats};

/// How much longer than the server-side `statement_timeout` the client waits
/// before it gives up on a server that does not answer at all.
const CLIENT_MARGIN: Duration = Duration::from_secs(1);

/// How long resetting a connection's session state may take before the
/// connection is closed instead.
const RESET_LIMIT: Duration = Duration::from_secs(5);

/// Whether statements run inside one transaction or each on its own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `get()` / `session()`: one transaction, begun by the first statement.
    Transaction,
    /// `get_read_only()` / `read_session()`: one read-only transaction.
    ReadOnly,
    /// `connection()`: every statement commits by itself.
    Autocommit,
}

impl Mode {
    /// The session span's `sqlreg.session.access`.
    pub(crate) fn access(self) -> &'static str {
        match self {
            Self::Transaction => "read_write",
            Self::ReadOnly => "read_only",
            Self::Autocommit => "autocommit",
        }
    }
}

/// Built once per registry; each session holds an `Arc` of it.
pub(crate) struct SessionContext {
    pub(crate) backend: DbBackend,
    pool: Pool,
    /// Client-side bound on one statement: `statement_timeout` plus a margin.
    statement_limit: Option<Duration>,
    pub(crate) leak_warning: Option<Duration>,
    pub(crate) counters: Arc<Counters>,
    /// Spans and latency histograms.
    pub(crate) observer: Observer,
    /// Keeps a private in-memory database alive while a session uses it.
    _memory: Option<Arc<MemoryDatabase>>,
    /// Where write sessions record their commit position (read-your-writes
    /// on replicas); `None` without replicas, and on replicas themselves.
    last_write: Option<Arc<LastWrite>>,
    /// Set when a session lost its connection: the server may be gone, so
    /// the registry asks it before the next session goes there.
    lost_connection: AtomicBool,
}

impl SessionContext {
    pub(crate) fn new(
        pool: Pool,
        session: &SessionConfig,
        counters: Arc<Counters>,
        observer: Observer,
        memory: Option<Arc<MemoryDatabase>>,
        last_write: Option<Arc<LastWrite>>,
    ) -> Self {
        Self {
            backend: pool.db_backend(),
            pool,
            statement_limit: session.statement_timeout.map(|limit| limit + CLIENT_MARGIN),
            leak_warning: session.leak_warning,
            counters,
            observer,
            _memory: memory,
            last_write,
            lost_connection: AtomicBool::new(false),
        }
    }

    /// After a write session committed on `conn`: records where the
    /// server's history now ends, so later read sessions wait for a replica
    /// to have replayed it. One round trip, only when replicas are
    /// configured; if it fails, reads go to the primary until the next one.
    pub(crate) async fn note_commit(&self, conn: &mut Conn) {
        let Some(last_write) = &self.last_write else {
            return;
        };
        match self.within_limit(conn.probe().commit_position()).await {
            Ok(Some(position)) => last_write.advance(position),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %driver::describe_failure(&err), "cannot read the commit position; read sessions go to the primary");
                last_write.unknown();
                if driver::is_fatal(&err) {
                    self.lost(conn);
                }
            }
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
    /// server went away (lost, timed out), which is remembered until
    /// [`take_lost_connection`](Self::take_lost_connection).
    pub(crate) fn lost(&self, conn: &mut Conn) {
        self.evict(conn);
        self.note_lost_connection();
    }

    /// Remembers that the server may be gone (a connection to it failed).
    pub(crate) fn note_lost_connection(&self) {
        self.lost_connection.store(true, Ordering::Release);
    }

    /// Whether a session lost its connection since the last call.
    pub(crate) fn take_lost_connection(&self) -> bool {
        self.lost_connection.swap(false, Ordering::AcqRel)
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
    /// (backends without a reset). Call after the session left `in_use`.
    pub(crate) fn release(self: &Arc<Self>, mut conn: Conn, residue: Residue) {
        let runtime = tokio::runtime::Handle::try_current();
        match (residue, runtime) {
            (Residue::None, _) => {}
            (Residue::Resettable, Ok(runtime)) if conn.resets() => {
                let context = Arc::clone(self);
                runtime.spawn(async move {
                    let reset = tokio::time::timeout(RESET_LIMIT, conn.reset()).await;
                    if !matches!(reset, Ok(Ok(()))) {
                        tracing::warn!("resetting a connection's session state failed; closing it");
                        conn.close_on_drop();
                    }
                    drop(conn);
                    context.publish_gauges();
                });
                return;
            }
            _ => conn.close_on_drop(),
        }
        drop(conn);
        self.publish_gauges();
    }
}
