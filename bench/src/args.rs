//! The command line: `sqlreg-bench [all | goals | recycle | w1 … w9]… [--quick] [--runs N] [--out DIR]`.

use std::path::PathBuf;
use std::time::Duration;

use crate::contenders::Family;
use crate::targets::Target;
use crate::workloads::{Budget, Workload};

/// What to run and where to write the report.
#[derive(Debug)]
pub struct Options {
    /// The workloads, in order.
    pub workloads: Vec<Workload>,
    /// Only the groups issue 21's goals are judged on, and only the
    /// contenders they compare (`goals`).
    pub goals: bool,
    /// Only how evenly `pool_recycle` replaces connections (`recycle`).
    pub recycle: bool,
    /// Seconds-long smoke run with tiny N (what CI runs).
    pub quick: bool,
    /// Measured rounds per contender.
    pub runs: usize,
    /// Where `BENCHMARKS.md` and the chart go.
    pub out: PathBuf,
    /// Run only these contenders (e.g. to profile one of them).
    pub only: Option<Vec<Family>>,
    /// Run only on these databases.
    pub targets: Option<Vec<Target>>,
}

/// How to call the binary.
pub const USAGE: &str =
    "usage: sqlreg-bench [all | goals | recycle | w1 | w2 | w3 | w4 | w5 | w6 | w7 | w8 | w9]... [--quick] [--runs N] [--out DIR]
  all       every workload (the default)
  goals     only what issue 21's goals are judged on, in a few minutes: W2 and W7
            with one client on every database, for sqlreg, sqlx, sea-orm (tuned) and
            the drivers' floors: instructions per session (callgrind) and per-round
            throughput ratios (the run to make before and after a change; its report
            goes to a temporary directory unless --out says otherwise)
  recycle   only how evenly pool_recycle replaces connections: pool_size 10,
            pool_recycle 5, a minute of steady load on PostgreSQL; the
            connections replaced in each second and the busiest second's
            ratio to the mean
  --quick   a few seconds, tiny N, 2 runs: checks the suite still works (CI)
  --runs N  measured runs per contender (default 5)
  --out DIR where BENCHMARKS.md and benchmarks.svg go (default: the repository
            root; with --quick a temporary directory)
  --only A,B  only these contenders: limit, sqlx-conn, sqlx, sqlx-same,
            sea-orm-default, sea-orm-tuned, sqlreg-raw, sqlreg-traced, sqlreg-entity,
            core-lib, pgbench, pgbench-s, mariadb-slap, sqlreg-primary, sqlreg-on-replica,
            sqlreg-routed, sqlreg-primary-reads, sqlreg-routed-caught-up, sqlreg-pgbouncer,
            sqlx-pgbouncer, pgbench-pgbouncer (e.g. under a profiler)
  --target A,B  only on these databases: sqlite-file, sqlite-memory, postgres, mariadb
Without the servers' environment, it starts them through scripts/bench.sh.";

impl Options {
    /// Parses `args` (without the program name).
    ///
    /// # Errors
    ///
    /// A message naming the argument it did not understand.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut workloads = Vec::new();
        let (mut quick, mut runs, mut out, mut only) = (false, None, None, None);
        let (mut goals, mut recycle) = (false, false);
        let mut targets = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "all" => workloads.extend(Workload::ALL),
                "goals" => goals = true,
                "recycle" => recycle = true,
                "w1" | "W1" => workloads.push(Workload::W1),
                "w2" | "W2" => workloads.push(Workload::W2),
                "w3" | "W3" => workloads.push(Workload::W3),
                "w4" | "W4" => workloads.push(Workload::W4),
                "w5" | "W5" => workloads.push(Workload::W5),
                "w6" | "W6" => workloads.push(Workload::W6),
                "w7" | "W7" => workloads.push(Workload::W7),
                "w8" | "W8" => workloads.push(Workload::W8),
                "w9" | "W9" => workloads.push(Workload::W9),
                "--quick" => quick = true,
                "--runs" => {
                    let n = args.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0);
                    runs = Some(n.ok_or("--runs needs a positive number")?);
                }
                "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a directory")?)),
                "--only" => only = Some(families(&args.next().ok_or("--only needs names")?)?),
                "--target" => {
                    targets = Some(databases(&args.next().ok_or("--target needs names")?)?);
                }
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
        }
        if workloads.is_empty() {
            workloads.extend(Workload::ALL);
        }
        workloads.dedup();
        let out = out.unwrap_or_else(|| {
            if quick {
                std::env::temp_dir().join("sqlreg-bench-quick")
            } else if goals {
                std::env::temp_dir().join("sqlreg-bench-goals")
            } else {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            }
        });
        Ok(Self {
            workloads,
            goals,
            recycle,
            quick,
            runs: runs.unwrap_or(if quick { 2 } else { 5 }),
            out,
            only,
            targets,
        })
    }

    /// Work per run.
    pub fn budget(&self) -> Budget {
        if self.quick {
            Budget {
                ops: 40,
                duration: Duration::from_millis(200),
            }
        } else if self.goals {
            Budget {
                ops: 1000,
                duration: Duration::from_secs(1),
            }
        } else {
            Budget {
                ops: 2000,
                duration: Duration::from_secs(2),
            }
        }
    }
}

/// `sqlreg-raw,sqlx` → those families.
fn families(list: &str) -> Result<Vec<Family>, String> {
    list.split(',')
        .map(|name| {
            Family::ALL
                .into_iter()
                .find(|f| f.key() == name.trim())
                .ok_or_else(|| format!("unknown contender `{name}`\n{USAGE}"))
        })
        .collect()
}

/// `postgres,mariadb` → those targets.
fn databases(list: &str) -> Result<Vec<Target>, String> {
    list.split(',')
        .map(|name| match name.trim() {
            "sqlite-file" => Ok(Target::SqliteFile),
            "sqlite-memory" => Ok(Target::SqliteMemory),
            "postgres" => Ok(Target::Postgres),
            "mariadb" => Ok(Target::MariaDb),
            other => Err(format!("unknown database `{other}`\n{USAGE}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_to_every_workload_and_five_runs() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.workloads, Workload::ALL);
        assert_eq!((options.quick, options.runs), (false, 5));
    }

    #[test]
    fn quick_and_selected_workloads() {
        let options = parse(&["w2", "w4", "w6", "--quick"]).unwrap();
        assert_eq!(
            options.workloads,
            [Workload::W2, Workload::W4, Workload::W6]
        );
        assert_eq!(options.runs, 2);
        let options = parse(&["w2", "--target", "postgres,mariadb"]).unwrap();
        assert_eq!(
            options.targets,
            Some(vec![Target::Postgres, Target::MariaDb])
        );
        assert!(
            parse(&["w10"])
                .unwrap_err()
                .contains("unknown argument `w10`")
        );
    }
}
