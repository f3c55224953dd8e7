//! OmegaConf-style interpolation over a YAML value tree: `${oc.env:VAR}`,
//! `${oc.env:VAR,default}`, `${a.b.c}` (absolute) and `${.sibling}` (relative).
//!
//! Every node is attempted and a failure is recorded against the node where it
//! surfaced instead of aborting the whole document: OmegaConf resolves lazily,
//! so a missing variable in one section must not break loading another.

mod syntax;

use std::collections::HashMap;

use serde_json::{Map, Value};

use self::syntax::{Piece, split, split_top_level_comma};
use crate::config::tree;

/// A node whose interpolation failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    /// The node where the failure surfaced (it is `null` in the resolved tree).
    pub(crate) at: Vec<String>,
    /// The dotted key path the error names: the node that really failed.
    pub(crate) path: String,
    /// What failed and how to fix it.
    pub(crate) message: String,
}

/// The resolved tree and the nodes that could not be resolved.
pub(crate) struct Resolved {
    pub(crate) value: Value,
    pub(crate) failures: Vec<Failure>,
}

/// Resolves every interpolation in `root`.
pub(crate) fn resolve(root: &Value) -> Resolved {
    let mut resolver = Resolver {
        root,
        memo: HashMap::new(),
        stack: Vec::new(),
    };
    let mut failures = Vec::new();
    let value = resolver.walk(root, &mut Vec::new(), &mut failures);
    Resolved { value, failures }
}

/// The parts of a written value that are values rather than names: its
/// literal text, the defaults in `${oc.env:VAR,default}` and the arguments
/// of other resolvers — what a secret written with `${..}` in it holds, and
/// what a message quoting one piece of it may show.
pub(crate) fn written_values(text: &str) -> Vec<String> {
    let Ok(pieces) = split(text) else {
        return vec![text.to_owned()];
    };
    let mut values = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(literal) => values.push(literal),
            Piece::Interpolation(inner) => match inner.trim().split_once(':') {
                Some(("oc.env", args)) => {
                    if let Some((_, default)) = split_top_level_comma(args) {
                        values.extend(written_values(default.trim()));
                    }
                }
                Some((_, args)) => values.extend(written_values(args)),
                None => {}
            },
        }
    }
    values
}

/// Why a node failed: the dotted path to blame and the message.
type Fail = (String, String);

struct Resolver<'a> {
    root: &'a Value,
    memo: HashMap<Vec<String>, Result<Value, Fail>>,
    stack: Vec<Vec<String>>,
}

impl Resolver<'_> {
    /// Rebuilds the tree leaf by leaf, recording failures instead of stopping.
    fn walk(&mut self, node: &Value, path: &mut Vec<String>, failures: &mut Vec<Failure>) -> Value {
        match node {
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, child) in map {
                    path.push(key.clone());
                    out.insert(key.clone(), self.walk(child, path, failures));
                    path.pop();
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (index, child) in items.iter().enumerate() {
                    path.push(index.to_string());
                    out.push(self.walk(child, path, failures));
                    path.pop();
                }
                Value::Array(out)
            }
            _ => self.node(path).unwrap_or_else(|(blame, message)| {
                failures.push(Failure {
                    at: path.clone(),
                    path: blame,
                    message,
                });
                Value::Null
            }),
        }
    }

    /// The fully resolved value of the node at `path` (which exists).
    fn node(&mut self, path: &[String]) -> Result<Value, Fail> {
        if let Some(done) = self.memo.get(path) {
            return done.clone();
        }
        if let Some(start) = self.stack.iter().position(|p| p == path) {
            let mut cycle: Vec<String> =
                self.stack[start..].iter().map(|p| tree::join(p)).collect();
            cycle.push(tree::join(path));
            return Err((
                tree::join(path),
                format!("interpolation cycle: {}", cycle.join(" -> ")),
            ));
        }
        let raw = tree::get(self.root, path).map_err(|message| (tree::join(path), message))?;
        self.stack.push(path.to_vec());
        let result = match raw {
            Value::String(text) => self.string(text, path),
            Value::Object(map) => map
                .keys()
                .map(|key| Ok((key.clone(), self.node(&with(path, key))?)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            Value::Array(items) => (0..items.len())
                .map(|index| self.node(&with(path, &index.to_string())))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        };
        self.stack.pop();
        self.memo.insert(path.to_vec(), result.clone());
        result
    }

    /// A string value: exactly one `${..}` keeps the referenced type, anything
    /// else is concatenated into a string.
    fn string(&mut self, text: &str, here: &[String]) -> Result<Value, Fail> {
        let fail = |message: String| (tree::join(here), message);
        let pieces = split(text).map_err(fail)?;
        if let [Piece::Interpolation(inner)] = pieces.as_slice() {
            return self.interpolation(inner, here);
        }
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(literal) => out.push_str(&literal),
                Piece::Interpolation(inner) => match self.interpolation(&inner, here)? {
                    Value::String(s) => out.push_str(&s),
                    scalar @ (Value::Number(_) | Value::Bool(_)) => {
                        out.push_str(&scalar.to_string())
                    }
                    other => {
                        return Err(fail(format!(
                            "`${{{inner}}}` is {} and cannot be embedded in the string `{text}`",
                            tree::kind(&other)
                        )));
                    }
                },
            }
        }
        Ok(Value::String(out))
    }

    /// The value of one `${inner}`.
    fn interpolation(&mut self, inner: &str, here: &[String]) -> Result<Value, Fail> {
        let fail = |message: String| (tree::join(here), message);
        let inner = inner.trim();
        if let Some((name, args)) = inner.split_once(':')
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            return match name {
                "oc.env" => self.env(args, here),
                other => Err(fail(format!(
                    "unknown resolver `{other}` in `${{{inner}}}` (supported: oc.env)"
                ))),
            };
        }
        let target = self.reference_path(inner, here).map_err(fail)?;
        tree::get(self.root, &target)
            .map_err(|why| fail(format!("`${{{inner}}}` refers to a missing key: {why}")))?;
        self.node(&target)
    }

    /// Absolute (`a.b`) or relative (`.b` = sibling, `..b` = parent's sibling) path.
    fn reference_path(&self, reference: &str, here: &[String]) -> Result<Vec<String>, String> {
        let dots = reference.chars().take_while(|&c| c == '.').count();
        if dots == 0 {
            return Ok(tree::split(reference));
        }
        // `here` is the node holding the interpolation; one dot means its parent.
        let base = here
            .len()
            .checked_sub(dots)
            .ok_or_else(|| format!("`${{{reference}}}` climbs above the top of the document"))?;
        let mut path = here[..base].to_vec();
        path.extend(tree::split(&reference[dots..]));
        Ok(path)
    }

    /// `oc.env:VAR` or `oc.env:VAR,default`; the value is always a string
    /// (OmegaConf semantics), except a `null` default.
    fn env(&mut self, args: &str, here: &[String]) -> Result<Value, Fail> {
        let fail = |message: String| (tree::join(here), message);
        let (name, default) = match split_top_level_comma(args) {
            Some((name, default)) => (name, Some(default)),
            None => (args, None),
        };
        let written = name.trim();
        let name = match self.string(written, here)? {
            Value::String(name) if !name.is_empty() => name,
            _ => return Err(fail(format!("`${{oc.env:{args}}}` names no variable"))),
        };
        // A name built from another variable is shown as written: that
        // variable's value is not for error messages.
        let shown = if written.contains("${") {
            written
        } else {
            name.as_str()
        };
        match std::env::var(&name) {
            Ok(value) => Ok(Value::String(value)),
            Err(std::env::VarError::NotUnicode(_)) => Err(fail(format!(
                "environment variable `{shown}` is not valid UTF-8"
            ))),
            Err(std::env::VarError::NotPresent) => match default {
                Some(default) => self.default(default.trim(), here),
                None => Err(fail(format!(
                    "environment variable `{shown}` is not set \
                     (use `${{oc.env:{shown},default}}` to give a default)"
                ))),
            },
        }
    }

    /// A default: `null`, a quoted string, or bare text (itself interpolated).
    fn default(&mut self, default: &str, here: &[String]) -> Result<Value, Fail> {
        if default == "null" {
            return Ok(Value::Null);
        }
        for quote in ['\'', '"'] {
            if let Some(quoted) = default
                .strip_prefix(quote)
                .and_then(|rest| rest.strip_suffix(quote))
            {
                let escaped = format!("\\{quote}");
                return Ok(Value::String(quoted.replace(&escaped, &quote.to_string())));
            }
        }
        Ok(match self.string(default, here)? {
            Value::String(s) => Value::String(s),
            Value::Null => Value::Null,
            other => Value::String(other.to_string()),
        })
    }
}

/// `path` with one more key.
fn with(path: &[String], key: &str) -> Vec<String> {
    let mut longer = path.to_vec();
    longer.push(key.to_owned());
    longer
}
