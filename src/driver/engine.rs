//! The small sqlx pool behind `engine()`: sea-orm's `DatabaseConnection` can
//! only wrap a `sqlx::Pool`, so the engine keeps one of its own, opened
//! lazily and counted in the registry's connection budget and `stats()`.

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database, Executor};
use sqlx_core::transaction::TransactionManager;

use crate::config::DbConfig;
use crate::replication::LastWrite;
use crate::stats::Counters;
use std::sync::Arc;

/// The most connections the engine's pool opens, beside the sessions' pool.
pub(crate) const ENGINE_CONNECTIONS: u32 = 2;

/// The engine's pool: at most [`ENGINE_CONNECTIONS`], none opened before the
/// engine is used, idle ones closed after `idle_timeout`, and the sessions'
/// `pool_timeout`, `pool_recycle`, `pool_pre_ping` and per-connection setup.
pub(super) fn engine_pool<DB: Database>(
    options: <DB::Connection as Connection>::Options,
    config: &DbConfig,
    counters: Arc<Counters>,
    setup: Option<String>,
    writes: Option<Arc<LastWrite>>,
) -> sqlx::Pool<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let session = &config.session;
    let recycle = session.pool_recycle;
    // The engine's statements are invisible to read-your-writes: each
    // checkout and each release counts as a write whose position is not
    // known, so reads stay on the primary from before the statement until
    // the monitor has read a position after it.
    let (on_checkout, on_connect, on_release) = (writes.clone(), writes.clone(), writes);
    PoolOptions::new()
        .max_connections(ENGINE_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(session.pool_timeout)
        .max_lifetime(session.pool_recycle)
        .idle_timeout(session.idle_timeout)
        .test_before_acquire(session.pool_pre_ping)
        // SQLAlchemy replaces an old connection at checkout; sqlx alone
        // only checks `max_lifetime` when a connection is released.
        .before_acquire(move |_, meta| {
            let fresh = recycle.is_none_or(|recycle| meta.age < recycle);
            if fresh && let Some(writes) = &on_checkout {
                writes.unplaced();
            }
            Box::pin(async move { Ok(fresh) })
        })
        .after_connect(move |conn: &mut DB::Connection, _| {
            counters.created();
            if let Some(writes) = &on_connect {
                writes.unplaced();
            }
            let setup = setup.clone();
            Box::pin(async move {
                if let Some(sql) = setup {
                    conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                }
                Ok(())
            })
        })
        // A connection still inside a transaction is closed, never handed
        // to the next engine user.
        .after_release(move |conn, _| {
            if let Some(writes) = &on_release {
                writes.unplaced();
            }
            let clean = DB::TransactionManager::get_transaction_depth(conn) == 0;
            Box::pin(async move { Ok(clean) })
        })
        .connect_lazy_with(options)
}
