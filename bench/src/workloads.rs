//! W1–W9: which databases, contenders, loads and pool sizes each workload runs.

use std::time::Duration;

use crate::contenders::{Family, Setup};
use crate::runner::{Load, Op};
use crate::targets::Target;

/// One workload of the issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Checkout and release, no statement.
    W1,
    /// One SELECT by id in a committed session (the headline).
    W2,
    /// A failing session (rolled back) then a good one.
    W3,
    /// 64 tasks on a pool of 10.
    W4,
    /// SQLite: 8 writers and 8 readers on one file.
    W5,
    /// 8 tasks doing read-modify-write on one hot row: lost updates, failures.
    W6,
    /// A write session inserting one row: 1 client, and 64 tasks on a pool of 10.
    W7,
    /// Read sessions routed to a replica against the same on a registry
    /// without one; a read after a write (issue 10).
    W8,
    /// W2's reads and W7's inserts on PostgreSQL through PgBouncer in
    /// transaction mode, against sqlreg direct (issue 18).
    W9,
}

impl Workload {
    /// All of them, in order.
    pub const ALL: [Self; 9] = [
        Self::W1,
        Self::W2,
        Self::W3,
        Self::W4,
        Self::W5,
        Self::W6,
        Self::W7,
        Self::W8,
        Self::W9,
    ];

    /// Its short title.
    pub fn title(self) -> &'static str {
        match self {
            Self::W1 => "W1 checkout",
            Self::W2 => "W2 session by primary key",
            Self::W3 => "W3 error path",
            Self::W4 => "W4 concurrency",
            Self::W5 => "W5 SQLite writers",
            Self::W6 => "W6 hot row",
            Self::W7 => "W7 insert session",
            Self::W8 => "W8 routing",
            Self::W9 => "W9 PgBouncer, transaction mode",
        }
    }
}

/// One table of results: a workload on one target with one load.
#[derive(Clone, Debug)]
pub struct Group {
    /// The workload.
    pub workload: Workload,
    /// What varies within the workload (task count, …).
    pub variant: &'static str,
    /// How the contenders are set up.
    pub setup: Setup,
    /// The measured load.
    pub load: Load,
    /// The contenders, in table order.
    pub families: Vec<Family>,
    /// Which of them is the physical limit here (W6 has none: sqlx pool;
    /// W9 compares with sqlreg direct).
    pub limit: Family,
}

impl Group {
    /// Whether issue 21's goals are judged on it: W2 and W7 with one client.
    pub fn judged(&self) -> bool {
        matches!(self.workload, Workload::W2 | Workload::W7)
            && matches!(self.load, Load::Sequential { .. })
    }

    /// Whether its sessions are counted in instructions: the judged groups,
    /// and W8's read sessions (what routing costs, without the noise of
    /// throughput).
    pub fn counted(&self) -> bool {
        self.judged() || (self.workload == Workload::W8 && self.setup.op == Op::SelectById)
    }
}

/// How much work one run does.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Sessions per sequential run (W2; W1 does 4×, W3 ½×).
    pub ops: u64,
    /// Length of a crowd run.
    pub duration: Duration,
}

const PEERS: [Family; 7] = [
    Family::Limit,
    Family::Sqlx,
    Family::SeaOrmDefault,
    Family::SeaOrmTuned,
    Family::SqlregRaw,
    Family::SqlregEntity,
    Family::CoreLib,
];

/// The contenders issue 21's goals compare, and the floors beside them.
const JUDGED: [Family; 8] = [
    Family::Limit,
    Family::SqlxConn,
    Family::Pgbench,
    Family::Sqlx,
    Family::SqlxSame,
    Family::SeaOrmTuned,
    Family::SqlregRaw,
    Family::SqlregEntity,
];

/// `goals`: the groups issue 21's goals are judged on (W2 and W7, one
/// client, every database), with only the contenders they compare.
pub fn goal_plan(budget: Budget) -> Vec<Group> {
    [Workload::W2, Workload::W7]
        .into_iter()
        .flat_map(|workload| plan(workload, budget))
        .filter(Group::judged)
        .map(|mut group| {
            group.families.retain(|f| JUDGED.contains(f));
            group
        })
        .collect()
}

/// Every contender that runs `op` sessions on `target`, in table order:
/// the peers, the held sqlx connection and the sqlx pool replaying sqlreg's
/// statements (`replay`), the traced sqlreg (`traced`), core-lib where it
/// runs (sequential loads), and each server's own load tool.
fn contenders(target: Target, replay: bool, traced: bool, sequential: bool) -> Vec<Family> {
    let mut families = Vec::new();
    for family in PEERS {
        match family {
            Family::Limit if replay => families.extend([Family::Limit, Family::SqlxConn]),
            Family::Sqlx if replay => families.extend([Family::Sqlx, Family::SqlxSame]),
            Family::SqlregRaw if traced => {
                families.extend([Family::SqlregRaw, Family::SqlregTraced]);
            }
            Family::CoreLib if !sequential => {}
            other => families.push(other),
        }
    }
    match target {
        Target::Postgres => families.push(Family::Pgbench),
        Target::MariaDb => families.push(Family::MariadbSlap),
        Target::SqliteFile | Target::SqliteMemory => {}
    }
    families
}

/// The groups a workload runs.
pub fn plan(workload: Workload, budget: Budget) -> Vec<Group> {
    let setup = |target, op, pool, held| Setup {
        target,
        op,
        pool,
        held,
        warmup: (budget.ops / 10).max(5),
    };
    let sequential = |op, ops| Load::Sequential { op, ops };
    let crowd = |op, tasks, writers| Load::Crowd {
        op,
        tasks,
        writers,
        duration: budget.duration,
    };
    let group = |variant, setup, load, families, limit| Group {
        workload,
        variant,
        setup,
        load,
        families,
        limit,
    };
    match workload {
        Workload::W1 => {
            let families = vec![Family::Sqlx, Family::SqlregRaw];
            vec![
                group(
                    "1 task, pool of 8",
                    setup(Target::Postgres, Op::Checkout, Some(8), 1),
                    sequential(Op::Checkout, budget.ops * 4),
                    families.clone(),
                    Family::Sqlx,
                ),
                group(
                    "16 tasks, pool of 8",
                    setup(Target::Postgres, Op::Checkout, Some(8), 1),
                    crowd(Op::Checkout, 16, 0),
                    families,
                    Family::Sqlx,
                ),
            ]
        }
        Workload::W2 => [
            Target::SqliteFile,
            Target::SqliteMemory,
            Target::Postgres,
            Target::MariaDb,
        ]
        .into_iter()
        .map(|target| {
            let mut families = contenders(target, true, true, true);
            if target == Target::Postgres {
                families.push(Family::PgbenchSelectOnly);
            }
            group(
                "1 client",
                setup(target, Op::SelectById, None, 1),
                sequential(Op::SelectById, budget.ops),
                families,
                Family::Limit,
            )
        })
        .collect(),
        Workload::W3 => [Target::SqliteFile, Target::Postgres, Target::MariaDb]
            .into_iter()
            .map(|target| {
                let op = Op::FailThenSelect;
                group(
                    "1 client",
                    setup(target, op, None, 1),
                    sequential(op, (budget.ops / 2).max(1)),
                    contenders(target, false, false, true),
                    Family::Limit,
                )
            })
            .collect(),
        Workload::W4 => [Target::Postgres, Target::MariaDb]
            .into_iter()
            .map(|target| {
                let mut families = contenders(target, true, false, false);
                if target == Target::Postgres {
                    families.push(Family::PgbenchSelectOnly);
                }
                group(
                    "64 tasks, pool of 10",
                    setup(target, Op::SelectById, Some(10), 10),
                    crowd(Op::SelectById, 64, 0),
                    families,
                    Family::Limit,
                )
            })
            .collect(),
        Workload::W5 => {
            let families = PEERS[..6].to_vec();
            let load = crowd(Op::SelectById, 16, 8);
            let setup = setup(Target::SqliteFile, Op::SelectById, None, 16);
            vec![group(
                "8 writers + 8 readers",
                setup,
                load,
                families,
                Family::Limit,
            )]
        }
        Workload::W6 => [Target::SqliteFile, Target::Postgres, Target::MariaDb]
            .into_iter()
            .map(|target| {
                let families = vec![Family::Sqlx, Family::SeaOrmTuned, Family::SqlregEntity];
                let load = Load::HotRow {
                    tasks: 8,
                    duration: budget.duration,
                };
                group(
                    "8 tasks, read-modify-write on one row",
                    setup(target, Op::Increment, Some(8), 8),
                    load,
                    families,
                    Family::Sqlx,
                )
            })
            .collect(),
        Workload::W7 => {
            let op = Op::Insert;
            let one = [Target::SqliteFile, Target::Postgres, Target::MariaDb]
                .into_iter()
                .map(|target| {
                    group(
                        "1 client",
                        setup(target, op, None, 1),
                        sequential(op, budget.ops),
                        contenders(target, true, false, true),
                        Family::Limit,
                    )
                });
            let many = [Target::Postgres, Target::MariaDb]
                .into_iter()
                .map(|target| {
                    group(
                        "64 tasks, pool of 10",
                        setup(target, op, Some(10), 10),
                        crowd(op, 64, 0),
                        contenders(target, true, false, false),
                        Family::Limit,
                    )
                });
            one.chain(many).collect()
        }
        Workload::W8 => [Target::Postgres, Target::MariaDb]
            .into_iter()
            .flat_map(|target| {
                let reads = vec![
                    Family::SqlregPrimary,
                    Family::SqlregOnReplica,
                    Family::SqlregRouted,
                    Family::SqlregPrimaryReads,
                ];
                let ryw = vec![
                    Family::SqlregPrimary,
                    Family::SqlregRouted,
                    Family::SqlregRoutedCaughtUp,
                ];
                let op = Op::WriteThenRead;
                [
                    group(
                        "read sessions, 1 client",
                        setup(target, Op::SelectById, None, 1),
                        sequential(Op::SelectById, budget.ops),
                        reads,
                        Family::SqlregPrimary,
                    ),
                    group(
                        "a write session then a read session, 1 client",
                        setup(target, op, None, 1),
                        sequential(op, (budget.ops / 2).max(1)),
                        ryw,
                        Family::SqlregPrimary,
                    ),
                ]
            })
            .collect(),
        Workload::W9 => {
            // Through the pooler, then sqlreg direct: what the pooler costs.
            let families = vec![
                Family::SqlregPgbouncer,
                Family::SqlxPgbouncer,
                Family::PgbenchPgbouncer,
                Family::SqlregRaw,
            ];
            let (read, insert) = (Op::SelectById, Op::Insert);
            vec![
                group(
                    "read sessions, 1 client",
                    setup(Target::Postgres, read, None, 1),
                    sequential(read, budget.ops),
                    families.clone(),
                    Family::SqlregRaw,
                ),
                group(
                    "insert sessions, 1 client",
                    setup(Target::Postgres, insert, None, 1),
                    sequential(insert, budget.ops),
                    families.clone(),
                    Family::SqlregRaw,
                ),
                group(
                    "insert sessions, 64 tasks, pool of 10",
                    setup(Target::Postgres, insert, Some(10), 10),
                    crowd(insert, 64, 0),
                    families,
                    Family::SqlregRaw,
                ),
            ]
        }
    }
}
