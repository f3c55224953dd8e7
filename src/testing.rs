//! A database of its own for each test, made from the application's own
//! config: created fresh, migrated, loaded with fixtures, and dropped after
//! the test — also when it fails or panics.
//!
//! ```no_run
//! # async fn run() {
//! use sea_orm::ConnectionTrait;
//!
//! // In a `#[tokio::test]`: the config section `core_lib.db` of
//! // $SQLREG_TEST_CONFIG or tests/config.yaml (SQLite when neither exists).
//! sqlreg::testing::TestDatabase::builder()
//!     .fixtures(["users"]) // tests/fixtures/users.sql
//!     .run(async |db| {
//!         db.engine().execute_unprepared("DELETE FROM users").await.unwrap();
//!     })
//!     .await;
//! # }
//! ```

mod owner;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use futures_util::FutureExt;
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::config::{Config, DbConfig};
use crate::driver::scratch;
use crate::error::{Error, Result};
use crate::migrate::Migrations;
use crate::registry::SqlConnectionRegistry;
use crate::schema::RegistryBuilder;
use crate::url::{DbUrl, UrlParts};

/// Where the test config is looked for when `SQLREG_TEST_CONFIG` is unset.
const DEFAULT_CONFIG_FILE: &str = "tests/config.yaml";
/// The section of it used unless [`TestDatabaseBuilder::section`] says otherwise.
const DEFAULT_SECTION: &str = "core_lib.db";
/// Where `fixtures(["users"])` finds `users.sql`.
const DEFAULT_FIXTURES_DIR: &str = "tests/fixtures";

/// A fresh database for one test, and the registry connected to it.
/// [`TestDatabaseBuilder::run`] drops it after the test;
/// [`TestDatabase::remove`] does so by hand.
pub struct TestDatabase {
    registry: SqlConnectionRegistry,
    /// The configured server (for SQLite, the configured file), for dropping.
    server: DbUrl,
    config: DbConfig,
    name: String,
}

/// Registers an entity on the registry builder.
type AddEntity = Box<dyn FnOnce(RegistryBuilder) -> RegistryBuilder + Send>;

/// How to make a [`TestDatabase`]. Built with [`TestDatabase::builder`].
#[must_use]
pub struct TestDatabaseBuilder {
    config: Option<DbConfig>,
    config_file: Option<PathBuf>,
    section: String,
    migrations: Option<PathBuf>,
    fixtures: Vec<String>,
    fixtures_dir: PathBuf,
    entities: Vec<AddEntity>,
    #[cfg(feature = "sea-orm-migration")]
    sea_orm_up: Option<crate::migrate::sea_orm::SeaOrmUp>,
}

impl TestDatabase {
    /// Starts from the defaults: section `core_lib.db` of the file named by
    /// `SQLREG_TEST_CONFIG`, else `tests/config.yaml`, else a SQLite file;
    /// the section's `migrations.path` applied; no fixtures.
    pub fn builder() -> TestDatabaseBuilder {
        TestDatabaseBuilder {
            config: None,
            config_file: None,
            section: DEFAULT_SECTION.to_owned(),
            migrations: None,
            fixtures: Vec::new(),
            fixtures_dir: PathBuf::from(DEFAULT_FIXTURES_DIR),
            entities: Vec::new(),
            #[cfg(feature = "sea-orm-migration")]
            sea_orm_up: None,
        }
    }

    /// The registry connected to this test's database.
    #[must_use]
    pub fn registry(&self) -> &SqlConnectionRegistry {
        &self.registry
    }

    /// The database's name (for SQLite, its directory's name).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the registry and drops the database.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] or [`Error::Query`] when the server refuses to
    /// drop it (a later run removes it once this process has ended).
    pub async fn remove(self) -> Result<()> {
        self.registry.close().await;
        scratch::drop(&self.server, &self.config, &self.name).await
    }
}

impl TestDatabaseBuilder {
    /// Uses this section instead of reading a config file.
    pub fn config(mut self, config: DbConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Reads this file instead of `$SQLREG_TEST_CONFIG` / `tests/config.yaml`.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// The section of the config file to use (default `core_lib.db`).
    pub fn section(mut self, path: impl Into<String>) -> Self {
        self.section = path.into();
        self
    }

    /// Applies the migrations in `dir` instead of the section's `migrations.path`.
    pub fn migrations(mut self, dir: impl Into<PathBuf>) -> Self {
        self.migrations = Some(dir.into());
        self
    }

    /// Runs `<fixtures dir>/<name>.sql` for each name, in order, after the
    /// migrations.
    pub fn fixtures<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.fixtures.extend(names.into_iter().map(Into::into));
        self
    }

    /// Where fixture files are (default `tests/fixtures`).
    pub fn fixtures_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.fixtures_dir = dir.into();
        self
    }

    /// Creates this entity's table, as [`RegistryBuilder::entity`] does
    /// (when the section has no migrations).
    pub fn entity<E: EntityTrait + Send>(mut self, entity: E) -> Self {
        self.entities
            .push(Box::new(move |builder| builder.entity(entity)));
        self
    }

    /// Applies this sea-orm-migration migrator instead of a migrations
    /// directory.
    #[cfg(feature = "sea-orm-migration")]
    pub fn sea_orm_migrator<M: sea_orm_migration::MigratorTrait + 'static>(mut self) -> Self {
        self.sea_orm_up = Some(crate::migrate::sea_orm::up_all::<M>);
        self
    }

    /// Creates the database, migrates it, loads the fixtures and connects.
    /// Databases left by runs whose process has ended are dropped first.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the config cannot be read, [`Error::Connect`]
    /// when the server cannot be reached or the database not created,
    /// [`Error::Migration`] when a migration fails, [`Error::Query`] naming
    /// the fixture file whose SQL fails.
    pub async fn create(self) -> Result<TestDatabase> {
        let config = match self.config {
            Some(config) => config,
            None => configured(self.config_file, &self.section)?,
        };
        let server = config.url.to_db_url()?;
        remove_stale(&config).await?;
        let name = owner::fresh_name();
        let url = scratch::prepare(&server, &name)?;
        let migrations = match self.migrations {
            Some(dir) => Some(Migrations::from_dir(dir)?),
            None => Migrations::from_config(&config)?,
        };
        let mut scratch_config = config.clone().url(parts(&url)).create_db(true);
        // Applied below whatever `auto` says; the entities' tables are left
        // to the migrations, as in the application.
        scratch_config.migrations = None;
        let mut builder = SqlConnectionRegistry::builder(scratch_config);
        #[cfg(feature = "sea-orm-migration")]
        let migrations_own_schema = migrations.is_some() || self.sea_orm_up.is_some();
        #[cfg(not(feature = "sea-orm-migration"))]
        let migrations_own_schema = migrations.is_some();
        if !migrations_own_schema {
            for add in self.entities {
                builder = add(builder);
            }
        }
        let database = TestDatabase {
            registry: builder.connect().await?,
            server,
            config,
            name,
        };
        #[cfg(feature = "sea-orm-migration")]
        if let Some(up) = self.sea_orm_up
            && let Err(err) = crate::migrate::sea_orm::apply(&database.registry, up).await
        {
            let _ = database.remove().await;
            return Err(err);
        }
        let prepared = prepare(
            &database.registry,
            migrations,
            &self.fixtures_dir,
            &self.fixtures,
        )
        .await;
        if let Err(err) = prepared {
            let _ = database.remove().await;
            return Err(err);
        }
        Ok(database)
    }

    /// Runs `test` on a fresh database (see [`create`](Self::create)), then
    /// drops the database — also when `test` panics, whose panic then
    /// continues so the test fails as usual.
    ///
    /// # Panics
    ///
    /// When the database cannot be created, with the reason; and when `test` panics.
    pub async fn run<T>(self, test: impl AsyncFnOnce(SqlConnectionRegistry) -> T) -> T {
        let database = match self.create().await {
            Ok(database) => database,
            Err(err) => panic!("cannot create the test database: {err}"),
        };
        let outcome = AssertUnwindSafe(test(database.registry.clone()))
            .catch_unwind()
            .await;
        let name = database.name.clone();
        if let Err(err) = database.remove().await {
            tracing::warn!(database = %name, error = %err, "test database not dropped; the next run removes it");
        }
        match outcome {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// The section from `$SQLREG_TEST_CONFIG`, `tests/config.yaml`, or (when
/// neither exists) a SQLite file.
fn configured(file: Option<PathBuf>, section: &str) -> Result<DbConfig> {
    let file = file
        .or_else(|| std::env::var_os("SQLREG_TEST_CONFIG").map(PathBuf::from))
        .or_else(|| Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|f| f.is_file()));
    match file {
        Some(file) => Config::from_yaml_file(&file)?.at(section),
        None => Ok(DbConfig::new("sqlite://")),
    }
}

/// The URL as core-lib parts, password included, for a config section.
fn parts(url: &DbUrl) -> UrlParts {
    let mut parts = UrlParts::new(url.dialect());
    parts.username = url.username().map(str::to_owned);
    parts.password = url.password().map(str::to_owned);
    parts.password_file = url.password_file().map(Path::to_path_buf);
    parts.host = url.host().map(str::to_owned);
    parts.port = url.port();
    parts.file = url.database().map(str::to_owned);
    parts.query = url.query().iter().cloned().collect();
    parts
}

/// Applies the migrations and runs the fixture files.
async fn prepare(
    db: &SqlConnectionRegistry,
    migrations: Option<Migrations>,
    fixtures_dir: &Path,
    fixtures: &[String],
) -> Result<()> {
    if let Some(migrations) = migrations {
        migrations.up(db, None).await?;
    }
    for fixture in fixtures {
        let file = fixtures_dir.join(format!("{fixture}.sql"));
        let sql = std::fs::read_to_string(&file).map_err(|err| {
            Error::config(
                file.display().to_string(),
                format!("cannot read fixture: {err}"),
            )
        })?;
        db.session(async |s| {
            s.execute_unprepared(&sql)
                .await
                .map(drop)
                .map_err(Error::from)
        })
        .await
        .map_err(|err| {
            Error::config(file.display().to_string(), format!("fixture failed: {err}"))
        })?;
    }
    Ok(())
}

/// Drops the scratch databases on `config`'s server (for SQLite, the
/// scratch files in the temporary directory) whose owning process has
/// ended — never those of a process still running, such as a suite running
/// beside this one. Returns the names dropped. [`TestDatabaseBuilder::create`]
/// calls it; call it yourself to clean up a server in CI.
///
/// # Errors
///
/// [`Error::Connect`] when the server cannot be reached, [`Error::Query`]
/// when it refuses to list or drop a database.
pub async fn remove_stale(config: &DbConfig) -> Result<Vec<String>> {
    let server = config.url.to_db_url()?;
    let mut removed = Vec::new();
    for name in scratch::list(&server, config, &owner::host_prefix()).await? {
        if owner::owner_is_gone(&name) {
            scratch::drop(&server, config, &name).await?;
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        tracing::info!(?removed, "test databases of ended runs dropped");
    }
    Ok(removed)
}

/// Runs `future` to completion on a new multi-threaded tokio runtime: what
/// `#[sqlreg::test]` wraps a test in.
///
/// # Panics
///
/// When the runtime cannot be built, and when `future` panics.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the test")
        .block_on(future)
}

/// The prefix of the scratch database names this host's tests create
/// (`sqlreg_t_<host hash>_`); a name goes on with `<pid>_<start time>_<n>`.
#[must_use]
pub fn name_prefix() -> String {
    owner::host_prefix()
}
