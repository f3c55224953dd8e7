//! mariadb-slap (Debian's `mariadb-client`), MariaDB's own load client —
//! its pgbench: the same transaction as every contender (`BEGIN`, the
//! statement, `COMMIT`), each statement a text query on libmariadb, from a
//! file of sessions that walk the same ids. One client for a sequential
//! load, ten (like `pgbench -c10`) for a crowd. The credentials go through
//! an option file only this user can read, never the command line.
//!
//! mariadb-slap runs a fixed list of queries per client, not for a time, so
//! a crowd's list is sized from the rate of its previous run (the warm-up's).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::process::Command;

use crate::data::{Dialect, id_at};
use crate::runner::{BoxFuture, Contender, Load, Mark, Op, Result, Sample};
use crate::targets::Servers;

/// Clients for a crowd, as `pgbench -c10`.
const CROWD_CLIENTS: u64 = 10;

/// mariadb-slap against the local MariaDB.
pub struct MariadbSlap {
    binary: PathBuf,
    scratch: PathBuf,
    defaults: PathBuf,
    database: String,
    /// Sessions per second of the last crowd run.
    crowd_rate: Mutex<Option<f64>>,
}

impl MariadbSlap {
    /// Finds mariadb-slap on `PATH` and writes its option file.
    pub fn find(servers: &Servers) -> Result<Self> {
        let binary = ["mariadb-slap", "mysqlslap"]
            .into_iter()
            .find_map(|name| {
                std::env::var_os("PATH").and_then(|path| {
                    std::env::split_paths(&path)
                        .map(|dir| dir.join(name))
                        .find(|p| p.is_file())
                })
            })
            .ok_or("mariadb-slap not found (Debian's mariadb-client package)")?;
        std::fs::create_dir_all(&servers.scratch)?;
        let defaults = servers.scratch.join("mariadb-slap.cnf");
        let quoted = servers
            .var("PASSWORD")?
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        let text = format!(
            "[client]\nuser={}\npassword=\"{quoted}\"\nhost=127.0.0.1\nport={}\n",
            servers.var("USER")?,
            servers.var("MARIADB_PORT")?
        );
        write_private(&defaults, &text)?;
        Ok(Self {
            binary,
            scratch: servers.scratch.clone(),
            defaults,
            database: servers.var("DATABASE")?.to_owned(),
            crowd_rate: Mutex::new(None),
        })
    }

    /// Writes `sessions` sessions of `op` for one client; returns the file.
    fn queries(&self, op: Op, sessions: u64) -> Result<PathBuf> {
        let select = |id: i32| Dialect::MySql.select().replace('?', &id.to_string());
        let mut text = String::new();
        for k in 0..sessions {
            let id = id_at(k);
            let session = match op {
                Op::SelectById => format!("BEGIN;{};COMMIT;", select(id)),
                Op::FailThenSelect => {
                    format!("BEGIN;{};ROLLBACK;BEGIN;{};COMMIT;", select(id), select(id))
                }
                Op::Insert => format!(
                    "BEGIN;{};COMMIT;",
                    Dialect::MySql.insert().replace('?', &id.to_string())
                ),
                other => return Err(format!("mariadb-slap does not run {other:?}").into()),
            };
            text.push_str(&session);
        }
        let path = self.scratch.join(format!("mariadb-slap-{op:?}.sql"));
        std::fs::write(&path, text)?;
        Ok(path)
    }

    async fn run_slap(
        &self,
        op: Op,
        clients: u64,
        sessions: u64,
        mark: Mark<'_>,
    ) -> Result<Sample> {
        let file = self.queries(op, sessions)?;
        mark();
        let output = Command::new(&self.binary)
            .arg(format!("--defaults-file={}", self.defaults.display()))
            .arg(format!("--create-schema={}", self.database))
            .args(["--no-drop", "--skip-ssl", "--iterations=1", "--delimiter=;"])
            .arg(format!("--concurrency={clients}"))
            .arg(format!("--query={}", file.display()))
            .output()
            .await?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("mariadb-slap failed ({}): {stderr}", output.status).into());
        }
        let seconds = parse(&String::from_utf8_lossy(&output.stdout))?;
        Ok(Sample {
            ops: clients * sessions,
            elapsed: Duration::from_secs_f64(seconds.max(1e-3)),
            ..Sample::default()
        })
    }
}

/// Seconds to run every query, from mariadb-slap's summary.
fn parse(stdout: &str) -> Result<f64> {
    stdout
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Average number of seconds to run all queries: ")
        })
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no timing in mariadb-slap's output: {stdout}").into())
}

/// Writes `text` to a new file only this user can read.
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

impl Contender for MariadbSlap {
    fn run<'a>(&'a self, load: Load, mark: Mark<'a>) -> BoxFuture<'a, Result<Sample>> {
        Box::pin(async move {
            match load {
                Load::Sequential { op, ops } => self.run_slap(op, 1, ops, mark).await,
                Load::Crowd { op, duration, .. } => {
                    let rate = self
                        .crowd_rate
                        .lock()
                        .map_err(|_| "poisoned")?
                        .unwrap_or(2000.0);
                    let total = rate * duration.as_secs_f64();
                    let sessions = (total / CROWD_CLIENTS as f64).ceil().max(10.0) as u64;
                    let sample = self.run_slap(op, CROWD_CLIENTS, sessions, mark).await?;
                    *self.crowd_rate.lock().map_err(|_| "poisoned")? = Some(sample.ops_per_sec());
                    Ok(sample)
                }
                Load::HotRow { .. } => Err("mariadb-slap does not run the hot-row workload".into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_mariadb_slap_summary() {
        let out = "Benchmark\n\tAverage number of seconds to run all queries: 0.872 seconds\n\
                   \tMinimum number of seconds to run all queries: 0.872 seconds\n";
        assert!((super::parse(out).unwrap() - 0.872).abs() < 1e-9);
    }
}
