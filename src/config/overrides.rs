//! Hydra-style command-line overrides on the raw (uninterpolated) tree:
//! `key=value` changes an existing key, `+key=value` adds a new one,
//! `++key=value` adds or changes, `~key` removes. Values are YAML scalars.

use serde_json::{Map, Value};

use super::tree;
use crate::error::{Error, Result};

/// Applies one override to `root`.
pub(crate) fn apply(root: &mut Value, text: &str) -> Result<()> {
    let (mode, rest) = if let Some(rest) = text.strip_prefix("++") {
        (Mode::Upsert, rest)
    } else if let Some(rest) = text.strip_prefix('+') {
        (Mode::Add, rest)
    } else if let Some(rest) = text.strip_prefix('~') {
        (Mode::Delete, rest)
    } else {
        (Mode::Set, text)
    };
    let (key, value) = match (rest.split_once('='), mode) {
        (Some((key, value)), _) => (key.trim(), Some(value)),
        (None, Mode::Delete) => (rest.trim(), None),
        (None, _) => {
            return Err(Error::config(
                key_part(text),
                "an override is `key=value` (or `+key=value` to add, `~key` to remove)",
            ));
        }
    };
    let keys = tree::split(key);
    let Some((last, parents)) = keys.split_last() else {
        return Err(Error::config(key_part(text), "the override names no key"));
    };
    let missing = tree::get(root, &keys).err();
    match (mode, missing) {
        (Mode::Set, Some(why)) => {
            return Err(Error::config(
                key,
                format!("cannot override: {why}; to add it write `+{key}=...`"),
            ));
        }
        (Mode::Add, None) => {
            return Err(Error::config(
                key,
                format!("already set; to change it write `{key}=...` or `++{key}=...`"),
            ));
        }
        (Mode::Delete, Some(why)) => {
            return Err(Error::config(key, format!("cannot remove: {why}")));
        }
        (Mode::Delete, None) => {
            parent_map(root, parents, key)?.remove(last);
            return Ok(());
        }
        _ => {}
    }
    let value = parse_scalar(value.unwrap_or_default());
    parent_map(root, parents, key)?.insert(last.clone(), value);
    Ok(())
}

/// The leading key of a malformed override, for its error: what follows
/// may be a value, and values are not echoed (`password:hunter2`).
fn key_part(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || "_-.+~".contains(c)))
        .unwrap_or(text.len());
    &text[..end]
}

#[derive(Clone, Copy)]
enum Mode {
    Set,
    Add,
    Upsert,
    Delete,
}

/// The mapping at `parents`, creating missing mappings on the way.
fn parent_map<'v>(
    root: &'v mut Value,
    parents: &[String],
    key: &str,
) -> Result<&'v mut Map<String, Value>> {
    let mut node = root;
    for (depth, name) in parents.iter().enumerate() {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            return Err(not_a_mapping(key, &parents[..depth], node));
        };
        node = map
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if node.is_null() {
        *node = Value::Object(Map::new());
    }
    match node {
        Value::Object(map) => Ok(map),
        other => Err(not_a_mapping(key, parents, other)),
    }
}

fn not_a_mapping(key: &str, at: &[String], node: &Value) -> Error {
    Error::config(
        key,
        format!(
            "`{}` is {}, not a mapping",
            tree::join(at),
            tree::kind(node)
        ),
    )
}

/// A YAML scalar as Hydra reads it; `key=` is the empty string.
fn parse_scalar(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::String(String::new());
    }
    serde_saphyr::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}
