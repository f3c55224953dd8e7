//! Walking a YAML value tree by dotted key path, and saying where a walk
//! stopped — shared by section lookup, `${a.b.c}` references and overrides,
//! so all three report a missing key the same way.

use serde_json::Value;

/// Splits `a.b.c` into its keys; the empty path is the root.
pub(crate) fn split(dotted: &str) -> Vec<String> {
    dotted
        .split('.')
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Joins keys back into `a.b.c`.
pub(crate) fn join(keys: &[String]) -> String {
    keys.join(".")
}

/// `prefix.rest`, without a stray dot when either side is empty.
pub(crate) fn child(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}.{rest}"),
    }
}

/// The value at `keys`, or a message saying which key is missing and which
/// existing key at that level is closest to it.
pub(crate) fn get<'v>(root: &'v Value, keys: &[String]) -> Result<&'v Value, String> {
    let mut node = root;
    for (depth, key) in keys.iter().enumerate() {
        let parent = &keys[..depth];
        node = match node {
            Value::Object(map) => map.get(key).ok_or_else(|| {
                let known: Vec<&str> = map.keys().map(String::as_str).collect();
                missing(key, parent, &known)
            })?,
            Value::Array(items) => key
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index))
                .ok_or_else(|| {
                    format!(
                        "no item `{key}` in the list at `{}` (it has {} items)",
                        join(parent),
                        items.len()
                    )
                })?,
            other => {
                return Err(format!(
                    "cannot look up `{key}`: `{}` is {}, not a mapping",
                    join(parent),
                    kind(other)
                ));
            }
        };
    }
    Ok(node)
}

/// "no key `x` under `a.b` (did you mean `y`?)", listing the keys when none is close.
pub(crate) fn missing(key: &str, parent: &[String], known: &[&str]) -> String {
    let place = if parent.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("under `{}`", join(parent))
    };
    match nearest(key, known) {
        Some(close) => format!("no key `{key}` {place} (did you mean `{close}`?)"),
        None if known.is_empty() => format!("no key `{key}` {place} (it has no keys)"),
        None => format!("no key `{key}` {place} (keys there: {})", known.join(", ")),
    }
}

/// The known key a typo most likely meant: case-insensitive equality first,
/// then the smallest Damerau-Levenshtein distance (transpositions such as
/// `hots`/`host` count once) within a third of the longer name, at least 1.
pub(crate) fn nearest<'k>(typo: &str, known: &[&'k str]) -> Option<&'k str> {
    let typo_lower = typo.to_lowercase();
    known
        .iter()
        .map(|candidate| {
            let distance = strsim::damerau_levenshtein(&typo_lower, &candidate.to_lowercase());
            let limit = (typo.chars().count().max(candidate.chars().count()) / 3).max(1);
            (distance, limit, *candidate)
        })
        .filter(|(distance, limit, _)| distance <= limit)
        .min_by_key(|(distance, _, _)| *distance)
        .map(|(_, _, candidate)| candidate)
}

/// "a string", "a list", … for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
