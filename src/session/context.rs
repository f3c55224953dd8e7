//! What every session of one registry shares: the backend, the limits from
//! the config, the registry's counters.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DbBackend;

use crate::driver::{Conn, MemoryDatabase};
use crate::stats::Counters;

/// How much longer than the server-side `statement_timeout` the client waits
/// before it gives up on a server that does not answer at all.
const CLIENT_MARGIN: Duration = Duration::from_secs(1);

/// Whether statements run inside one transaction or each on its own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `get()` / `session()`: one transaction, begun by the first statement.
    Transaction,
    /// `connection()`: every statement commits by itself.
    Autocommit,
}

/// Built once per registry; each session holds an `Arc` of it.
pub(crate) struct SessionContext {
    pub(crate) backend: DbBackend,
    /// Client-side bound on one statement: `statement_timeout` plus a margin.
    statement_limit: Option<Duration>,
    pub(crate) leak_warning: Option<Duration>,
    pub(crate) counters: Arc<Counters>,
    /// Keeps a private in-memory database alive while a session uses it.
    _memory: Option<Arc<MemoryDatabase>>,
}

impl SessionContext {
    pub(crate) fn new(
        backend: DbBackend,
        statement_timeout: Option<Duration>,
        leak_warning: Option<Duration>,
        counters: Arc<Counters>,
        memory: Option<Arc<MemoryDatabase>>,
    ) -> Self {
        Self {
            backend,
            statement_limit: statement_timeout.map(|limit| limit + CLIENT_MARGIN),
            leak_warning,
            counters,
            _memory: memory,
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
        tracing::warn!("connection broke; it will be closed instead of returned to the pool");
        conn.close_on_drop();
        self.counters.evicted();
    }
}
