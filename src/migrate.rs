//! Schema migrations from a directory in sqlx's format, applied through
//! sqlx's migrator on one of the registry's connections.

mod failure;
mod new_file;
#[cfg(feature = "sea-orm-migration")]
pub(crate) mod sea_orm;
mod statements;
mod status;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use sqlx::migrate::{Migration, Migrator};

use crate::config::DbConfig;
use crate::error::{Error, Result};
use crate::registry::{MigrationConn, SqlConnectionRegistry};
pub use status::{MigrationState, MigrationStatus};

/// The migrations of one directory: `<version>_<name>.sql`, or reversible
/// `<version>_<name>.up.sql` / `.down.sql` pairs (sqlx's format, so
/// `sqlx migrate` and `sqlreg migrate` read the same files).
///
/// ```no_run
/// # async fn run(db: sqlreg::SqlConnectionRegistry) -> sqlreg::Result<()> {
/// let migrations = sqlreg::Migrations::from_dir("migrations")?;
/// migrations.up(&db, None).await?;
/// for migration in migrations.status(&db).await? {
///     println!("{} {} {}", migration.version, migration.state, migration.description);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Migrations {
    dir: PathBuf,
    migrator: Migrator,
    /// The file of each migration, keyed by version and whether it is a down file.
    files: BTreeMap<(i64, bool), PathBuf>,
}

impl Migrations {
    /// Reads the migration files in `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Migration`] when the directory cannot be read or a file name
    /// has no numeric version.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        let resolved = sqlx::migrate::resolve_blocking(&dir).map_err(|err| Error::Migration {
            version: None,
            file: Some(dir.clone()),
            message: format!("cannot read the migrations in {}: {err}", dir.display()),
        })?;
        let files = resolved
            .iter()
            .map(|(m, path)| {
                (
                    (m.version, m.migration_type.is_down_migration()),
                    path.clone(),
                )
            })
            .collect();
        let migrations = resolved.into_iter().map(|(m, _)| m).collect();
        Ok(Self {
            dir,
            migrator: Migrator::with_migrations(migrations),
            files,
        })
    }

    /// The migrations a `db` section configures (`migrations.path`), or
    /// `None` when it has no `migrations` block.
    ///
    /// # Errors
    ///
    /// As [`from_dir`](Self::from_dir).
    pub fn from_config(config: &DbConfig) -> Result<Option<Self>> {
        config
            .migrations
            .as_ref()
            .map(|migrations| Self::from_dir(&migrations.path))
            .transpose()
    }

    /// The directory the migrations were read from.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of an up (or simple) migration.
    fn file(&self, version: i64) -> Option<&PathBuf> {
        self.files.get(&(version, false))
    }

    fn ups(&self) -> impl Iterator<Item = &Migration> {
        self.migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
    }

    /// Applies the pending migrations in version order, up to and including
    /// `to` (all when `None`), each in its own transaction, under a lock that
    /// makes concurrent instances wait and then find nothing left to do.
    /// Returns the versions that were pending before and are applied now.
    ///
    /// # Errors
    ///
    /// [`Error::Migration`] naming the file and, where it can be told, the
    /// statement that failed; the migrations before it stay applied. A file
    /// changed after it was applied, or a migration left half-applied on
    /// MariaDB, is an error that says how to recover.
    pub async fn up(&self, db: &SqlConnectionRegistry, to: Option<i64>) -> Result<Vec<i64>> {
        let before = self.applied_versions(db).await?;
        let mut migrating = db.migration_conn().await?;
        if let Err(err) = migrating.conn.migrate_up(&self.migrator, to).await {
            return Err(failure::explain(self, &mut migrating, err).await);
        }
        migrating.release().await;
        let after = self.applied_versions(db).await?;
        let mut applied: Vec<i64> = after.difference(&before).copied().collect();
        applied.sort_unstable();
        if !applied.is_empty() {
            tracing::info!(?applied, dir = %self.dir.display(), "migrations applied");
        }
        Ok(applied)
    }

    /// Reverts applied migrations, newest first: those newer than `to`, or
    /// only the newest one when `to` is `None`. Returns the reverted versions.
    ///
    /// # Errors
    ///
    /// [`Error::Migration`] when a migration to revert has no `.down.sql`
    /// file (nothing is reverted then), or a down migration fails (naming it).
    pub async fn down(&self, db: &SqlConnectionRegistry, to: Option<i64>) -> Result<Vec<i64>> {
        let applied = self.applied_versions(db).await?;
        let mut newest_first: Vec<i64> = applied.iter().copied().collect();
        newest_first.sort_unstable_by(|a, b| b.cmp(a));
        let target = match to {
            Some(to) => to,
            None => newest_first.get(1).copied().unwrap_or(0),
        };
        let reverting: Vec<i64> = newest_first.into_iter().filter(|v| *v > target).collect();
        if let Some(version) = reverting
            .iter()
            .find(|v| !self.files.contains_key(&(**v, true)))
        {
            return Err(Error::Migration {
                version: Some(*version),
                file: self.file(*version).cloned(),
                message: format!(
                    "migration {version} cannot be reverted: it has no `.down.sql` file \
                     (write migrations as `<version>_<name>.up.sql` / `.down.sql` pairs to revert them); \
                     nothing was reverted"
                ),
            });
        }
        let migrating = db.migration_conn().await?;
        let reverted = db.migrate_down(&migrating, &self.migrator, target).await;
        migrating.release().await;
        if let Err(err) = reverted {
            let still = self.applied_versions(db).await.unwrap_or_default();
            let failed = reverting.iter().copied().find(|v| still.contains(v));
            return Err(failure::revert_failed(self, failed, &err));
        }
        Ok(reverting)
    }

    /// Every migration with its state: applied, pending, changed after it
    /// was applied, half-applied (MariaDB), or applied but missing here.
    ///
    /// # Errors
    ///
    /// [`Error::Migration`] when the migrations table cannot be read, or
    /// the errors of [`SqlConnectionRegistry::get`] when no connection can be had.
    pub async fn status(&self, db: &SqlConnectionRegistry) -> Result<Vec<MigrationStatus>> {
        let mut migrating = db.migration_conn().await?;
        let recorded = migrating.conn.recorded_migrations().await;
        migrating.release().await;
        let recorded = recorded.map_err(|err| failure::unreadable(&err))?;
        Ok(status::list(self, &recorded))
    }

    async fn applied_versions(&self, db: &SqlConnectionRegistry) -> Result<HashSet<i64>> {
        Ok(self
            .status(db)
            .await?
            .into_iter()
            .filter(|m| m.state != MigrationState::Pending)
            .map(|m| m.version)
            .collect())
    }

    /// Writes a new reversible migration `<timestamp>_<name>.up.sql` and
    /// `.down.sql` in `dir` (created if missing) and returns both paths.
    ///
    /// # Errors
    ///
    /// [`Error::Migration`] for a name that is not letters, digits and `_`,
    /// or when the files cannot be written.
    pub fn create(dir: impl AsRef<Path>, name: &str) -> Result<[PathBuf; 2]> {
        new_file::create(dir.as_ref(), name)
    }
}

/// Keeps the connection out of the pool after a failed migration: sqlx does
/// not release its migration lock on error, and closing the connection does.
fn discard(migrating: &mut MigrationConn) {
    migrating.conn.close_on_drop();
}
