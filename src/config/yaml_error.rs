//! A YAML file that does not parse, reported to the person editing it: what
//! is wrong with line and column, the lines around it with every secret
//! masked, and for a key written twice, where it was written first.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Marker, Parser};
use serde_saphyr::{SnippetMode, UserMessageFormatter};

use super::tree;
use crate::redact;

/// Lines shown before and after the one the error is on.
const CONTEXT_LINES: usize = 2;

/// The message for `err`, raised while parsing `text`.
pub(crate) fn describe(text: &str, err: &serde_saphyr::Error) -> String {
    let masked = redact::mask_yaml(text);
    let duplicate = match err.without_snippet() {
        serde_saphyr::Error::DuplicateMappingKey { .. } => first_duplicate(text),
        _ => None,
    };
    let message = match &duplicate {
        Some(duplicate) => duplicate.to_string(),
        None => err.render_with_options(serde_saphyr::render_options! {
            formatter: &UserMessageFormatter,
            snippets: SnippetMode::Off,
        }),
    };
    let mut out = format!("invalid YAML: {}", masked.secrets.scrub(&message));
    if let Some(location) = err.location() {
        let line = usize::try_from(location.line()).unwrap_or(usize::MAX);
        let column = usize::try_from(location.column()).unwrap_or(0);
        out.push_str(&snippet(&masked.text, line, column));
    }
    out
}

/// The lines around `line` (1-based), numbered, with a caret under `column`.
fn snippet(text: &str, line: usize, column: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if line == 0 || line > lines.len() {
        return String::new();
    }
    let first = line.saturating_sub(CONTEXT_LINES).max(1);
    let last = (line + CONTEXT_LINES).min(lines.len());
    let width = last.to_string().len();
    let mut out = String::new();
    for number in first..=last {
        out.push_str(&format!("\n {number:>width$} | {}", lines[number - 1]));
        if number == line {
            let pad = " ".repeat(column.saturating_sub(1));
            out.push_str(&format!("\n {:>width$} | {pad}^", ""));
        }
    }
    out
}

/// A mapping key written twice.
struct Duplicate {
    key: String,
    parent: Vec<String>,
    first: Marker,
    again: Marker,
}

impl std::fmt::Display for Duplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = if self.parent.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("under `{}`", tree::join(&self.parent))
        };
        write!(
            f,
            "the key `{}` is written twice {place}: first at line {}, column {}, \
             again at line {}, column {} (keep one of them)",
            self.key,
            self.first.line(),
            self.first.col() + 1,
            self.again.line(),
            self.again.col() + 1,
        )
    }
}

/// One open mapping or list while walking the parser's events.
enum Frame {
    Mapping {
        name: String,
        seen: HashMap<String, Marker>,
        /// The key whose value comes next; `None` when a key comes next.
        key: Option<String>,
    },
    List {
        name: String,
        index: usize,
    },
}

impl Frame {
    fn name(&self) -> &str {
        match self {
            Self::Mapping { name, .. } | Self::List { name, .. } => name,
        }
    }
}

/// The first key written twice in one mapping of `text`, with both places.
fn first_duplicate(text: &str) -> Option<Duplicate> {
    let mut stack: Vec<Frame> = Vec::new();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.ok()?;
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
                | Event::Alias(..)
        );
        if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
            stack.pop();
        }
        if !is_node {
            continue;
        }
        let parent: Vec<String> = stack
            .iter()
            .skip(1)
            .map(|frame| frame.name().to_owned())
            .collect();
        let name = match stack.last_mut() {
            None => String::new(),
            Some(Frame::List { index, .. }) => {
                *index += 1;
                (*index - 1).to_string()
            }
            Some(Frame::Mapping { seen, key, .. }) => match key.take() {
                Some(key) => key,
                None => {
                    // A key; one that is not a scalar cannot be named.
                    let Event::Scalar(text, ..) = &event else {
                        return None;
                    };
                    if let Some(first) = seen.get(text.as_ref()) {
                        return Some(Duplicate {
                            key: text.to_string(),
                            parent,
                            first: *first,
                            again: span.start,
                        });
                    }
                    seen.insert(text.to_string(), span.start);
                    *key = Some(text.to_string());
                    continue;
                }
            },
        };
        match event {
            Event::MappingStart(..) => stack.push(Frame::Mapping {
                name,
                seen: HashMap::new(),
                key: None,
            }),
            Event::SequenceStart(..) => stack.push(Frame::List { name, index: 0 }),
            _ => {}
        }
    }
    None
}
