//! W9's tables (issue 18): sqlreg, sqlx and pgbench through PgBouncer in
//! transaction mode, and sqlreg direct in the same rounds, so that what the
//! pooler costs shows next to how the three compare behind it.

use std::fmt::Write as _;

use crate::contenders::Family;
use crate::results::GroupResult;
use crate::routing::ratio;
use crate::runner::Load;
use crate::table::{heading, missing};

/// The table of one W9 group, then sqlreg's per-round ratios.
pub fn table(out: &mut String, result: &GroupResult) {
    let group = &result.group;
    let target = group.setup.target;
    let crowd = matches!(group.load, Load::Crowd { .. });
    heading(out, result);
    out.push_str("\n\n");
    let mut columns = vec![
        "contender",
        "ops/s (median)",
        "min–max",
        "statements/op (server log)",
    ];
    if crowd {
        columns.extend(["p50", "p99", "timeouts"]);
    }
    let _ = writeln!(out, "| {} |", columns.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(columns.len() - 1));
    for row in &result.rows {
        let _ = write!(out, "| {} | ", row.family.label(target));
        let Some(spread) = row.throughput() else {
            missing(out, row, columns.len() - 1);
            continue;
        };
        let statements = row
            .statements
            .map_or_else(|| "—".into(), |n| format!("{n:.1}"));
        let _ = write!(
            out,
            "{:.0} | {:.0}–{:.0} | {statements} |",
            spread.median, spread.min, spread.max
        );
        if crowd {
            let (p50, p99) = row.latency_percentiles(2);
            let timeouts: u64 = row.runs.iter().map(|s| s.failures.timeouts).sum();
            let _ = write!(out, " {p50} | {p99} | {timeouts} |");
        }
        out.push('\n');
    }
    out.push('\n');
    let pairs = [
        (Family::SqlregPgbouncer, Family::SqlxPgbouncer),
        (Family::SqlregPgbouncer, Family::PgbenchPgbouncer),
        (Family::SqlregPgbouncer, Family::SqlregRaw),
    ];
    for (family, base) in pairs {
        if let Some((value, spread)) = ratio(result, family, base) {
            let _ = writeln!(
                out,
                "{} ÷ {}: per round median {:.2}×, {:.2}–{:.2}× (ratio of the medians {value:.2}×)\n",
                family.label(target),
                base.label(target),
                spread.median,
                spread.min,
                spread.max
            );
        }
    }
}

/// What the notes say about W9.
pub const NOTES: &str = "- W9 (issue 18): PostgreSQL through the test servers' PgBouncer \
1.18 in transaction mode (`default_pool_size = 4`: four server connections, which all the \
pooler's clients share), on the same machine as the client and the server: with two cores, the \
client, PgBouncer and PostgreSQL share them, so the pooler's cost here includes its share of \
the CPU. *sqlreg … PgBouncer*: `session.pooler: transaction` and the url's port the \
pooler's (sessions in a transaction each, read sessions in `BEGIN READ ONLY`, no startup \
options), with the sqlx body as W2 and W7 run it but `.persistent(false)`, as the README \
says for statements through `Session::sqlx()` behind a transaction pooler; *sqlx pool … \
PgBouncer*: as sqlx documents it, `PgConnectOptions::statement_cache_capacity(0)` and every \
query `.persistent(false)` (with a capacity of 0 sqlx 0.9 still names its statements), \
`begin` / the statement / `commit` as its W2 and W7 rows; *pgbench -M extended*: the same \
script through the same pooler with the extended protocol and unnamed statements \
(`-M prepared` names statements that outlive the transaction, which PgBouncer 1.18 cannot \
serve in transaction mode; `-M simple` would send the id inside the query text, not bound \
as the others do), one client (`-c10` in a crowd); *sqlreg (sqlx body)*: W2's and W7's \
sqlreg, direct to PostgreSQL, in the same rounds. A crowd's pool of 10 is 10 client \
connections to PgBouncer, which shares its 4 server connections among them (direct: 10 \
server connections). *statements/op*: what the server logged per op (through the pooler the \
server still logs every statement); an unnamed statement with parameters costs sqlx and \
sqlreg one more round trip than that (parse, then bind and execute), which the log does not \
show; pgbench sends parse, bind and execute at once. Ratios are per round (each round ran \
every contender), their median and range over the rounds.\n";
