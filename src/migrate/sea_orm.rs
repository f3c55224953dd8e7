//! sea-orm-migration's `MigratorTrait` as the owner of the schema, for
//! applications that write their migrations in Rust: run through the
//! registry's engine (its own pool and connection budget) under the same
//! cross-instance lock as the sqlx migrator.

use futures_util::future::BoxFuture;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

use crate::error::{Error, Result};
use crate::registry::SqlConnectionRegistry;

/// Applies every pending migration of one `MigratorTrait` type.
pub(crate) type SeaOrmUp = for<'a> fn(&'a DatabaseConnection) -> BoxFuture<'a, Result<(), DbErr>>;

/// [`SeaOrmUp`] for migrator `M`.
pub(crate) fn up_all<M: MigratorTrait + 'static>(
    engine: &DatabaseConnection,
) -> BoxFuture<'_, Result<(), DbErr>> {
    M::up(engine, None)
}

/// Applies the pending migrations while holding the migration lock, so
/// instances starting together apply each one once. The lock holds one
/// pooled connection and the migrations run on others: the pool needs room
/// for two.
pub(crate) async fn apply(db: &SqlConnectionRegistry, up: SeaOrmUp) -> Result<()> {
    let migrating = db.migration_conn().await?;
    let applied = up(db.engine()).await;
    migrating.release().await;
    applied.map_err(|err| Error::Migration {
        version: None,
        file: None,
        message: format!("a sea-orm migration failed: {err}"),
    })
}
