//! Keeping a loaded config's secrets out of the errors it produces: the
//! secret values it holds (scrubbed from every message), and the value an
//! error at a key echoes — `***` under a secret key, the `${..}` as written
//! where the value was interpolated (so `${oc.env:VAR}` shows the variable's
//! name, never its value).

use serde_json::Value;

use super::tree;
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

/// `err` as a config may show it: echoed values at its key replaced, then
/// every known secret scrubbed from its text.
pub(crate) fn hide(err: Error, secrets: &Secrets, raw: &Value, resolved: &Value) -> Error {
    match err {
        Error::Config { path, message } => {
            let message = echoed_values_hidden(&path, message, raw, resolved);
            Error::Config {
                path: secrets.scrub(&path),
                message: secrets.scrub(&message),
            }
        }
        Error::Url { url, message } => Error::Url {
            url: secrets.scrub(&url),
            message: secrets.scrub(&message),
        },
        other => other,
    }
}

/// `message` about the key at `path`, with each value under that key shown
/// as `***` if it is a secret and as written if it was interpolated. Values
/// are matched in the forms errors echo them: `"text"`, `` `text` ``, and
/// bare inside a URL.
fn echoed_values_hidden(path: &str, mut message: String, raw: &Value, resolved: &Value) -> String {
    let keys = tree::split(path);
    let secret_path = keys.iter().any(|key| redact::is_secret_key(key));
    let written = |relative: &[String]| {
        let mut full = keys.clone();
        full.extend_from_slice(relative);
        tree::get(raw, &full).ok().and_then(Value::as_str)
    };
    let mut replacements = Vec::new();
    for root in [raw, resolved] {
        let Ok(node) = tree::get(root, &keys) else {
            continue;
        };
        leaves(node, &mut Vec::new(), &mut |relative, text| {
            let secret = secret_path || relative.iter().any(|key| redact::is_secret_key(key));
            let shown = if secret {
                MASK.to_owned()
            } else {
                match written(relative) {
                    Some(written) if written.contains("${") && written != text => {
                        redact::mask_urls(written).into_owned()
                    }
                    _ => return,
                }
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
    // Then bare, as inside a URL the message rebuilt from the parts (too
    // short a value would replace unrelated text).
    for (text, shown) in &replacements {
        let echoed = redact::mask_urls(text);
        if echoed.chars().count() >= BARE_MIN_CHARS {
            message = message.replace(echoed.as_ref(), shown);
        }
    }
    message
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
