//! How the pool opens and vets connections: deadpool's `Manager` for sqlx
//! connections. A connection is opened with the backend's connect options
//! and setup SQL, and vetted at checkout only: replaced when older than
//! `pool_recycle`, pinged first only when `pool_pre_ping` asks for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use futures_util::future::BoxFuture;
use sqlx::{ConnectOptions, Connection, Database};
use tokio::sync::Notify;

use super::ConnectError;
use super::lifetimes::Lifetimes;
use crate::stats::Counters;

/// SQL a backend runs on every new connection (its per-session settings).
pub(crate) type Setup<DB> = Box<
    dyn for<'c> Fn(&'c mut <DB as Database>::Connection) -> BoxFuture<'c, Result<(), sqlx::Error>>
        + Send
        + Sync,
>;

/// The connect options for the next new connection, from the pool's: the
/// password asked again (`url.password_file`, a password provider), so a
/// rotated one is used. Only a new connection pays for it.
pub(crate) type Refresh<DB> = Box<
    dyn Fn(
            &<<DB as Database>::Connection as Connection>::Options,
        ) -> BoxFuture<
            'static,
            Result<<<DB as Database>::Connection as Connection>::Options, ConnectError>,
        > + Send
        + Sync,
>;

/// Turns a driver error from opening a connection into its class and a
/// message with the password removed (the driver seam knows how).
pub(crate) type Explain = Box<dyn Fn(&sqlx::Error) -> ConnectError + Send + Sync>;

/// A pooled connection, the one thing sessions may change on it that
/// outlives them — whether statements outside a transaction may write (see
/// `driver::Conn::writes_by_default`) — and what its pool says of it.
pub(crate) struct Slot<C> {
    pub(crate) conn: C,
    pub(crate) writes_by_default: bool,
    /// When it was last handed back (or opened): how long it sat idle.
    pub(crate) idle_since: Instant,
    /// Its own `pool_recycle`, given when it opened (see `Lifetimes`).
    lifetime: Option<Duration>,
    /// See [`Fresh::transaction_settings`].
    pub(crate) transaction_settings: Option<Arc<str>>,
}

/// What a new connection of a pool is like, besides its connect options.
#[derive(Clone)]
pub(crate) struct Fresh {
    /// Whether statements outside a transaction may write on it.
    pub(crate) writes_by_default: bool,
    /// Behind a transaction pooler, whose server connections other clients
    /// share between transactions: the settings each transaction sets for
    /// itself (`SET LOCAL …`, possibly empty). `None` on a connection that
    /// is the server session's alone.
    pub(crate) transaction_settings: Option<Arc<str>>,
}

/// Opens sqlx connections for the pool and decides at checkout whether an
/// idle one may be handed out again.
pub(crate) struct SqlxManager<DB: Database> {
    options: <DB::Connection as Connection>::Options,
    setup: Option<Setup<DB>>,
    /// What a new connection is like once `setup` ran.
    fresh: Fresh,
    refresh: Option<Refresh<DB>>,
    explain: Explain,
    lifetimes: Lifetimes,
    pre_ping: bool,
    pre_ping_idle: Option<Duration>,
    counters: Arc<Counters>,
    /// QueuePool's `pool_size`: how many idle connections the pool keeps.
    keep_idle: usize,
    /// Connections idle in the pool: counted in when a release keeps one,
    /// out when a checkout takes one (deadpool recycles exactly those).
    idle: AtomicUsize,
    /// Why the last connection attempt failed; cleared by the next success.
    pub(super) last_failure: Mutex<Option<ConnectError>>,
    /// Signalled when a connection leaves the pool after it was closed.
    pub(super) gone: Notify,
}

impl<DB: Database> SqlxManager<DB> {
    /// The connect options new connections start from.
    pub(super) fn options(&self) -> &<DB::Connection as Connection>::Options {
        &self.options
    }

    pub(super) fn new(
        options: <DB::Connection as Connection>::Options,
        setup: Option<Setup<DB>>,
        fresh: Fresh,
        refresh: Option<Refresh<DB>>,
        explain: Explain,
        session: &crate::config::SessionConfig,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            options,
            setup,
            fresh,
            refresh,
            explain,
            lifetimes: Lifetimes::new(session.pool_recycle),
            pre_ping: session.pool_pre_ping,
            pre_ping_idle: session.pre_ping_idle,
            counters,
            keep_idle: usize::try_from(session.pool_size).unwrap_or(usize::MAX),
            idle: AtomicUsize::new(0),
            last_failure: Mutex::new(None),
            gone: Notify::new(),
        }
    }

    /// Opens a connection for the pool, remembering why when it fails.
    async fn open(&self) -> Result<Slot<DB::Connection>, ConnectError> {
        let refreshed = match &self.refresh {
            Some(refresh) => Some(refresh(&self.options).await.inspect_err(|failure| {
                self.remember(Some(failure.clone()));
            })?),
            None => None,
        };
        match self
            .connect(refreshed.as_ref().unwrap_or(&self.options))
            .await
        {
            Ok(conn) => {
                self.counters.created();
                self.remember(None);
                Ok(Slot {
                    conn,
                    writes_by_default: self.fresh.writes_by_default,
                    idle_since: Instant::now(),
                    lifetime: self.lifetimes.next(),
                    transaction_settings: self.fresh.transaction_settings.clone(),
                })
            }
            Err(err) => {
                let failure = (self.explain)(&err);
                self.remember(Some(failure.clone()));
                Err(failure)
            }
        }
    }

    async fn connect(
        &self,
        options: &<DB::Connection as Connection>::Options,
    ) -> Result<DB::Connection, sqlx::Error> {
        let mut conn = options.connect().await?;
        self.set_up(&mut conn).await?;
        Ok(conn)
    }

    /// Runs the backend's per-connection setup on `conn`: when it opens,
    /// and again after a reset returned it to the server's defaults.
    pub(super) async fn set_up(&self, conn: &mut DB::Connection) -> Result<(), sqlx::Error> {
        match &self.setup {
            Some(setup) => setup(conn).await,
            None => Ok(()),
        }
    }

    /// What a new connection's default access mode is.
    pub(super) fn writes_by_default(&self) -> bool {
        self.fresh.writes_by_default
    }

    /// Claims one of the `pool_size` idle places for a connection coming
    /// back; `false` when they are all taken (the connection is surplus).
    pub(super) fn claim_idle_place(&self) -> bool {
        self.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |idle| {
                (idle < self.keep_idle).then_some(idle + 1)
            })
            .is_ok()
    }

    /// Connections idle in the pool.
    pub(super) fn idle(&self) -> usize {
        self.idle.load(Ordering::Acquire)
    }

    /// The pool dropped its idle connections (it was closed).
    pub(super) fn forget_idle(&self) {
        self.idle.store(0, Ordering::Release);
    }

    /// The pool dropped `count` idle connections and stays open.
    pub(super) fn forget_some_idle(&self, count: usize) {
        self.idle.fetch_sub(count, Ordering::AcqRel);
    }

    fn remember(&self, failure: Option<ConnectError>) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = failure;
        }
    }
}

impl<DB: Database> managed::Manager for SqlxManager<DB> {
    type Type = Slot<DB::Connection>;
    type Error = ConnectError;

    /// Boxed: the driver's connect future is several KB, and deadpool holds
    /// `create` inline in every checkout future, so each checkout — nearly
    /// all of which take an idle connection — would pay for copying it.
    async fn create(&self) -> Result<Slot<DB::Connection>, ConnectError> {
        Box::pin(self.open()).await
    }

    /// SQLAlchemy's `pool_recycle` (replace at checkout) and `pool_pre_ping`.
    /// Without pre-ping this costs no round trip and no system call.
    async fn recycle(
        &self,
        slot: &mut Slot<DB::Connection>,
        metrics: &Metrics,
    ) -> RecycleResult<ConnectError> {
        // deadpool recycles exactly the idle connections checkouts take.
        self.idle.fetch_sub(1, Ordering::AcqRel);
        if slot.lifetime.is_some_and(|limit| metrics.age() >= limit) {
            return Err(RecycleError::message("older than pool_recycle"));
        }
        let idle_long = self
            .pre_ping_idle
            .is_some_and(|limit| slot.idle_since.elapsed() >= limit);
        if self.pre_ping || idle_long {
            // Boxed for the reason `create` is.
            Box::pin(slot.conn.ping())
                .await
                .map_err(|err| RecycleError::Backend((self.explain)(&err)))?;
        }
        Ok(())
    }
}
