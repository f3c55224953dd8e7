//! Printing a statement's outcome: an aligned text table, or JSON.

use std::fmt::Write;
use std::time::Duration;

use serde_json::{Value, json};

/// What one statement produced.
pub enum Outcome {
    /// A query: its column names and rows of cells.
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
    },
    /// A statement without a result set: how many rows it changed.
    Affected(u64),
}

/// Columns separated by ` | ` under a dashed rule, numbers right-aligned.
pub fn render(outcome: &Outcome) -> String {
    let Outcome::Rows { columns, rows } = outcome else {
        return String::new();
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(text).collect())
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([columns[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let header: Vec<String> = columns
        .iter()
        .zip(&widths)
        .map(|(c, w)| format!("{c:<w$}"))
        .collect();
    let _ = writeln!(out, "{}", header.join(" | ").trim_end());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let _ = writeln!(out, "{}", rule.join("-+-"));
    for (row, values) in cells.iter().zip(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(values)
            .zip(&widths)
            .map(|((cell, value), w)| {
                if value.is_number() {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join(" | ").trim_end());
    }
    out
}

/// `{"columns": [..], "rows": [[..]]}` for a query, `{"rows_affected": n}` otherwise.
pub fn json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Rows { columns, rows } => json!({ "columns": columns, "rows": rows }),
        Outcome::Affected(n) => json!({ "rows_affected": n }),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A duration in milliseconds, for reports.
pub fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// `1 row`, `2 rows`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
