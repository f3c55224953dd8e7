//! pgbench running the identical transaction from a script file with
//! `-M prepared`; the password goes through `PGPASSWORD`, never the command line.

use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

use crate::data::ROWS;
use crate::runner::{BoxFuture, Contender, Load, Mark, Op, Result, Sample};
use crate::targets::Servers;

/// pgbench against the local PostgreSQL.
pub struct Pgbench {
    binary: PathBuf,
    scratch: PathBuf,
    port: String,
    user: String,
    database: String,
    password: String,
}

impl Pgbench {
    /// Finds pgbench next to the server's binaries or on `PATH`.
    pub fn find(servers: &Servers) -> Result<Self> {
        let beside = PathBuf::from(servers.var("PG_BIN")?).join("pgbench");
        let binary = if beside.is_file() {
            beside
        } else {
            PathBuf::from("pgbench")
        };
        Ok(Self {
            binary,
            scratch: servers.scratch.clone(),
            port: servers.var("PG_PORT")?.to_owned(),
            user: servers.var("USER")?.to_owned(),
            database: servers.var("DATABASE")?.to_owned(),
            password: servers.var("PASSWORD")?.to_owned(),
        })
    }

    /// Writes the transaction script for `op` and returns its path.
    fn script(&self, op: Op) -> Result<PathBuf> {
        let select = "SELECT id, name, qty FROM items WHERE id = :id;";
        let body = match op {
            Op::SelectById => format!("BEGIN;\n{select}\nCOMMIT;\n"),
            Op::FailThenSelect => {
                format!("BEGIN;\n{select}\nROLLBACK;\nBEGIN;\n{select}\nCOMMIT;\n")
            }
            other => return Err(format!("pgbench does not run {other:?}").into()),
        };
        let path = self.scratch.join(format!("pgbench-{op:?}.sql"));
        std::fs::write(&path, format!("\\set id random(1, {ROWS})\n{body}"))?;
        Ok(path)
    }

    async fn run_pgbench(
        &self,
        op: Op,
        limit: &[String],
        clients: &str,
        mark: Mark<'_>,
    ) -> Result<Sample> {
        let script = self.script(op)?;
        mark();
        let output = Command::new(&self.binary)
            .env("PGPASSWORD", &self.password)
            .args([
                "-n",
                "-M",
                "prepared",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port,
                "-U",
                &self.user,
            ])
            .args(["-c", clients, "-j", if clients == "1" { "1" } else { "2" }])
            .args(limit)
            .arg("-f")
            .arg(&script)
            .arg(&self.database)
            .output()
            .await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("pgbench failed ({}): {stderr}", output.status).into());
        }
        parse(&stdout)
    }
}

/// Transactions processed and tps (without connection time) from pgbench's summary.
fn parse(stdout: &str) -> Result<Sample> {
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split(['/', ' ']).next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    let ops = field("number of transactions actually processed: ").ok_or("no transaction count")?;
    let tps = field("tps = ").ok_or("no tps")?;
    Ok(Sample {
        ops: ops as u64,
        elapsed: Duration::from_secs_f64(ops / tps.max(1e-9)),
        ..Sample::default()
    })
}

impl Contender for Pgbench {
    fn run<'a>(&'a self, load: Load, mark: Mark<'a>) -> BoxFuture<'a, Result<Sample>> {
        Box::pin(async move {
            match load {
                Load::Sequential { op, ops } => {
                    self.run_pgbench(op, &["-t".into(), ops.to_string()], "1", mark)
                        .await
                }
                Load::Crowd { op, duration, .. } => {
                    let secs = duration.as_secs_f64().ceil().max(1.0).to_string();
                    self.run_pgbench(op, &["-T".into(), secs], "10", mark).await
                }
                Load::HotRow { .. } => Err("pgbench does not run the hot-row workload".into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_pgbench_summary() {
        let out = "number of transactions actually processed: 500/500\n\
                   latency average = 0.2 ms\ntps = 5000.0 (without initial connection time)\n";
        let sample = super::parse(out).unwrap();
        assert_eq!(sample.ops, 500);
        assert!((sample.ops_per_sec() - 5000.0).abs() < 1.0);
    }
}
