//! The small sqlx pool behind `engine()`: sea-orm's `DatabaseConnection` can
//! only wrap a `sqlx::Pool`, so the engine keeps one of its own, opened
//! lazily and counted in the registry's connection budget and `stats()`.

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database, Executor};
use sqlx_core::transaction::TransactionManager;

use crate::config::DbConfig;
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
) -> sqlx::Pool<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let session = &config.session;
    let mut pool = PoolOptions::new();
    if let Some(recycle) = session.pool_recycle {
        // SQLAlchemy replaces an old connection at checkout; sqlx alone
        // only checks `max_lifetime` when a connection is released.
        pool = pool.before_acquire(move |_, meta| Box::pin(async move { Ok(meta.age < recycle) }));
    }
    pool.max_connections(ENGINE_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(session.pool_timeout)
        .max_lifetime(session.pool_recycle)
        .idle_timeout(session.idle_timeout)
        .test_before_acquire(session.pool_pre_ping)
        .after_connect(move |conn: &mut DB::Connection, _| {
            counters.created();
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
        .after_release(|conn, _| {
            let clean = DB::TransactionManager::get_transaction_depth(conn) == 0;
            Box::pin(async move { Ok(clean) })
        })
        .connect_lazy_with(options)
}
