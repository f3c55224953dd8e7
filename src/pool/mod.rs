//! sqlreg's own pool of sqlx connections, on deadpool's managed pool, with
//! SQLAlchemy's QueuePool rules: at most `pool_size + max_overflow`
//! connections, at most `pool_size` of them kept idle, `pool_timeout` for a
//! free one, `pool_recycle` and `pool_pre_ping` at checkout. A checkout of an
//! idle connection and a release cost no round trip and spawn no task.

mod lifetimes;
mod manager;
mod pooled;

use std::sync::Arc;
use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{PoolError, QueueMode, TimeoutType, Timeouts};
use sqlx::{Connection, Database};

use crate::config::SessionConfig;
use crate::error::ConnectFailure;
use crate::stats::Counters;
use manager::SqlxManager;
pub(crate) use manager::{Explain, Fresh, Refresh, Setup};
pub(crate) use pooled::Pooled;

/// Why a new connection could not be opened: its class and the driver's
/// message, password removed.
#[derive(Debug, Clone)]
pub(crate) struct ConnectError {
    pub(crate) reason: ConnectFailure,
    pub(crate) detail: String,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.detail)
    }
}

/// Why a checkout failed.
#[derive(Debug)]
pub(crate) enum CheckoutError {
    /// Every connection stayed in use for `pool_timeout`.
    TimedOut,
    /// The pool was closed.
    Closed,
    /// A new connection was needed and could not be opened.
    Connect(ConnectError),
}

/// A pool of one backend's sqlx connections. Cheap to clone.
pub(crate) struct ConnectionPool<DB: Database> {
    pool: deadpool::managed::Pool<SqlxManager<DB>>,
    /// `pool_size + max_overflow` (deadpool reports 0 once closed).
    max: u32,
}

impl<DB: Database> Clone for ConnectionPool<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            max: self.max,
        }
    }
}

impl<DB: Database> ConnectionPool<DB> {
    /// A pool that opens connections with `options` (refreshed by `refresh`
    /// first, then `setup` run on each, and `fresh` recorded with each)
    /// when checkouts need them, never ahead of time.
    pub(crate) fn new(
        options: <DB::Connection as Connection>::Options,
        setup: Option<Setup<DB>>,
        fresh: Fresh,
        refresh: Option<Refresh<DB>>,
        explain: Explain,
        session: &SessionConfig,
        counters: Arc<Counters>,
    ) -> Self {
        let manager = SqlxManager::new(options, setup, fresh, refresh, explain, session, counters);
        let max = session.pool_size.saturating_add(session.max_overflow);
        let pool = deadpool::managed::Pool::builder(manager)
            .max_size(usize::try_from(max).unwrap_or(usize::MAX))
            // QueuePool hands out the connection that waited longest.
            .queue_mode(QueueMode::Fifo)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(session.pool_timeout),
                create: Some(session.connect_timeout),
                // Only a pre-ping can take time here.
                recycle: Some(session.connect_timeout),
            })
            .build()
            .expect("a runtime and a size are set");
        Self { pool, max }
    }

    /// Checks a connection out. The future owns what it needs, so it can
    /// finish as a task of its own when its caller gives up.
    pub(crate) fn checkout(
        &self,
    ) -> impl Future<Output = Result<Pooled<DB>, CheckoutError>> + Send + 'static {
        let pool = self.pool.clone();
        async move {
            match pool.get().await {
                Ok(object) => Ok(Pooled::new(object)),
                Err(PoolError::Timeout(TimeoutType::Wait)) => Err(CheckoutError::TimedOut),
                Err(PoolError::Timeout(_)) => Err(CheckoutError::Connect(ConnectError {
                    reason: ConnectFailure::TimedOut,
                    detail: "no connection opened within connect_timeout".into(),
                })),
                Err(PoolError::Backend(failure)) => Err(CheckoutError::Connect(failure)),
                Err(PoolError::Closed) => Err(CheckoutError::Closed),
                // No hooks are installed and the runtime is set.
                Err(PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_)) => {
                    unreachable!("the pool has a runtime and no hooks")
                }
            }
        }
    }

    /// The connect options new connections start from.
    pub(crate) fn connect_options(&self) -> &<DB::Connection as Connection>::Options {
        self.pool.manager().options()
    }

    /// Open connections, idle or not.
    pub(crate) fn size(&self) -> u32 {
        u32::try_from(self.pool.status().size).unwrap_or(u32::MAX)
    }

    /// Open connections waiting in the pool.
    pub(crate) fn idle(&self) -> u32 {
        u32::try_from(self.pool.manager().idle()).unwrap_or(u32::MAX)
    }

    /// The most connections the pool opens (`pool_size + max_overflow`).
    pub(crate) fn max_size(&self) -> u32 {
        self.max
    }

    /// Why the last attempt to open a connection failed, if it did.
    pub(crate) fn last_failure(&self) -> Option<ConnectError> {
        self.pool
            .manager()
            .last_failure
            .lock()
            .ok()
            .and_then(|last| last.clone())
    }

    /// Drops the idle connections without a goodbye and stays open: when
    /// their server went away they are dead (and a polite close could wait
    /// on a host that no longer answers); when it changed role they must
    /// not serve sessions again.
    pub(crate) fn drop_idle(&self) {
        let dropped = self.pool.retain(|_, _| false).removed.len();
        self.pool.manager().forget_some_idle(dropped);
    }

    /// Refuses checkouts from now on (waiting callers get
    /// [`CheckoutError::Closed`]), closes the idle connections, and waits up
    /// to `grace` for the checked-out ones to come back (they close then).
    /// Whether every connection was closed within `grace`.
    pub(crate) async fn close(&self, grace: Duration) -> bool {
        let idle = self.pool.retain(|_, _| false).removed;
        self.pool.close();
        self.pool.manager().forget_idle();
        let closing =
            futures_util::future::join_all(idle.into_iter().map(|slot| slot.conn.close()));
        let all_back = async {
            let gone = &self.pool.manager().gone;
            loop {
                let notified = gone.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.pool.status().size == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(grace, async {
            closing.await;
            all_back.await;
        })
        .await
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sqlx::{Database, MySql, Postgres, Sqlite};

    use super::{ConnectError, ConnectionPool, Fresh};
    use crate::config::SessionConfig;
    use crate::error::ConnectFailure;
    use crate::stats::Counters;

    /// The bytes a checkout future takes (`Pool::acquire` boxes it, so each
    /// session pays a copy of this size). Building it connects nothing.
    fn checkout_size<DB: Database>(
        options: <DB::Connection as sqlx::Connection>::Options,
    ) -> usize {
        let pool = ConnectionPool::<DB>::new(
            options,
            None,
            Fresh {
                writes_by_default: true,
                transaction_settings: None,
            },
            None,
            Box::new(|_| ConnectError {
                reason: ConnectFailure::Refused,
                detail: String::new(),
            }),
            &SessionConfig::default(),
            Arc::new(Counters::new("size".into())),
        );
        std::mem::size_of_val(&pool.checkout())
    }

    #[tokio::test]
    async fn a_checkout_future_stays_small_on_every_backend() {
        let sizes = [
            checkout_size::<Sqlite>(Default::default()),
            checkout_size::<Postgres>(Default::default()),
            checkout_size::<MySql>(Default::default()),
        ];
        eprintln!("checkout future bytes (SQLite, PostgreSQL, MariaDB): {sizes:?}");
        assert!(sizes.iter().all(|&size| size <= 1024), "{sizes:?}");
    }
}
