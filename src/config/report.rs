//! Turns serde's messages into config errors a person can act on: the full
//! key path, "did you mean", and "expected X, found Y" in that order.

use super::tree;
use crate::error::Error;

/// The typed-deserialization error at `section` as an [`Error::Config`].
pub(crate) fn deserialize_error(
    section: &str,
    err: &serde_path_to_error::Error<serde_json::Error>,
) -> Error {
    let relative = err.path().to_string();
    let relative = if relative == "." {
        String::new()
    } else {
        relative
    };
    let path = tree::child(section, &relative);
    let message = err.inner().to_string();
    let message = unknown_key(&message)
        .or_else(|| missing_key(&message))
        .or_else(|| found_after_expected(&message))
        .unwrap_or(message);
    Error::config(path, message)
}

/// `unknown field `x`, expected one of `a`, `b`` → suggestion plus the valid keys.
fn unknown_key(message: &str) -> Option<String> {
    message.strip_prefix("unknown field `")?;
    let mut names = message.split('`').skip(1).step_by(2);
    let typo = names.next()?;
    let valid: Vec<&str> = names.collect();
    Some(if valid.is_empty() {
        format!("unknown key `{typo}` (no keys are allowed here)")
    } else {
        let list = valid.join(", ");
        match tree::nearest(typo, &valid) {
            Some(close) => {
                format!("unknown key `{typo}`; did you mean `{close}`? (valid keys: {list})")
            }
            None => format!("unknown key `{typo}` (valid keys: {list})"),
        }
    })
}

/// `missing field `url`` → `missing key `url``.
fn missing_key(message: &str) -> Option<String> {
    message
        .strip_prefix("missing field ")
        .map(|name| format!("missing key {name}"))
}

/// `invalid type: string "x", expected Y` → `expected Y, found string "x"`.
fn found_after_expected(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))?;
    let (found, expected) = rest.split_once(", expected ")?;
    let expected = if expected.starts_with("struct ") {
        "a mapping"
    } else {
        expected
    };
    Some(format!("expected {expected}, found {found}"))
}
