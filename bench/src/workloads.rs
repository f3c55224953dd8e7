//! W1–W6: which databases, contenders, loads and pool sizes each workload runs.

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
}

impl Workload {
    /// All of them, in order.
    pub const ALL: [Self; 6] = [Self::W1, Self::W2, Self::W3, Self::W4, Self::W5, Self::W6];

    /// Its short title.
    pub fn title(self) -> &'static str {
        match self {
            Self::W1 => "W1 checkout",
            Self::W2 => "W2 session by primary key",
            Self::W3 => "W3 error path",
            Self::W4 => "W4 concurrency",
            Self::W5 => "W5 SQLite writers",
            Self::W6 => "W6 hot row",
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
    /// Which of them is the physical limit here (W6 has none: sqlx pool).
    pub limit: Family,
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

/// The groups a workload runs.
pub fn plan(workload: Workload, budget: Budget) -> Vec<Group> {
    let setup = |target, pool, held| Setup {
        target,
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
    let with_pgbench = |target: Target, mut families: Vec<Family>| {
        if target == Target::Postgres {
            families.push(Family::Pgbench);
        }
        families
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
                    setup(Target::Postgres, Some(8), 1),
                    sequential(Op::Checkout, budget.ops * 4),
                    families.clone(),
                    Family::Sqlx,
                ),
                group(
                    "16 tasks, pool of 8",
                    setup(Target::Postgres, Some(8), 1),
                    crowd(Op::Checkout, 16, 0),
                    families,
                    Family::Sqlx,
                ),
            ]
        }
        Workload::W2 | Workload::W3 => {
            let (op, ops, targets) = if workload == Workload::W2 {
                let all = vec![
                    Target::SqliteFile,
                    Target::SqliteMemory,
                    Target::Postgres,
                    Target::MariaDb,
                ];
                (Op::SelectById, budget.ops, all)
            } else {
                let some = vec![Target::SqliteFile, Target::Postgres, Target::MariaDb];
                (Op::FailThenSelect, (budget.ops / 2).max(1), some)
            };
            targets
                .into_iter()
                .map(|target| {
                    let families = with_pgbench(target, PEERS.to_vec());
                    group(
                        "1 client",
                        setup(target, None, 1),
                        sequential(op, ops),
                        families,
                        Family::Limit,
                    )
                })
                .collect()
        }
        Workload::W4 => [Target::Postgres, Target::MariaDb]
            .into_iter()
            .map(|target| {
                let families = with_pgbench(target, PEERS[..6].to_vec());
                let load = crowd(Op::SelectById, 64, 0);
                group(
                    "64 tasks, pool of 10",
                    setup(target, Some(10), 10),
                    load,
                    families,
                    Family::Limit,
                )
            })
            .collect(),
        Workload::W5 => {
            let families = PEERS[..6].to_vec();
            let load = crowd(Op::SelectById, 16, 8);
            let setup = setup(Target::SqliteFile, None, 16);
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
                    setup(target, Some(8), 8),
                    load,
                    families,
                    Family::Sqlx,
                )
            })
            .collect(),
    }
}
