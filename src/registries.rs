//! Many named databases from one config (core-lib's `ConnectionFactoryRegistry`):
//! each section becomes its own [`SqlConnectionRegistry`], looked up by name.

use futures_util::future::join_all;

use crate::config::{Config, DbConfig, DbSection};
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

/// Collects the sections to connect; [`connect`](Self::connect) opens them.
#[must_use]
pub struct RegistriesBuilder<'c> {
    config: &'c Config,
    sections: Vec<DbSection>,
    default: Option<String>,
    /// The roots given to `discover`, for the error when nothing was found.
    searched: Vec<String>,
    failed: Option<Error>,
}

impl SqlConnectionRegistries {
    /// Starts collecting the database sections of `config`.
    pub fn builder(config: &Config) -> RegistriesBuilder<'_> {
        RegistriesBuilder {
            config,
            sections: Vec::new(),
            default: None,
            searched: Vec::new(),
            failed: None,
        }
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

async fn close_all<'r>(registries: impl Iterator<Item = &'r SqlConnectionRegistry>) {
    join_all(registries.map(SqlConnectionRegistry::close)).await;
}

impl RegistriesBuilder<'_> {
    /// Adds the section at `path`, named by its `_instance_key_` (wrapped
    /// shape) or the last segment of the path (`core_lib.analytics_db` →
    /// `analytics_db`).
    pub fn section(mut self, path: &str) -> Self {
        self.sections.push(self.config.section(path));
        self
    }

    /// Adds the section at `path` under the name `name`.
    pub fn named(mut self, name: &str, path: &str) -> Self {
        self.sections.push(DbSection {
            name: name.to_owned(),
            path: path.to_owned(),
        });
        self
    }

    /// Adds every section found under `root` (see [`Config::sections_with_url`]).
    /// A missing `root` is reported by [`connect`](Self::connect).
    pub fn discover(mut self, root: &str) -> Self {
        self.searched.push(root.to_owned());
        match self.config.sections_with_url(root) {
            Ok(found) => self.sections.extend(found),
            Err(err) => {
                self.failed.get_or_insert(err);
            }
        }
        self
    }

    /// Marks the database called `name` as the default.
    pub fn default(mut self, name: &str) -> Self {
        self.default = Some(name.to_owned());
        self
    }

    /// Validates every section, then connects them one after the other. If
    /// one cannot connect, the ones already open are closed before the error
    /// is returned: no half-built set is left running.
    ///
    /// # Errors
    ///
    /// Before anything connects: [`Error::Config`] for a missing discovery
    /// root, no sections at all, a name used twice (at the second section's
    /// path) or an invalid section; [`Error::UnknownDatabase`] when the name
    /// given to [`default`](Self::default) is not registered. Then the first
    /// [`Error::Connect`] (or other error of [`SqlConnectionRegistry::connect`]).
    pub async fn connect(self) -> Result<SqlConnectionRegistries> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let configs = self.validate()?;
        let names: Vec<String> = self.sections.into_iter().map(|s| s.name).collect();
        let default = match &self.default {
            Some(name) => Some(names.iter().position(|n| n == name).ok_or_else(|| {
                Error::UnknownDatabase {
                    name: name.clone(),
                    known: names.clone(),
                }
            })?),
            None if names.len() == 1 => Some(0),
            None => names.iter().position(|n| n == DEFAULT_NAME),
        };
        let mut databases = Vec::with_capacity(names.len());
        for (name, config) in names.into_iter().zip(configs) {
            match SqlConnectionRegistry::connect(config).await {
                Ok(registry) => databases.push((name, registry)),
                Err(err) => {
                    tracing::error!(database = %name, error = %err, "closing the databases already opened");
                    close_all(databases.iter().map(|(_, registry)| registry)).await;
                    return Err(err);
                }
            }
        }
        Ok(SqlConnectionRegistries { databases, default })
    }

    /// Every section's typed config, or the first problem with any of them.
    fn validate(&self) -> Result<Vec<DbConfig>> {
        if self.sections.is_empty() {
            return Err(Error::config(
                self.searched.join(", "),
                "no database sections here (a section is a mapping with a `url` key, \
                 or core-lib's `_target_` shape with one under `config:`)",
            ));
        }
        for (index, section) in self.sections.iter().enumerate() {
            if let Some(first) = self.sections[..index]
                .iter()
                .find(|earlier| earlier.name == section.name)
            {
                return Err(Error::config(
                    &section.path,
                    format!(
                        "the database name `{}` is already used by `{}`; \
                         give one of them another name",
                        section.name, first.path
                    ),
                ));
            }
        }
        self.sections
            .iter()
            .map(|section| self.config.at(&section.path))
            .collect()
    }
}
