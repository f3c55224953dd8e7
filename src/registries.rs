//! Many named databases from one config (core-lib's `ConnectionFactoryRegistry`):
//! each section becomes its own [`SqlConnectionRegistry`], looked up by name.

use futures_util::future::join_all;

mod builder;

pub use self::builder::RegistriesBuilder;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::registry::SqlConnectionRegistry;

/// The name [`SqlConnectionRegistries::get_default`] falls back to when no
/// database was marked with [`RegistriesBuilder::default`].
pub const DEFAULT_NAME: &str = "default";

/// Every database an application names, each with its own pool.
///
/// ```no_run
/// # async fn run() -> sqlreg::Result<()> {
/// let config = sqlreg::Config::from_yaml_file("config.yaml")?;
/// let dbs = sqlreg::SqlConnectionRegistries::builder(&config)
///     .section("core_lib.db")           // named `db`
///     .named("reports", "core_lib.analytics_db")
///     .default("db")
///     .connect()
///     .await?;
/// let main = dbs.get_default()?;
/// let reports = dbs.get("reports")?;
/// # let _ = (main, reports);
/// dbs.close_all().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqlConnectionRegistries {
    databases: Vec<(String, SqlConnectionRegistry)>,
    default: Option<usize>,
}

impl SqlConnectionRegistries {
    /// Starts collecting the database sections of `config`.
    pub fn builder(config: &Config) -> RegistriesBuilder<'_> {
        RegistriesBuilder::new(config)
    }

    /// The database called `name`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDatabase`] listing the known names.
    pub fn get(&self, name: &str) -> Result<&SqlConnectionRegistry> {
        self.databases
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, registry)| registry)
            .ok_or_else(|| self.unknown(name))
    }

    /// The default database: the one marked with [`RegistriesBuilder::default`],
    /// else the one named [`DEFAULT_NAME`], else the only one.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDatabase`] (for the name `default`) when there are
    /// several databases and none is the default.
    pub fn get_default(&self) -> Result<&SqlConnectionRegistry> {
        self.default
            .map(|index| &self.databases[index].1)
            .ok_or_else(|| self.unknown(DEFAULT_NAME))
    }

    /// The name of the default database, if there is one.
    #[must_use]
    pub fn default_name(&self) -> Option<&str> {
        self.default.map(|index| self.databases[index].0.as_str())
    }

    /// The names, in the order the databases were registered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.databases.iter().map(|(name, _)| name.as_str())
    }

    /// Every database with its name, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SqlConnectionRegistry)> {
        self.databases
            .iter()
            .map(|(name, registry)| (name.as_str(), registry))
    }

    /// Closes every database at once, each waiting for its own sessions in
    /// flight (see [`SqlConnectionRegistry::close`]).
    pub async fn close_all(&self) {
        close_all(self.databases.iter().map(|(_, registry)| registry)).await;
    }

    fn unknown(&self, name: &str) -> Error {
        Error::UnknownDatabase {
            name: name.to_owned(),
            known: self.names().map(str::to_owned).collect(),
        }
    }
}

/// Closes `registries` all at once.
pub(crate) async fn close_all<'r>(registries: impl Iterator<Item = &'r SqlConnectionRegistry>) {
    join_all(registries.map(SqlConnectionRegistry::close)).await;
}
