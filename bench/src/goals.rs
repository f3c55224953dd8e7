//! Issue 9's goals, each computed from one run's groups: sqlreg's
//! throughput over a peer's (its sqlx body unless the goal names the
//! entity body; the median of the per-round ratios), hops per SQLite read
//! session, W4's timeouts; issue 10's: read sessions routed to a replica
//! against the same without one (in throughput and, as issue 21 measures,
//! in client instructions); and issue 21's: sqlreg's client instructions
//! per session against the same statements on sqlx's pool and against
//! sea-orm.

use crate::contenders::Family;
use crate::ratios::{Bound, Goal};
use crate::results::GroupResult;
use crate::routing;
use crate::runner::{Load, Op};
use crate::stats::Spread;
use crate::targets::Target;
use crate::workloads::Workload;

/// Every goal whose groups ran, in the order.
pub fn all(results: &[GroupResult]) -> Vec<Goal> {
    let mut goals = Vec::new();
    let at_least = |min| Bound::AtLeast(min);
    let ratio = |what: String, value, min| Goal {
        what,
        value,
        bound: at_least(min),
        unit: "×",
    };
    let of = |r: &GroupResult, ours: Family, theirs: Family| {
        r.per_round(ours, theirs).map(|spread| spread.median)
    };
    let raw = Family::SqlregRaw;
    let place = |r: &GroupResult| {
        format!(
            "{} — {}, {}",
            r.group.workload.title(),
            r.group.setup.target.label(),
            r.group.variant
        )
    };
    let groups = |workload: Workload| results.iter().filter(move |r| r.group.workload == workload);
    for r in groups(Workload::W2) {
        let at = place(r);
        goals.push(ratio(
            format!("{at}: sqlreg ÷ sqlx pool"),
            of(r, raw, Family::Sqlx),
            1.25,
        ));
        goals.push(ratio(
            format!("{at}: sqlreg ÷ sqlx pool sending sqlreg's statements"),
            of(r, raw, Family::SqlxSame),
            1.0,
        ));
        if r.group.setup.target == Target::Postgres {
            goals.push(ratio(
                format!("{at}: sqlreg ÷ pgbench (BEGIN/SELECT/COMMIT)"),
                of(r, raw, Family::Pgbench),
                1.4,
            ));
            goals.push(ratio(
                format!("{at}: sqlreg ÷ pgbench -S"),
                of(r, raw, Family::PgbenchSelectOnly),
                0.6,
            ));
        }
    }
    for r in groups(Workload::W1) {
        let at = place(r);
        goals.push(ratio(
            format!("{at}: sqlreg get() ÷ sqlx acquire()"),
            of(r, raw, Family::Sqlx),
            1.5,
        ));
    }
    for r in groups(Workload::W3).chain(groups(Workload::W7)) {
        let at = place(r);
        goals.push(ratio(
            format!("{at}: sqlreg ÷ sqlx pool"),
            of(r, raw, Family::Sqlx),
            1.1,
        ));
        if r.group.setup.target == Target::Postgres {
            goals.push(ratio(
                format!("{at}: sqlreg ÷ pgbench (same script)"),
                of(r, raw, Family::Pgbench),
                1.0,
            ));
        }
    }
    for r in groups(Workload::W4) {
        let at = place(r);
        goals.push(ratio(
            format!("{at}: sqlreg ÷ sqlx pool"),
            of(r, raw, Family::Sqlx),
            1.2,
        ));
        if r.group.setup.target == Target::Postgres {
            goals.push(ratio(
                format!("{at}: sqlreg ÷ pgbench -c10 (same script)"),
                of(r, raw, Family::Pgbench),
                0.75,
            ));
        }
        let timeouts = r.rows.iter().find(|row| row.family == raw).and_then(|row| {
            (!row.runs.is_empty())
                .then(|| row.runs.iter().map(|s| s.failures.timeouts).sum::<u64>() as f64)
        });
        goals.push(Goal {
            what: format!("{at}: sqlreg's checkout timeouts"),
            value: timeouts,
            bound: Bound::AtMost(0.0),
            unit: " timeouts",
        });
    }
    let sqlite = |r: &&GroupResult| {
        matches!(
            r.group.setup.target,
            Target::SqliteFile | Target::SqliteMemory
        )
    };
    for r in groups(Workload::W2).filter(sqlite) {
        let at = place(r);
        goals.push(ratio(
            format!("{at}: sqlreg read session ÷ one statement on a held sqlx connection"),
            of(r, raw, Family::SqlxConn),
            0.5,
        ));
        let hops = r
            .rows
            .iter()
            .find(|row| row.family == raw)
            .and_then(|row| row.statements);
        goals.push(Goal {
            what: format!("{at}: sqlreg's hops to sqlx's worker per read session"),
            value: hops,
            bound: Bound::AtMost(2.0),
            unit: " hops",
        });
    }
    for r in groups(Workload::W2).filter(|r| matches!(r.group.load, Load::Sequential { .. })) {
        let min = if sqlite(&r) { 0.8 } else { 0.9 };
        goals.push(ratio(
            format!("{}: sqlreg entity body ÷ sqlx body", place(r)),
            of(r, Family::SqlregEntity, raw),
            min,
        ));
    }
    let instructions = |r: &GroupResult, ours: Family, theirs: Family| {
        Some(r.row(ours)?.instructions?.median / r.row(theirs)?.instructions?.median)
    };
    let has_counts = |r: &&GroupResult| r.rows.iter().any(|row| row.instructions.is_some());
    for r in results
        .iter()
        .filter(|r| r.group.judged())
        .filter(has_counts)
    {
        let at = place(r);
        let at_most = |what: String, value| Goal {
            what,
            value,
            bound: Bound::AtMost(1.0),
            unit: "×",
        };
        goals.push(at_most(
            format!(
                "{at}: sqlreg (sqlx body) ÷ sqlx pool sending its statements, instructions/session"
            ),
            instructions(r, raw, Family::SqlxSame),
        ));
        goals.push(at_most(
            format!("{at}: sqlreg (entity body) ÷ sea-orm (tuned), instructions/session"),
            instructions(r, Family::SqlregEntity, Family::SeaOrmTuned),
        ));
    }
    // Issue 21 restates three throughput goals, per round, with its own bounds.
    for r in results.iter().filter(|r| r.group.judged()) {
        let at = place(r);
        let (versus, peer, min) = match (r.group.workload, r.group.setup.target) {
            (Workload::W2, Target::Postgres) => {
                ("pgbench (BEGIN/SELECT/COMMIT)", Family::Pgbench, 1.0)
            }
            (Workload::W7, Target::Postgres) => ("pgbench (same script)", Family::Pgbench, 0.8),
            (Workload::W2, Target::SqliteFile | Target::SqliteMemory) => (
                "one statement on a held sqlx connection",
                Family::SqlxConn,
                0.6,
            ),
            _ => continue,
        };
        goals.push(ratio(
            format!("{at}: sqlreg ÷ {versus}, per round (issue 21)"),
            of(r, raw, peer),
            min,
        ));
    }
    for r in groups(Workload::W8).filter(|r| r.group.setup.op == Op::SelectById) {
        let routed = |base| routing::ratio(r, Family::SqlregRouted, base).map(|(v, _)| v);
        goals.push(ratio(
            format!("{}: sqlreg with a replica ÷ without", place(r)),
            routed(Family::SqlregPrimary),
            0.95,
        ));
        goals.push(ratio(
            format!(
                "{}: sqlreg with a replica ÷ without, its url the replica (routing alone)",
                place(r)
            ),
            routed(Family::SqlregOnReplica),
            0.95,
        ));
        goals.push(Goal {
            what: format!(
                "{}: sqlreg with a replica ÷ without, its url the replica, instructions/session",
                place(r)
            ),
            value: instructions(r, Family::SqlregRouted, Family::SqlregOnReplica),
            // Issue 10's ≥ 0.95× in throughput, as a cost: ≤ 1 ÷ 0.95.
            bound: Bound::AtMost(1.05),
            unit: "×",
        });
    }
    goals
}

/// Issue 11: sqlreg with a subscriber recording its spans ÷ without, per W2 group.
pub fn observability(results: &[GroupResult]) -> Vec<(&'static str, Option<Spread>)> {
    results
        .iter()
        .filter(|r| r.group.families.contains(&Family::SqlregTraced))
        .map(|r| {
            let ratio = r.per_round(Family::SqlregTraced, Family::SqlregRaw);
            (r.group.setup.target.label(), ratio)
        })
        .collect()
}
