//! core-lib (Python): `corelib_bench.py` run by the virtualenv's Python that
//! `scripts/bench.sh` prepared, one process per run.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::data::ROWS;
use crate::runner::{BoxFuture, Contender, Load, Mark, Op, Result, Sample};
use crate::targets::{Servers, Target};

/// The Python script, next to this crate's manifest.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corelib_bench.py");

/// core-lib on one target.
pub struct CoreLib {
    python: PathBuf,
    target: Target,
    sqlite_file: PathBuf,
    warmup: u64,
}

#[derive(Deserialize)]
struct Report {
    ops: u64,
    elapsed: f64,
}

impl CoreLib {
    /// The Python `scripts/bench.sh` installed core-lib for, or why there is none.
    pub fn python() -> Result<PathBuf, String> {
        match std::env::var("SQLREG_BENCH_PYTHON") {
            Ok(python) if !python.is_empty() => Ok(PathBuf::from(python)),
            _ => Err(std::env::var("SQLREG_BENCH_CORELIB")
                .unwrap_or_else(|_| "no virtualenv (run through scripts/bench.sh)".into())),
        }
    }

    /// core-lib on `target`, warming up with `warmup` sessions per run.
    pub fn new(python: PathBuf, servers: &Servers, target: Target, warmup: u64) -> Self {
        Self {
            python,
            target,
            sqlite_file: servers.sqlite_file(),
            warmup,
        }
    }

    async fn run_once(&self, op: Op, ops: u64, mark: Mark<'_>) -> Result<Sample> {
        let target = match self.target {
            Target::SqliteFile => "sqlite-file",
            Target::SqliteMemory => "sqlite-memory",
            Target::Postgres => "postgres",
            Target::MariaDb => "mariadb",
        };
        let op = match op {
            Op::SelectById => "select",
            Op::FailThenSelect => "fail-then-select",
            Op::Insert => "insert",
            other => return Err(format!("core-lib does not run {other:?}").into()),
        };
        let mut child = Command::new(&self.python)
            .arg(SCRIPT)
            .args([
                target,
                op,
                &ops.to_string(),
                &self.warmup.to_string(),
                &ROWS.to_string(),
            ])
            .arg(&self.sqlite_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let ready = lines.next_line().await?;
        if ready.as_deref() != Some("ready") {
            let status = child.wait().await?;
            return Err(format!("core-lib script did not start ({status})").into());
        }
        mark();
        stdin.write_all(b"go\n").await?;
        let line = lines
            .next_line()
            .await?
            .ok_or("core-lib script printed no result")?;
        let report: Report = serde_json::from_str(&line)?;
        child.wait().await?;
        Ok(Sample {
            ops: report.ops,
            elapsed: Duration::from_secs_f64(report.elapsed),
            ..Sample::default()
        })
    }
}

impl Contender for CoreLib {
    fn run<'a>(&'a self, load: Load, mark: Mark<'a>) -> BoxFuture<'a, Result<Sample>> {
        Box::pin(async move {
            match load {
                Load::Sequential { op, ops } => self.run_once(op, ops, mark).await,
                Load::Crowd { .. } | Load::HotRow { .. } => {
                    Err("core-lib runs sequential loads only".into())
                }
            }
        })
    }
}
