//! pgbench with `-M prepared`: either the identical transaction from a
//! script file, or its built-in select-only script (`-S`: one SELECT by
//! primary key on `pgbench_accounts`, no transaction, one round trip), for
//! which the bench fills pgbench's own tables once (`pgbench -i`, scale 1).
//! W9 runs the script through PgBouncer in transaction mode with
//! `-M extended` instead: its named statements (`-M prepared`) outlive the
//! transaction, which PgBouncer 1.18 cannot serve there, while `-M extended`
//! binds the id to an unnamed statement as sqlx and sqlreg do behind it
//! (`-M simple` would send the id inside the text).
//! The password goes through `PGPASSWORD`, never the command line.

use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::OnceCell;

use crate::data::ROWS;
use crate::runner::{BoxFuture, Contender, Load, Mark, Op, Result, Sample};
use crate::targets::Servers;

/// Which transaction pgbench runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// The workload's own statements, from a script file.
    Same,
    /// pgbench's built-in `-S`.
    BuiltinSelectOnly,
}

/// pgbench's tables, filled once per bench process.
static INITIALIZED: OnceCell<()> = OnceCell::const_new();

/// pgbench against the local PostgreSQL.
pub struct Pgbench {
    script: Script,
    binary: PathBuf,
    scratch: PathBuf,
    port: String,
    /// `-M`'s query protocol.
    protocol: &'static str,
    user: String,
    database: String,
    password: String,
}

impl Pgbench {
    /// Finds pgbench next to the server's binaries or on `PATH`.
    pub fn find(servers: &Servers, script: Script) -> Result<Self> {
        let beside = PathBuf::from(servers.var("PG_BIN")?).join("pgbench");
        let binary = if beside.is_file() {
            beside
        } else {
            PathBuf::from("pgbench")
        };
        Ok(Self {
            script,
            binary,
            scratch: servers.scratch.clone(),
            port: servers.var("PG_PORT")?.to_owned(),
            protocol: "prepared",
            user: servers.var("USER")?.to_owned(),
            database: servers.var("DATABASE")?.to_owned(),
            password: servers.var("PASSWORD")?.to_owned(),
        })
    }

    /// The same, connecting to PgBouncer's transaction-mode port with `-M extended`.
    pub fn through_pgbouncer(self, servers: &Servers) -> Result<Self> {
        Ok(Self {
            port: servers.var("PGBOUNCER_PORT")?.to_owned(),
            protocol: "extended",
            ..self
        })
    }

    /// Fills pgbench's tables (scale 1) unless this process already did.
    pub async fn initialized(self) -> Result<Self> {
        INITIALIZED
            .get_or_try_init(|| async {
                let output = self
                    .command()
                    .args(["-i", "-q", "-s", "1"])
                    .arg(&self.database)
                    .output()
                    .await
                    .map_err(|err| format!("cannot run pgbench -i: {err}"))?;
                if output.status.success() {
                    Ok(())
                } else {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    Err(format!("pgbench -i failed ({}): {stderr}", output.status))
                }
            })
            .await?;
        Ok(self)
    }

    /// pgbench with the connection arguments.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.env("PGPASSWORD", &self.password).args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port,
            "-U",
            &self.user,
        ]);
        command
    }

    /// The arguments that choose the transaction for `op`: a script file
    /// (written here) or `-S`.
    fn script(&self, op: Op) -> Result<Vec<String>> {
        if self.script == Script::BuiltinSelectOnly {
            return match op {
                Op::SelectById => Ok(vec!["-S".into()]),
                other => Err(format!("pgbench -S runs reads only, not {other:?}").into()),
            };
        }
        let select = "SELECT id, name, qty FROM items WHERE id = :id;";
        let body = match op {
            Op::SelectById => format!("BEGIN;\n{select}\nCOMMIT;\n"),
            Op::FailThenSelect => {
                format!("BEGIN;\n{select}\nROLLBACK;\nBEGIN;\n{select}\nCOMMIT;\n")
            }
            Op::Insert => "BEGIN;\nINSERT INTO events (item_id) VALUES (:id);\nCOMMIT;\n".into(),
            other => return Err(format!("pgbench does not run {other:?}").into()),
        };
        let path = self.scratch.join(format!("pgbench-{op:?}.sql"));
        std::fs::write(&path, format!("\\set id random(1, {ROWS})\n{body}"))?;
        Ok(vec!["-f".into(), path.display().to_string()])
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
        let output = self
            .command()
            .args(["-n", "-M", self.protocol])
            .args(["-c", clients, "-j", if clients == "1" { "1" } else { "2" }])
            .args(limit)
            .args(script)
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
