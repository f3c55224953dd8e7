//! One database server of a registry — the primary, or one of its replicas —
//! with everything its sessions share: its pools, its counters (and metrics
//! labelled with its URL), its spans' server address.

mod checkout;

use std::sync::Arc;

use crate::config::DbConfig;
use crate::driver::{Connecting, Pool};
use crate::error::Result;
use crate::observe::Observer;
use crate::replication::LastWrite;
use crate::session::{Request, Session, SessionContext};
use crate::stats::{Counters, PoolStats};
use crate::url::DbUrl;

/// A server and its pools.
pub(crate) struct Host {
    pub(crate) url: DbUrl,
    pub(crate) pool: Pool,
    pub(crate) counters: Arc<Counters>,
    pub(crate) context: Arc<SessionContext>,
}

impl Host {
    /// Builds the pools of the server at `url` under `config`'s `session`
    /// settings, connecting first when `connecting` says so. Write sessions
    /// record where the server's history ends in `last_write` when given
    /// (read-your-writes on replicas).
    pub(crate) async fn open(
        url: DbUrl,
        config: &DbConfig,
        connecting: Connecting,
        last_write: Option<Arc<LastWrite>>,
    ) -> Result<Self> {
        let counters = Arc::new(Counters::new(url.redacted()));
        let opened = Pool::open(&url, config, Arc::clone(&counters), connecting).await?;
        let context = SessionContext::new(
            opened.pool.clone(),
            &config.session,
            Arc::clone(&counters),
            Observer::new(&url, opened.pool.db_backend()),
            opened.memory.map(Arc::new),
            last_write,
        );
        Ok(Self {
            url,
            pool: opened.pool,
            counters,
            context: Arc::new(context),
        })
    }

    /// A session on a connection of this server, as `request` describes it.
    pub(crate) async fn session(&self, request: &Request<'_>) -> Result<Session> {
        let observer = &self.context.observer;
        let span = observer.session_span(request.mode.access(), request.opened_at);
        let conn = observer.wait_for(&span, self.acquire()).await?;
        self.counters.acquired();
        let session = Session::new(
            conn,
            Arc::clone(&self.context),
            request.mode,
            request.isolation,
            request.opened_at,
            span,
        );
        // After `Session::new`, so the published `in_use` counts this one.
        self.context.publish_gauges();
        Ok(session)
    }

    /// What this server's pools look like now.
    pub(crate) fn stats(&self) -> PoolStats {
        self.context.stats()
    }
}
