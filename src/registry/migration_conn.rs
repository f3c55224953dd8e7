//! The connection schema migrations run on: one of the pool's own (inside
//! the registry's connection budget), or one to `migrations.direct_url`
//! when the registry's url goes through a transaction pooler; holding the
//! migration lock.

use sqlx::migrate::{MigrateError, Migrator};

use super::SqlConnectionRegistry;
use std::time::Duration;

use crate::config::Pooler;
use crate::driver::{Conn, Connecting, MigrationLock};
use crate::server::Server;

/// How long closing the direct server's pool waits for its one connection.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
use crate::error::{Error, Result};

/// A pooled connection reserved for migrating, holding the lock that makes
/// other instances wait until this one's migrations are done.
pub(crate) struct MigrationConn {
    pub(crate) conn: Conn,
    /// The server reached by `migrations.direct_url`, when migrations go
    /// there; closed with this.
    direct: Option<Server>,
    _lock: MigrationLock,
}

impl SqlConnectionRegistry {
    /// Takes the migration lock and a connection.
    pub(crate) async fn migration_conn(&self) -> Result<MigrationConn> {
        let direct = self.direct_host().await?;
        let server = direct.as_ref().unwrap_or(self.inner.topology.current());
        let lock = server.migration_lock().await?;
        let mut conn = server.acquire().await?;
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
        Ok(MigrationConn {
            conn,
            direct,
            _lock: lock,
        })
    }

    /// The server `migrations.direct_url` names, opened with one connection
    /// and no pooler, when `url` goes through a transaction pooler; an error
    /// saying why when that is so and no `direct_url` is given.
    async fn direct_host(&self) -> Result<Option<Server>> {
        let config = &self.inner.config;
        if config.session.pooler != Pooler::Transaction {
            return Ok(None);
        }
        let Some(direct) = config
            .migrations
            .as_ref()
            .and_then(|m| m.direct_url.as_ref())
        else {
            return Err(Error::Migration {
                version: None,
                file: None,
                message: "migrations need a server session of their own (a session advisory \
                          lock, DDL outside a transaction), which a transaction pooler does not \
                          give: set `migrations.direct_url` to a url that reaches the server \
                          directly"
                    .into(),
            });
        };
        let mut direct_config = config.clone();
        direct_config.session.pooler = Pooler::None;
        direct_config.session.pool_size = 1;
        direct_config.session.max_overflow = 0;
        let server = Server::open(
            direct.to_db_url()?,
            &direct_config,
            Connecting::Eagerly,
            None,
        )
        .await?;
        Ok(Some(server))
    }

    /// Reverts migrations newer than `target` while `held` keeps other
    /// instances out.
    pub(crate) async fn migrate_down(
        &self,
        held: &MigrationConn,
        migrator: &Migrator,
        target: i64,
    ) -> Result<(), MigrateError> {
        match &held.direct {
            Some(direct) => direct.migrate_down(migrator, target).await,
            None => {
                let server = self.inner.topology.current();
                server.migrate_down(migrator, target).await
            }
        }
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
        drop(self.conn);
        if let Some(direct) = self.direct {
            direct.close(CLOSE_GRACE).await;
        }
    }
}
