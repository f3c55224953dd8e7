//! The connection schema migrations run on: one of the pool's own (inside
//! the registry's connection budget), holding the migration lock.

use sqlx::migrate::{MigrateError, Migrator};

use super::SqlConnectionRegistry;
use crate::config::Pooler;
use crate::driver::{Conn, MigrationLock};
use crate::error::{Error, Result};

/// A pooled connection reserved for migrating, holding the lock that makes
/// other instances wait until this one's migrations are done.
pub(crate) struct MigrationConn {
    pub(crate) conn: Conn,
    _lock: MigrationLock,
}

impl SqlConnectionRegistry {
    /// Takes the migration lock and a connection.
    pub(crate) async fn migration_conn(&self) -> Result<MigrationConn> {
        if self.inner.config.session.pooler == Pooler::Transaction {
            return Err(Error::Migration {
                version: None,
                file: None,
                message: "migrations need a server session of their own (a session advisory \
                          lock, DDL outside a transaction), which a transaction pooler does not \
                          give: run them through a registry whose url reaches the server \
                          directly, with `session.pooler: none`"
                    .into(),
            });
        }
        let host = self.inner.cluster.current();
        let lock = host.pool.migration_lock().await?;
        let mut conn = host.acquire().await?;
        // Migrators begin their own transactions and run DDL outside them.
        let writable = conn.writes_by_default(true).await;
        if let Err(err) = writable {
            conn.close_on_drop();
            return Err(err.into());
        }
        if let Err(err) = conn.lock_migrations().await {
            conn.close_on_drop();
            return Err(Error::Migration {
                version: None,
                file: None,
                message: format!("cannot take the migration lock: {err}"),
            });
        }
        Ok(MigrationConn { conn, _lock: lock })
    }

    /// Reverts migrations newer than `target` while `held` keeps other
    /// instances out.
    pub(crate) async fn migrate_down(
        &self,
        _held: &MigrationConn,
        migrator: &Migrator,
        target: i64,
    ) -> Result<(), MigrateError> {
        let host = self.inner.cluster.current();
        host.pool.migrate_down(migrator, target).await
    }
}

impl MigrationConn {
    /// Releases the lock and closes the connection: migrations may leave
    /// anything on it (`SET search_path`, session settings, temporary
    /// tables), and no session may inherit that. Migrating is rare, so a
    /// new connection later costs nothing that matters.
    pub(crate) async fn release(mut self) {
        let _ = self.conn.unlock_migrations().await;
        self.conn.close_on_drop();
    }
}
