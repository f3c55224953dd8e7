//! The pieces every markdown table of the report shares: a group's
//! heading and the cells of a row without runs.

use std::fmt::Write as _;

use crate::results::{GroupResult, Row};

/// A group's heading and the load average around it, left open for what
/// follows on the same line.
pub fn heading(out: &mut String, result: &GroupResult) {
    let group = &result.group;
    let _ = write!(
        out,
        "### {} — {}, {}\n\nload average {:.2} → {:.2}",
        group.workload.title(),
        group.setup.target.label(),
        group.variant,
        result.load_avg.0,
        result.load_avg.1,
    );
}

/// The rest of a table row without runs: why, then `cells` empty cells.
pub fn missing(out: &mut String, row: &Row, cells: usize) {
    let why = row.error.as_deref().unwrap_or("no runs");
    let _ = writeln!(out, "{}{}", one_line(why), " |".repeat(cells));
}

/// The first line of `text`, at most 90 bytes, without `|`.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().replace('|', "/");
    if line.len() > 90 {
        format!("{}…", &line[..line.floor_char_boundary(90)])
    } else {
        line
    }
}
