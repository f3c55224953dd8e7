//! Schema migrations on a pooled connection, through sqlx's migrator, plus
//! what differs per backend: SQLite's missing migration lock, and whether a
//! failed migration left anything behind (transactional DDL).

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use sqlx::Database;
use sqlx::migrate::{AppliedMigration, Migrate, MigrateError, Migrator};
use sqlx::pool::PoolOptions;

use super::{Conn, Pool, mysql, postgres};
use crate::error::{Error, Result};

/// The table sqlx's migrator records applied migrations in (its default).
pub(crate) const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// What the migrations table says: the applied migrations and the version a
/// failed migration left half-applied, if any.
pub(crate) struct Recorded {
    pub(crate) applied: Vec<AppliedMigration>,
    pub(crate) dirty: Option<i64>,
}

/// Held while one registry migrates a SQLite file: sqlx locks PostgreSQL
/// (advisory lock) and MariaDB (`GET_LOCK`) itself, but not SQLite, where two
/// instances would both apply the same migration. The lock is on a sidecar
/// file, never the database file: closing any descriptor of the database
/// file would drop the POSIX locks SQLite holds on it in this process.
pub(crate) struct MigrationLock {
    _file: Option<File>,
}

impl Pool {
    /// Waits until no other process migrates this database.
    pub(crate) async fn migration_lock(&self) -> Result<MigrationLock> {
        let Self::Sqlite(pools) = self else {
            return Ok(MigrationLock { _file: None });
        };
        let mut path = pools
            .sessions
            .connect_options()
            .get_filename()
            .as_os_str()
            .to_owned();
        path.push(".migrate-lock");
        let path = PathBuf::from(path);
        let locked = tokio::task::spawn_blocking(move || {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|locked| locked)
        .map_err(|err| Error::Migration {
            version: None,
            file: None,
            message: format!("cannot lock the SQLite database for migrating: {err}"),
        })?;
        Ok(MigrationLock {
            _file: Some(locked),
        })
    }

    /// Reverts the applied migrations newer than `target`, newest first.
    ///
    /// On a one-connection pool of its own, closed afterwards: sqlx's `undo`
    /// takes a pool (given a connection, its future cannot be spawned), and
    /// keeps its migration lock when a revert fails — closing the connection
    /// is what releases it.
    pub(crate) async fn migrate_down(
        &self,
        migrator: &Migrator,
        target: i64,
    ) -> Result<(), MigrateError> {
        each_backend!(self, Pool(pools) => match &pools.engine {
            Some(engine) => undo_alone(engine, migrator, target).await,
            None => Err(MigrateError::Execute(sqlx::Error::Protocol(
                "migrations run on the server the registry started on".into(),
            ))),
        })
    }
}

async fn undo_alone<DB: Database>(
    pool: &sqlx::Pool<DB>,
    migrator: &Migrator,
    target: i64,
) -> Result<(), MigrateError>
where
    DB::Connection: Migrate,
{
    let single = PoolOptions::<DB>::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let reverted = migrator.undo(&single, target).await;
    single.close().await;
    reverted
}

impl Conn {
    /// Applies the pending migrations up to `target` (all when `None`).
    ///
    /// `run_direct` is sqlx's entry point for a connection at hand: its
    /// `Acquire`-generic `run` makes futures that cannot be spawned.
    ///
    /// On PostgreSQL the migrations table is named with the schema it is in
    /// now: a migration may empty `search_path` for the rest of the
    /// connection (the first statement of every `pg_dump` output does),
    /// which would leave the migrator unable to find its own table.
    pub(crate) async fn migrate_up(
        &mut self,
        migrator: &Migrator,
        target: Option<i64>,
    ) -> Result<(), MigrateError> {
        if let Self::Postgres(conn) = self {
            let schema: String = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(&mut **conn)
                .await?;
            let mut qualified = Migrator::with_migrations(migrator.iter().cloned().collect());
            qualified.set_ignore_missing(migrator.ignore_missing);
            qualified.set_locking(migrator.locking);
            qualified.dangerous_set_table_name(format!(
                "{}.{MIGRATIONS_TABLE}",
                postgres::quote_identifier(&schema)
            ));
            return qualified.run_direct(target, &mut **conn, false).await;
        }
        each_backend!(self, Conn(conn) => migrator.run_direct(target, &mut **conn, false).await)
    }

    /// Takes the database's migration lock on this connection: a
    /// PostgreSQL advisory lock, a MariaDB named lock (sqlx's does not hold
    /// there; see `mysql::lock_migrations`). SQLite's is the file lock of
    /// [`Pool::migration_lock`].
    pub(crate) async fn lock_migrations(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Self::MySql(conn) => mysql::lock_migrations(conn).await,
            Self::Postgres(conn) => postgres::lock_migrations(conn).await,
            Self::Sqlite(_) => Ok(()),
        }
    }

    /// Releases [`lock_migrations`](Self::lock_migrations)' lock.
    pub(crate) async fn unlock_migrations(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Self::MySql(conn) => mysql::unlock_migrations(conn).await,
            Self::Postgres(conn) => postgres::unlock_migrations(conn).await,
            Self::Sqlite(_) => Ok(()),
        }
    }

    /// The migrations table's contents (the table is created when missing,
    /// as sqlx's migrator does).
    pub(crate) async fn recorded_migrations(&mut self) -> Result<Recorded, MigrateError> {
        each_backend!(self, Conn(conn) => {
            conn.ensure_migrations_table(MIGRATIONS_TABLE).await?;
            Ok(Recorded {
                dirty: conn.dirty_version(MIGRATIONS_TABLE).await?,
                applied: conn.list_applied_migrations(MIGRATIONS_TABLE).await?,
            })
        })
    }

    /// Whether a failed migration leaves nothing behind: PostgreSQL and
    /// SQLite run DDL inside the transaction; MySQL and MariaDB commit each
    /// DDL statement on their own.
    pub(crate) fn has_transactional_ddl(&self) -> bool {
        !matches!(self, Self::MySql(_))
    }

    /// Which of `statements` fails, found by running them again inside a
    /// transaction that is always rolled back. Only where DDL is
    /// transactional; `None` elsewhere, or when none fails this time.
    pub(crate) async fn first_failing(&mut self, statements: &[String]) -> Option<usize> {
        if !self.has_transactional_ddl() || self.begin(false, None).await.is_err() {
            return None;
        }
        let mut failing = None;
        for (index, statement) in statements.iter().enumerate() {
            if self.execute_unprepared(statement).await.is_err() {
                failing = Some(index);
                break;
            }
        }
        if self.rollback().await.is_err() {
            self.close_on_drop();
        }
        failing
    }
}
