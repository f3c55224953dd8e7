//! W8's tables (issue 10): what routing read sessions to a replica costs.
//! The replica shares this machine's cores with the primary, so it adds no
//! throughput here; the figures are sqlreg with `replicas:` against the
//! same sessions on a registry without, each round running both.

use std::fmt::Write as _;

use crate::contenders::Family;
use crate::results::{GroupResult, Row};
use crate::runner::Op;
use crate::stats::Spread;
use crate::table::{heading, missing};

/// The table of one W8 group, then the ratio to the registry without
/// replicas (read sessions) or the wait of a read after a write.
pub fn table(out: &mut String, result: &GroupResult) {
    let group = &result.group;
    let target = group.setup.target;
    let after_write = group.setup.op == Op::WriteThenRead;
    heading(out, result);
    out.push_str("\n\n");
    let unit = if after_write { "write+read/s" } else { "ops/s" };
    let _ = writeln!(
        out,
        "| contender | {unit} (median) | min–max | statements on the primary/op | \
         read open p50 | read open p99 | reads on the replica |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    for row in &result.rows {
        let _ = write!(out, "| {} | ", row.family.label(target));
        let Some(spread) = row.throughput() else {
            missing(out, row, 6);
            continue;
        };
        let statements = row
            .statements
            .map_or_else(|| "—".into(), |n| format!("{n:.1}"));
        // The runs record each read session's open time.
        let (p50, p99) = row.latency_percentiles(3);
        let _ = writeln!(
            out,
            "{:.0} | {:.0}–{:.0} | {statements} | {p50} | {p99} | {} |",
            spread.median,
            spread.min,
            spread.max,
            replica_share(row),
        );
    }
    out.push('\n');
    if !after_write {
        let pairs = [
            (Family::SqlregRouted, Family::SqlregPrimary),
            (Family::SqlregPrimaryReads, Family::SqlregPrimary),
            (Family::SqlregRouted, Family::SqlregOnReplica),
        ];
        for (family, base) in pairs {
            if let Some((ratio, spread)) = ratio(result, family, base) {
                let _ = writeln!(
                    out,
                    "{} ÷ {}: {ratio:.2}× (per round: median {:.2}×, {:.2}–{:.2}×)\n",
                    family.label(target),
                    base.label(target),
                    spread.median,
                    spread.min,
                    spread.max
                );
            }
        }
    }
}

/// What the notes say about W8.
pub const NOTES: &str = "- W8 (issue 10): the replica is the test servers' (a PostgreSQL \
hot standby streaming asynchronously, a MariaDB GTID replica) on the same machine, so it adds \
no throughput here: the figures are what routing costs. *sqlreg, no replicas* and *sqlreg, \
replicas: [replica]* are the same config but for `replicas:` (routing defaults: \
`read_your_writes` on, `primary_reads` off); *sqlreg, no replicas, url: the replica* is the \
first with the replica's port, so that the same server runs the reads as with routing: \
routed ÷ it is what routing itself costs, routed ÷ the first adds what the standby's \
serving costs against the primary's; the read session is W2's (one SELECT by primary \
key, sqlx body). On PostgreSQL every connection of both sets `synchronous_commit=on` (the \
test server runs with it off, which delays streaming a commit to the standby by up to \
`wal_writer_delay`; production primaries commit with it on). *read open*: from calling \
`read_session` until its body starts (after a write this includes waiting for the replica \
to replay it, up to 50 ms, before reading from the primary instead). *reads on the replica*: \
plain reads counted from the replica's checkouts (`host_stats()`), reads after a write asked \
of the server in the session (`pg_is_in_recovery()` / `@@read_only`). A read after a write \
checks the value written; a stale one ends the run with an error. *read once it has the \
write*: after each write the contender polls the replica (through a second registry on it, \
without read-your-writes) until it shows the value, outside the measured open, so the open is \
what checking a caught-up replica's position costs; its write+read/s includes that polling. \
*statements on the primary/op*: from the primary's log only (the replica's is not read), the monitor's \
position queries (every 200 ms per host) included.\n";

/// Median of `family` ÷ median of `base`, and the spread of that ratio over
/// the rounds (each round ran both).
pub fn ratio(result: &GroupResult, family: Family, base: Family) -> Option<(f64, Spread)> {
    let value = result.median_of(family)? / result.median_of(base)?;
    Some((value, result.per_round(family, base)?))
}

/// `38 of 40 (95%)`, or — for a registry without replicas.
fn replica_share(row: &Row) -> String {
    let served: Option<u64> = row.runs.iter().map(|s| s.on_replica).sum();
    let reads: u64 = row.runs.iter().map(|s| s.ops).sum();
    served.map_or_else(
        || "—".into(),
        |n| {
            format!(
                "{n} of {reads} ({:.0}%)",
                100.0 * n as f64 / reads.max(1) as f64
            )
        },
    )
}
