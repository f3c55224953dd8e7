//! The `migrations:` block of a `db` section: where the schema's migration
//! files are and whether connecting applies them.

use std::path::PathBuf;

use serde::Deserialize;

use super::{defaults, lenient};
use crate::url::UrlConfig;

/// Schema migrations in sqlx's directory format (`<version>_<name>.sql`, or
/// reversible `.up.sql` / `.down.sql` pairs). When a section has this block,
/// the migrations own the schema: `create_db` creates the database but no
/// longer the registered entities' tables.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationsConfig {
    /// The directory of migration files, relative to the working directory
    /// (default `migrations`, like `sqlx migrate`).
    pub path: PathBuf,
    /// Apply pending migrations when the registry connects (default `false`).
    #[serde(deserialize_with = "lenient::flag")]
    pub auto: bool,
    /// The server itself, when `url` reaches it through a transaction
    /// pooler (`session.pooler: transaction`): migrations need a server
    /// session of their own (an advisory lock, DDL outside a transaction),
    /// so they connect here, one connection, closed afterwards. A string
    /// or parts, as `url`. Default none.
    pub direct_url: Option<UrlConfig>,
}

impl Default for MigrationsConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from(defaults::MIGRATIONS_PATH),
            auto: defaults::MIGRATIONS_AUTO,
            direct_url: None,
        }
    }
}

impl MigrationsConfig {
    /// Migrations in `path`, applied on connect when `auto` is true.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>, auto: bool) -> Self {
        Self {
            path: path.into(),
            auto,
            direct_url: None,
        }
    }

    /// Sets `direct_url`: where migrations connect when `url` goes through
    /// a transaction pooler.
    #[must_use]
    pub fn direct_url(mut self, url: impl Into<UrlConfig>) -> Self {
        self.direct_url = Some(url.into());
        self
    }
}
