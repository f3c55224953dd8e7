//! Keeping a loaded config's secrets out of the errors it produces (and
//! out of what programs print about it, through [`Config::mask`]): the
//! secret values it holds (scrubbed from every message), and the value an
//! error at a key echoes — `***` under a secret key, the `${..}` as written
//! where the value was interpolated (so `${oc.env:VAR}` shows the variable's
//! name, never its value).

use serde_json::Value;

use super::{Config, tree};
use crate::error::Error;
use crate::interpolate;
use crate::redact::{self, MASK, Secrets};

/// Values shorter than this are replaced only where quoted in a message.
const BARE_MIN_CHARS: usize = 3;

/// Every secret in `raw` (as written) and `resolved` (as interpolated): the
/// values under secret keys, at any depth (and the pieces of one written
/// with `${..}`), and the passwords of URLs.
pub(crate) fn secrets_of(raw: &Value, resolved: &Value) -> Secrets {
    let mut secrets = Secrets::default();
    for root in [raw, resolved] {
        leaves(root, &mut Vec::new(), &mut |keys, text| {
            // `use_token: true` holds no secret, and scrubbing every `true`
            // would garble messages.
            let flag = text == "true" || text == "false";
            if !flag && keys.iter().any(|key| redact::is_secret_key(key)) {
                secrets.add(text);
                if text.contains("${") {
                    for value in interpolate::written_values(text) {
                        secrets.add(&value);
                    }
                }
            }
            secrets.add_url_passwords(text);
        });
    }
    secrets
}

impl Config {
    /// `text` about the section at `path` — a URL, an error — as this
    /// config's own errors show it: its secrets masked, and values under
    /// `path` that came from `${oc.env:VAR}` (or another `${..}`) shown as
    /// written. For programs that print what a config resolved to.
    #[must_use]
    pub fn mask(&self, path: &str, text: &str) -> String {
        let text = echoed_values_hidden(path, text.to_owned(), &self.raw, &self.resolved);
        self.secrets.scrub(&text)
    }

    /// `err` as this config may show it (see [`Config::mask`]).
    pub(crate) fn hide(&self, err: Error) -> Error {
        match err {
            Error::Config { path, message } => Error::Config {
                message: self.mask(&path, &message),
                path: self.secrets.scrub(&path),
            },
            Error::Url { url, message } => Error::Url {
                url: self.secrets.scrub(&url),
                message: self.secrets.scrub(&message),
            },
            other => other,
        }
    }

    /// `err` from using the section at `path` (connecting to it, say), its
    /// URL and the driver's message masked as [`Config::mask`] does.
    pub(crate) fn hide_in(&self, path: &str, err: Error) -> Error {
        match err {
            Error::Connect {
                url,
                reason,
                detail,
            } => Error::Connect {
                url: self.mask(path, &url),
                reason,
                detail: self.mask(path, &detail),
            },
            Error::Url { url, message } => Error::Url {
                url: self.mask(path, &url),
                message: self.mask(path, &message),
            },
            other => self.hide(other),
        }
    }
}

/// `message` about the key at `path`, with each value under that key shown
/// as `***` if it is a secret and as written if it came from `${oc.env:..}`
/// (directly or through `${a.b}` references). Values are matched in the
/// forms errors echo them: `"text"`, `` `text` ``, and bare inside a URL.
fn echoed_values_hidden(path: &str, mut message: String, raw: &Value, resolved: &Value) -> String {
    let keys = tree::split(path);
    let secret_path = keys.iter().any(|key| redact::is_secret_key(key));
    let mut replacements = Vec::new();
    for (root, is_resolved) in [(raw, false), (resolved, true)] {
        let Ok(node) = tree::get(root, &keys) else {
            continue;
        };
        leaves(node, &mut Vec::new(), &mut |relative, text| {
            let secret = secret_path || relative.iter().any(|key| redact::is_secret_key(key));
            let shown = if secret {
                MASK.to_owned()
            } else if is_resolved {
                let mut full = keys.clone();
                full.extend_from_slice(relative);
                match written_at(raw, full) {
                    Some(written) if written.contains("oc.env:") && written != text => {
                        redact::mask_urls(written).into_owned()
                    }
                    _ => return,
                }
            } else {
                return;
            };
            replacements.push((text.to_owned(), shown));
        });
    }
    for (text, shown) in &replacements {
        for (echoed, instead) in [
            (format!("{text:?}"), format!("{shown:?}")),
            (format!("`{text}`"), format!("`{shown}`")),
        ] {
            message = message.replace(&echoed, &instead);
        }
    }
    // Then bare, as inside a URL rebuilt from the parts (too short a value
    // would replace unrelated text).
    for (text, shown) in &replacements {
        let echoed = redact::mask_urls(text);
        if echoed.chars().count() >= BARE_MIN_CHARS {
            message = replace_whole(&message, &echoed, shown);
        }
    }
    message
}

/// The most references `written_at` follows before giving up (a cycle).
const MAX_REFERENCES: usize = 16;

/// The text written for the value at `keys`, following `${a.b}` and
/// `${.sibling}` references (to mappings too): where the value came from.
fn written_at(raw: &Value, mut keys: Vec<String>) -> Option<&str> {
    'hop: for _ in 0..MAX_REFERENCES {
        let mut node = raw;
        for depth in 0..=keys.len() {
            if let Value::String(text) = node {
                match reference(text, &keys[..depth]) {
                    Some(mut target) => {
                        target.extend_from_slice(&keys[depth..]);
                        keys = target;
                        continue 'hop;
                    }
                    None if depth == keys.len() => return Some(text),
                    None => return None,
                }
            }
            let key = keys.get(depth)?;
            node = match node {
                Value::Object(map) => map.get(key)?,
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        return None;
    }
    None
}

/// The keys `${a.b}` or `${..b}` refers to, written at `here`; `None` for
/// anything but one plain reference.
fn reference(text: &str, here: &[String]) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix("${")?.strip_suffix('}')?;
    if inner.is_empty() || inner.contains(['$', '{', '}', ':', ',']) {
        return None;
    }
    let dots = inner.chars().take_while(|&c| c == '.').count();
    let mut keys = here[..here.len().checked_sub(dots)?].to_vec();
    if dots == 0 {
        keys.clear();
    }
    keys.extend(tree::split(&inner[dots..]));
    Some(keys)
}

/// `text` with `needle` replaced where it is not part of a longer name or
/// number (the user `app` in `app:***@`, not in `app_db`).
fn replace_whole(text: &str, needle: &str, with: &str) -> String {
    let is_part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "_-.".contains(c));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(needle) {
        let before = rest[..at]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back());
        let after = rest[at + needle.len()..].chars().next();
        out.push_str(&rest[..at]);
        out.push_str(if is_part(before) || is_part(after) {
            needle
        } else {
            with
        });
        rest = &rest[at + needle.len()..];
    }
    out.push_str(rest);
    out
}

/// Calls `visit` with the keys (relative to `node`) and text of every
/// string, number and boolean under `node`.
fn leaves(node: &Value, keys: &mut Vec<String>, visit: &mut impl FnMut(&[String], &str)) {
    match node {
        Value::Object(map) => {
            for (key, child) in map {
                keys.push(key.clone());
                leaves(child, keys, visit);
                keys.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                keys.push(index.to_string());
                leaves(child, keys, visit);
                keys.pop();
            }
        }
        Value::String(text) => visit(keys, text),
        Value::Number(n) => visit(keys, &n.to_string()),
        Value::Bool(b) => visit(keys, &b.to_string()),
        Value::Null => {}
    }
}
