//! Finding every database section under a root of the config, so many named
//! databases can be built without listing their paths.

use serde_json::{Map, Value};

use super::{Config, tree};
use crate::error::{Error, Result};

/// A database section found in a [`Config`]: where it is and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSection {
    /// The database's name: core-lib's `_instance_key_` in the wrapped
    /// shape, otherwise the last segment of `path` (`analytics_db` for
    /// `core_lib.analytics_db`).
    pub name: String,
    /// The dotted path to pass to [`Config::at`].
    pub path: String,
}

impl Config {
    /// Every database section at or under `root` (`""` for the whole file),
    /// sorted by key at each level: each mapping with a `url` key, and each core-lib wrapped
    /// section (`_target_` with the db keys under `config:`). The search does
    /// not descend into a section it found.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `root` does not exist (naming the nearest key).
    pub fn sections_with_url(&self, root: &str) -> Result<Vec<DbSection>> {
        let keys = tree::split(root);
        let node =
            tree::get(&self.resolved, &keys).map_err(|why| self.hide(Error::config(root, why)))?;
        let mut found = Vec::new();
        collect(node, &mut keys.clone(), &mut found);
        Ok(found)
    }

    /// The section at `path` as a [`DbSection`], named like a discovered one.
    #[must_use]
    pub fn section(&self, path: &str) -> DbSection {
        let keys = tree::split(path);
        let node = tree::get(&self.resolved, &keys).ok();
        let name = node
            .and_then(Value::as_object)
            .and_then(instance_key)
            .or_else(|| keys.last().cloned())
            .unwrap_or_default();
        DbSection {
            name,
            path: tree::join(&keys),
        }
    }
}

fn collect(node: &Value, keys: &mut Vec<String>, found: &mut Vec<DbSection>) {
    let Value::Object(map) = node else {
        return;
    };
    if is_db_section(map) {
        found.push(DbSection {
            name: instance_key(map)
                .or_else(|| keys.last().cloned())
                .unwrap_or_default(),
            path: tree::join(keys),
        });
        return;
    }
    for (key, child) in map {
        keys.push(key.clone());
        collect(child, keys, found);
        keys.pop();
    }
}

fn is_db_section(map: &Map<String, Value>) -> bool {
    let wrapped = map.contains_key("_target_")
        && map
            .get("config")
            .and_then(Value::as_object)
            .is_some_and(|config| config.contains_key("url"));
    wrapped || map.contains_key("url")
}

/// core-lib's `_instance_key_`, when the section is the wrapped shape and has one.
fn instance_key(map: &Map<String, Value>) -> Option<String> {
    if !map.contains_key("_target_") {
        return None;
    }
    match map.get("_instance_key_")? {
        Value::String(name) => Some(name.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
