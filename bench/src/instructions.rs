//! Client instructions per session (issue 21), the figure its goals are
//! judged on: each in-process contender's sequential W2 / W7 loop, after
//! its warm-up and with its connections open, counted by callgrind (see
//! `callgrind`). The loop runs [`INTERVALS`] times for [`SESSIONS`]
//! sessions, each between callgrind's marks: the median over the intervals
//! of instructions ÷ sessions is one session, its min–max the spread. Each
//! interval counts the work the previous one left behind (the task a pool
//! spawns to take back the last connection) and leaves its own to the next,
//! so that evens out; the median keeps out a rare event that is not a
//! session's (sqlx's pool opening one more connection, a SCRAM handshake
//! of some ten million instructions, when a session outran the return of
//! the previous one's).
//!
//! The throughput rounds run natively; then the bench runs itself again,
//! with the same arguments, under callgrind ([`count`]): that run keeps
//! only these groups, connects, warms up and verifies as usual, counts
//! instead of measuring rounds, and writes its counts into a file for the
//! first to report.

use std::fmt::Write as _;

use crate::callgrind::{self, Dumps};
use crate::contenders::Family;
use crate::results::GroupResult;
use crate::runner::{Contender, Load, Op, Result};
use crate::stats::Spread;
use crate::workloads::Workload;

/// Sessions in one counted interval.
pub const SESSIONS: u64 = 200;

/// Counted intervals per contender.
pub const INTERVALS: usize = 5;

/// The file the run under callgrind writes its counts into.
const FILE: &str = "instructions.tsv";

/// Instructions per `op` session of `contender`, counted under callgrind:
/// median and min–max over the intervals.
///
/// # Errors
///
/// A failed session, or a dump callgrind did not write.
pub async fn per_session(contender: &dyn Contender, op: Op, dumps: &Dumps) -> Result<Spread> {
    let mut counts = Vec::with_capacity(INTERVALS);
    for _ in 0..INTERVALS {
        let load = Load::Sequential { op, ops: SESSIONS };
        contender.run(load, Box::new(callgrind::zero_here)).await?;
        counts.push(dumps.take()? as f64 / SESSIONS as f64);
    }
    Ok(Spread::of(&counts))
}

/// Runs the bench again with `args` under callgrind and fills in the
/// `instructions` of the rows of `results` it counted.
///
/// # Errors
///
/// valgrind is missing, the run failed, or its counts cannot be read.
pub fn count(args: &[String], results: &mut [GroupResult]) -> Result<()> {
    let dir = std::env::temp_dir().join("sqlreg-bench-callgrind");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    callgrind::run_self(args, &dir)?;
    let text = std::fs::read_to_string(dir.join(FILE))?;
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [title, variant, target, family, median, min, max] = fields[..] else {
            return Err(format!("a line of {FILE} I cannot read: {line}").into());
        };
        let row = results
            .iter_mut()
            .filter(|r| {
                r.group.workload.title() == title
                    && r.group.variant == variant
                    && r.group.setup.target.label() == target
            })
            .flat_map(|r| r.rows.iter_mut())
            .find(|row| row.family.key() == family);
        if let Some(row) = row {
            row.instructions = Some(Spread {
                median: median.parse()?,
                min: min.parse()?,
                max: max.parse()?,
            });
        }
    }
    Ok(())
}

/// Writes what the run under callgrind counted, for the run that started it.
///
/// # Errors
///
/// The file cannot be written.
pub fn hand_back(results: &[GroupResult], dumps: &Dumps) -> Result<()> {
    let mut out = String::new();
    for result in results {
        let group = &result.group;
        for row in &result.rows {
            if let Some(count) = row.instructions {
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{:.0}\t{:.0}\t{:.0}",
                    group.workload.title(),
                    group.variant,
                    group.setup.target.label(),
                    row.family.key(),
                    count.median,
                    count.min,
                    count.max
                );
            }
        }
    }
    Ok(std::fs::write(dumps.dir().join(FILE), out)?)
}

/// One table per workload: instructions per session for each contender on
/// each database, beside its round trips (SQLite: hops) per session;
/// nothing when nothing was counted.
pub fn table(out: &mut String, results: &[GroupResult]) {
    if !results
        .iter()
        .any(|r| r.rows.iter().any(|row| row.instructions.is_some()))
    {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Client instructions per session (issue 21)\n\n\
         Counted, not timed: each contender's loop after its warm-up, connections open, run \
         under callgrind (valgrind) {intervals} times for {n} sessions: thousands of \
         instructions ÷ sessions, the median over the {intervals} and (min–max). Every thread of the client process counts (tokio's workers, the tasks a pool spawns, \
         sqlx's SQLite worker threads and SQLite itself; rusqlite runs SQLite in the caller's \
         thread); the servers are other processes and do not. After the dot: round trips per \
         session as the throughput tables count them (SQLite: hops to sqlx's worker threads). \
         Issue 21's goals are judged on these figures.\n",
        n = SESSIONS,
        intervals = INTERVALS
    );
    for workload in [Workload::W2, Workload::W7, Workload::W8] {
        let groups: Vec<&GroupResult> = results
            .iter()
            .filter(|r| r.group.workload == workload && r.group.counted())
            .filter(|r| r.rows.iter().any(|row| row.instructions.is_some()))
            .collect();
        if groups.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "### {}, {}: client instructions per session · round trips per session\n",
            workload.title(),
            groups[0].group.variant
        );
        let targets: Vec<&str> = groups
            .iter()
            .map(|g| g.group.setup.target.label())
            .collect();
        let _ = writeln!(out, "| contender | {} |", targets.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(groups.len()));
        for family in Family::ALL {
            let cells: Vec<Option<String>> = groups
                .iter()
                .map(|g| {
                    let row = g.row(family)?;
                    let count = row.instructions?;
                    let trips = row
                        .statements
                        .map_or_else(|| "—".into(), |n| format!("{n:.1}"));
                    Some(format!(
                        "{:.1} k ({:.1}–{:.1}) · {trips}",
                        count.median / 1e3,
                        count.min / 1e3,
                        count.max / 1e3
                    ))
                })
                .collect();
            if cells.iter().all(Option::is_none) {
                continue;
            }
            let cells: Vec<String> = cells
                .into_iter()
                .map(|c| c.unwrap_or_else(|| "—".into()))
                .collect();
            let _ = writeln!(out, "| {} | {} |", label(family), cells.join(" | "));
        }
        out.push('\n');
    }
}

/// A contender's name across databases (the limit's driver differs).
fn label(family: Family) -> &'static str {
    match family {
        Family::Limit => {
            "limit (rusqlite; tokio-postgres, pipelined; one MariaDB multi-statement query)"
        }
        Family::SqlxConn => "sqlx …Connection, 1 statement",
        other => other.label(crate::targets::Target::Postgres),
    }
}
