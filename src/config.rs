//! Loading a YAML config, resolving its `${..}` interpolations, and turning
//! one section into a typed [`DbConfig`].
//!
//! The raw tree is kept so overrides apply before interpolation, as in Hydra;
//! resolution failures are kept per node so they surface only when the
//! section containing them is used, as in OmegaConf.

mod db;
mod defaults;
mod discover;
mod keyword;
mod lenient;
mod masking;
mod migrations;
mod overrides;
mod pooler;
mod report;
mod routing;
mod transaction;
pub(crate) mod tree;
mod yaml_error;

use std::fmt;
use std::path::Path;

use serde_json::Value;

pub use self::db::{DbConfig, SessionConfig, SqliteOptions};
pub use self::discover::DbSection;
pub use self::migrations::MigrationsConfig;
pub use self::pooler::Pooler;
pub use self::routing::{Fallback, RoutingConfig};
pub use self::transaction::{Backoff, Isolation, RetryConfig};
use crate::error::{Error, Result};
use crate::interpolate::{self, Failure};
use crate::redact::Secrets;

/// Keys that may sit beside `config:` in core-lib's wrapped shape
/// (`_target_`, `_instance_key_`, and Hydra's other `_name_` keys).
fn is_hydra_key(key: &str) -> bool {
    key.len() > 2 && key.starts_with('_') && key.ends_with('_')
}

/// A loaded YAML document with its interpolations resolved.
///
/// Its errors never show a secret: values of `password`, `*_password`,
/// `secret` and `token` keys and URL passwords are masked, and values from
/// `${oc.env:..}` are shown by their variable's name.
#[derive(Clone)]
pub struct Config {
    raw: Value,
    resolved: Value,
    failures: Vec<Failure>,
    /// The secrets above, to scrub from every error this config produces.
    secrets: Secrets,
}

impl Config {
    /// Reads and resolves a YAML file.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] whose `path` is the file: it cannot be read, or its
    /// YAML is malformed (the message gives line and column, and quotes the
    /// lines around with secrets masked).
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::config(&name, format!("cannot read the file: {err}")))?;
        Self::parse(&text).map_err(|message| Error::config(name, message))
    }

    /// Parses and resolves YAML text.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] with path `<yaml>` if the YAML is malformed (the
    /// message gives line and column).
    pub fn from_yaml_str(yaml: &str) -> Result<Self> {
        Self::parse(yaml).map_err(|message| Error::config("<yaml>", message))
    }

    /// Wraps a tree built in code (or loaded elsewhere) and resolves it.
    #[must_use]
    pub fn from_value(raw: Value) -> Self {
        let resolved = interpolate::resolve(&raw);
        let secrets = masking::secrets_of(&raw, &resolved.value);
        Self {
            raw,
            resolved: resolved.value,
            failures: resolved.failures,
            secrets,
        }
    }

    fn parse(yaml: &str) -> Result<Self, String> {
        serde_saphyr::from_str::<Value>(yaml)
            .map(Self::from_value)
            .map_err(|err| yaml_error::describe(yaml, &err))
    }

    /// Applies Hydra-style overrides (`core_lib.db.log_queries=true`,
    /// `+new.key=1`, `++key=value`, `~key`) to the document as written, then
    /// resolves interpolations again, so an override can hold `${..}` and
    /// keys that reference an overridden one see the new value.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key of the first override that is
    /// malformed, sets a key that does not exist (with the nearest existing
    /// one), adds one that does, or removes one that does not.
    pub fn with_overrides<I>(mut self, overrides: I) -> Result<Self>
    where
        I: IntoIterator<Item: AsRef<str>>,
    {
        for text in overrides {
            if let Err(err) = overrides::apply(&mut self.raw, text.as_ref()) {
                return Err(self.hide(err));
            }
        }
        Ok(Self::from_value(self.raw))
    }

    /// The typed section at `path` (e.g. `core_lib.db`), validated.
    ///
    /// Accepts both the plain shape (the db keys directly under `path`) and
    /// core-lib's wrapped shape (`_target_`, optional `_instance_key_`, and
    /// the db keys under `config:`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] with the full dotted key path: the section is missing
    /// (naming the nearest existing key), an interpolation inside it failed,
    /// a key is unknown (with a suggestion) or has the wrong type, or a
    /// [`DbConfig::validate`] rule is broken — including a URL that cannot be
    /// built, reported at `<path>.url` with the redacted URL.
    pub fn at(&self, path: &str) -> Result<DbConfig> {
        self.section_at(path).map_err(|err| self.hide(err))
    }

    fn section_at(&self, path: &str) -> Result<DbConfig> {
        let keys = tree::split(path);
        if let Some(failure) = self.failure_within(&keys) {
            return Err(Error::config(&failure.path, &failure.message));
        }
        let node = tree::get(&self.resolved, &keys).map_err(|why| Error::config(path, why))?;
        let (section, node) = unwrap_target(&tree::join(&keys), node)?;
        if !node.is_object() {
            return Err(Error::config(
                section,
                format!(
                    "expected a mapping of db keys (url, session, log_queries, …), found {}",
                    tree::kind(node)
                ),
            ));
        }
        let config: DbConfig = serde_path_to_error::deserialize(node)
            .map_err(|err| report::deserialize_error(&section, &err))?;
        config.validate().map_err(|err| match err {
            Error::Config { path, message } => Error::config(tree::child(&section, &path), message),
            Error::Url { url, message } => Error::config(
                tree::child(&section, "url"),
                format!("invalid database url `{url}`: {message}"),
            ),
            other => other,
        })?;
        Ok(config)
    }

    /// The resolved value at a dotted path, or `None` if it is missing or its
    /// interpolation failed ([`Config::at`] reports why).
    #[must_use]
    pub fn value(&self, path: &str) -> Option<&Value> {
        let keys = tree::split(path);
        if self.failure_within(&keys).is_some() {
            return None;
        }
        tree::get(&self.resolved, &keys).ok()
    }

    /// The first failed interpolation inside, or above, the node at `keys`.
    fn failure_within(&self, keys: &[String]) -> Option<&Failure> {
        self.failures
            .iter()
            .find(|failure| failure.at.starts_with(keys) || keys.starts_with(&failure.at))
    }
}

/// Steps into `config:` when the section is core-lib's wrapped shape.
fn unwrap_target<'v>(path: &str, node: &'v Value) -> Result<(String, &'v Value)> {
    let Value::Object(map) = node else {
        return Ok((path.to_owned(), node));
    };
    if !map.contains_key("_target_") {
        return Ok((path.to_owned(), node));
    }
    if let Some(stray) = map
        .keys()
        .find(|key| *key != "config" && !is_hydra_key(key))
    {
        let hint = tree::nearest(stray, &["config"])
            .map(|close| format!("did you mean `{close}`? "))
            .unwrap_or_default();
        return Err(Error::config(
            tree::child(path, stray),
            format!(
                "unknown key `{stray}` beside `_target_`; {hint}\
                 (the db keys go under `config:`)"
            ),
        ));
    }
    let config = map.get("config").ok_or_else(|| {
        Error::config(
            path,
            "missing key `config` (a section with `_target_` holds its db keys under `config:`)",
        )
    })?;
    Ok((tree::child(path, "config"), config))
}

impl fmt::Debug for Config {
    /// Only the top-level keys: values may hold secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&String> = match &self.resolved {
            Value::Object(map) => map.keys().collect(),
            _ => Vec::new(),
        };
        f.debug_struct("Config")
            .field("keys", &keys)
            .finish_non_exhaustive()
    }
}
