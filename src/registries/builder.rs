//! Collecting the databases of a [`SqlConnectionRegistries`] and opening them
//! all, or none.

use super::{DEFAULT_NAME, SqlConnectionRegistries, close_all};
use crate::config::{Config, DbConfig, DbSection};
use crate::error::{Error, Result};
use crate::registry::SqlConnectionRegistry;

/// Collects the sections to connect; [`connect`](Self::connect) opens them.
#[must_use]
pub struct RegistriesBuilder<'c> {
    config: &'c Config,
    entries: Vec<Entry>,
    default: Option<String>,
    /// The roots given to `discover`, for the error when nothing was found.
    searched: Vec<String>,
    failed: Option<Error>,
}

/// One database to be: a config section to connect, or a registry already open.
struct Entry {
    name: String,
    source: Source,
}

enum Source {
    Section(String),
    Ready(SqlConnectionRegistry),
}

impl Entry {
    fn section(found: DbSection) -> Self {
        Self {
            name: found.name,
            source: Source::Section(found.path),
        }
    }

    /// The key an error about this entry is reported at: the section's path,
    /// or the name given with a ready registry.
    fn key(&self) -> &str {
        match &self.source {
            Source::Section(path) => path,
            Source::Ready(_) => &self.name,
        }
    }

    /// Where the entry came from, for messages.
    fn place(&self) -> String {
        match &self.source {
            Source::Section(path) => format!("`{path}`"),
            Source::Ready(_) => format!("the registry given as `{}`", self.name),
        }
    }
}

impl<'c> RegistriesBuilder<'c> {
    pub(super) fn new(config: &'c Config) -> Self {
        Self {
            config,
            entries: Vec::new(),
            default: None,
            searched: Vec::new(),
            failed: None,
        }
    }

    /// Adds the section at `path`, named by its `_instance_key_` (wrapped
    /// shape) or the last segment of the path (`core_lib.analytics_db` →
    /// `analytics_db`).
    pub fn section(mut self, path: &str) -> Self {
        self.entries.push(Entry::section(self.config.section(path)));
        self
    }

    /// Adds the section at `path` under the name `name`.
    pub fn named(mut self, name: &str, path: &str) -> Self {
        self.entries.push(Entry {
            name: name.to_owned(),
            source: Source::Section(path.to_owned()),
        });
        self
    }

    /// Adds a registry you connected yourself — for instance one built with
    /// [`SqlConnectionRegistry::builder`] to register its entities — under
    /// `name`. From then on the set owns it: [`close_all`](SqlConnectionRegistries::close_all)
    /// closes it, and so does a failed [`connect`](Self::connect).
    pub fn registry(mut self, name: &str, registry: SqlConnectionRegistry) -> Self {
        self.entries.push(Entry {
            name: name.to_owned(),
            source: Source::Ready(registry),
        });
        self
    }

    /// Adds every section found under `root` (see [`Config::sections_with_url`]).
    /// A missing `root` is reported by [`connect`](Self::connect).
    pub fn discover(mut self, root: &str) -> Self {
        self.searched.push(root.to_owned());
        match self.config.sections_with_url(root) {
            Ok(found) => self.entries.extend(found.into_iter().map(Entry::section)),
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
    /// one cannot connect, the ones already open — and every registry given
    /// with [`registry`](Self::registry) — are closed before the error is
    /// returned: no half-built set is left running.
    ///
    /// # Errors
    ///
    /// Before anything connects: [`Error::Config`] for a missing discovery
    /// root, no sections at all, a name used twice (at the second section's
    /// path) or an invalid section; [`Error::UnknownDatabase`] when the name
    /// given to [`default`](Self::default) is not registered. Then the first
    /// [`Error::Connect`] (or other error of [`SqlConnectionRegistry::connect`]).
    pub async fn connect(self) -> Result<SqlConnectionRegistries> {
        let planned = match self.failed {
            Some(err) => Err(err),
            None => self.plan(),
        };
        let (plans, default) = match planned {
            Ok(planned) => planned,
            Err(err) => {
                close_all(self.entries.iter().filter_map(|entry| match &entry.source {
                    Source::Ready(registry) => Some(registry),
                    Source::Section(_) => None,
                }))
                .await;
                return Err(err);
            }
        };
        let mut databases = Vec::with_capacity(plans.len());
        let mut plans = plans.into_iter();
        while let Some((name, plan)) = plans.next() {
            let connected = match plan {
                Plan::Ready(registry) => Ok(registry),
                // Shown as the config shows its own errors: values from
                // `${oc.env:..}` by their variable.
                Plan::Connect(config, path) => SqlConnectionRegistry::connect(*config)
                    .await
                    .map_err(|err| self.config.hide_in(&path, err)),
            };
            match connected {
                Ok(registry) => databases.push((name, registry)),
                Err(err) => {
                    tracing::error!(database = %name, error = %err, "closing the databases already opened");
                    let given_later = plans.filter_map(|(_, plan)| match plan {
                        Plan::Ready(registry) => Some(registry),
                        Plan::Connect(..) => None,
                    });
                    let owned: Vec<_> = databases
                        .into_iter()
                        .map(|(_, r)| r)
                        .chain(given_later)
                        .collect();
                    close_all(owned.iter()).await;
                    return Err(err);
                }
            }
        }
        Ok(SqlConnectionRegistries { databases, default })
    }

    /// What to do for each entry, in order, and the default's index — or the
    /// first problem with any of them, found before anything connects.
    fn plan(&self) -> Result<(Vec<Named<Plan>>, Option<usize>)> {
        if self.entries.is_empty() {
            return Err(Error::config(
                self.searched.join(", "),
                "no database sections here (a section is a mapping with a `url` key, \
                 or core-lib's `_target_` shape with one under `config:`)",
            ));
        }
        for (index, entry) in self.entries.iter().enumerate() {
            if let Some(first) = self.entries[..index]
                .iter()
                .find(|earlier| earlier.name == entry.name)
            {
                return Err(Error::config(
                    entry.key(),
                    format!(
                        "the database name `{}` is already used by {}; \
                         give one of them another name",
                        entry.name,
                        first.place()
                    ),
                ));
            }
        }
        let names: Vec<String> = self.entries.iter().map(|e| e.name.clone()).collect();
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
        let plans = self
            .entries
            .iter()
            .map(|entry| {
                let plan = match &entry.source {
                    Source::Section(path) => {
                        Plan::Connect(Box::new(self.config.at(path)?), path.clone())
                    }
                    Source::Ready(registry) => Plan::Ready(registry.clone()),
                };
                Ok((entry.name.clone(), plan))
            })
            .collect::<Result<_>>()?;
        Ok((plans, default))
    }
}

/// A value with the database name it belongs to.
type Named<T> = (String, T);

/// How [`RegistriesBuilder::connect`] gets each database.
enum Plan {
    /// A section's typed config and its path.
    Connect(Box<DbConfig>, String),
    Ready(SqlConnectionRegistry),
}
