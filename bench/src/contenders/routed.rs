//! W8: sqlreg with the test servers' replica under `replicas:` (routing
//! defaults: read-your-writes on), and the same registry without it, so
//! that what routing costs is the only difference between them.
//!
//! Each read session records how long it took to open: from calling
//! `read_session` until its body starts (choosing a host, checking a
//! connection out, and after a write, waiting for the replica to replay it).
//! Who served the reads is counted: for plain reads from the replicas'
//! checkouts (`host_stats()`: a registry that never writes never falls back
//! from a replica it checked out), after a write by asking the server in
//! the session, since a read that gave up waiting for the replica checked
//! one out before it went to the primary.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Session, SqlConnectionRegistry};

use super::sqlreg::{Path, Sqlreg};
use crate::data::{self, Dialect};
use crate::runner::{BenchError, BoxFuture, Contender, Load, Mark, Op, Result, Sample};
use crate::targets::{Servers, Target};

/// How long a registry with replicas may take to serve its first read from
/// one (the replica replaying the seed, the first connection).
const FIRST_REPLICA_READ: Duration = Duration::from_secs(30);

/// The values W8's writes give `qty`: above the seed's (0..97), and never
/// the same twice in a process, so a stale read cannot pass for a fresh one.
static WRITTEN: AtomicI32 = AtomicI32::new(1000);

/// Where the registry sends read sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hosts {
    /// No `replicas:`: everything on the primary.
    Primary,
    /// No `replicas:`, and the url is the replica's: the same server runs
    /// the reads as with [`Hosts::Replica`], without any routing.
    OnReplica,
    /// `replicas: [the replica]`, routing defaults.
    Replica,
    /// The same with `routing: {primary_reads: true}`.
    ReplicaAndPrimary,
    /// [`Hosts::Replica`], and after each write the contender waits (outside
    /// the measured open) until the replica shows the value written, so that
    /// a read after a write finds the replica caught up.
    ReplicaCaughtUp,
}

impl Hosts {
    /// Whether the registry has `replicas:` and routes its reads.
    fn routes(self) -> bool {
        !matches!(self, Self::Primary | Self::OnReplica)
    }
}

/// A registry set up as [`Hosts`] says, running W8's sessions.
pub struct Routed {
    sqlreg: Sqlreg,
    dialect: Dialect,
    hosts: Hosts,
    /// For [`Hosts::ReplicaCaughtUp`]: the same replica without
    /// read-your-writes and with `fallback: error`, whose reads see what
    /// the replica has replayed.
    replica: Option<Sqlreg>,
}

impl Routed {
    /// Connects to `target`'s primary (and replica); with replicas, returns
    /// once a read session has been served by one.
    ///
    /// Every connection runs with `synchronous_commit=on` on PostgreSQL:
    /// the test servers turn it off, which delays streaming a commit to the
    /// standby by up to `wal_writer_delay`, and a production primary commits
    /// with it on (the routing tests do the same).
    pub async fn connect(servers: &Servers, target: Target, hosts: Hosts) -> Result<Self> {
        let dialect = target.dialect();
        let (query, primary_port, replica_port) = match target {
            Target::Postgres => (
                "{options: '-c synchronous_commit=on'}",
                "SQLREG_TEST_PG_PORT",
                "SQLREG_TEST_PG_STANDBY_PORT",
            ),
            Target::MariaDb => (
                "{}",
                "SQLREG_TEST_MARIADB_PORT",
                "SQLREG_TEST_MARIADB_REPLICA_PORT",
            ),
            Target::SqliteFile | Target::SqliteMemory => {
                return Err("SQLite has no replicas".into());
            }
        };
        // Checked here so that a missing replica is named, not a YAML error.
        servers.var(replica_port.trim_start_matches("SQLREG_TEST_"))?;
        let mut url = servers.yaml_url(target);
        if hosts == Hosts::OnReplica {
            url = url.replace(primary_port, replica_port);
        }
        let parts = url.strip_suffix('}').ok_or("the url is a YAML mapping")?;
        let url = format!("{parts}, query: {query}}}");
        let replicas = if hosts.routes() {
            format!("\n  replicas: [{{port: '${{oc.env:{replica_port}}}'}}]")
        } else {
            String::new()
        };
        let yaml = |routing: &str| {
            format!(
                "db:\n  log_queries: false\n  create_db: true\n  \
                 session: {{pool_pre_ping: false}}\n  url: {url}{replicas}\n  routing: {routing}\n"
            )
        };
        let routing = if hosts == Hosts::ReplicaAndPrimary {
            "{primary_reads: true}"
        } else {
            "{}"
        };
        let replica = match hosts {
            Hosts::ReplicaCaughtUp => {
                let yaml = yaml("{read_your_writes: false, fallback: error}");
                Some(Sqlreg::from_yaml(&yaml, target, Path::Raw).await?)
            }
            _ => None,
        };
        let routed = Self {
            sqlreg: Sqlreg::from_yaml(&yaml(routing), target, Path::Raw).await?,
            dialect,
            hosts,
            replica,
        };
        routed.first_replica_read().await?;
        Ok(routed)
    }

    fn db(&self) -> &SqlConnectionRegistry {
        self.sqlreg.registry()
    }

    /// Waits until a replica has served a read of `items`.
    async fn first_replica_read(&self) -> Result<()> {
        if !self.hosts.routes() {
            return Ok(());
        }
        let deadline = Instant::now() + FIRST_REPLICA_READ;
        loop {
            let read = self
                .db()
                .read_session(async |s| {
                    self.sqlreg.select(s, 1).await?;
                    on_replica(s, self.dialect).await
                })
                .await;
            match read {
                Ok(true) => return Ok(()),
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(false) => return Err("the replica never served a read".into()),
                Err(err) => return Err(format!("the replica never served a read: {err}").into()),
            }
        }
    }

    /// Read sessions the replicas checked out so far.
    fn replica_checkouts(&self) -> Option<u64> {
        self.hosts.routes().then(|| {
            self.db()
                .host_stats()
                .iter()
                .filter(|h| h.replica)
                .map(|h| h.pool.acquired)
                .sum()
        })
    }

    /// W2's read session; returns how long it took to open.
    async fn read(&self, id: i32) -> Result<Duration> {
        let called = Instant::now();
        let began = self
            .db()
            .read_session(async |s| {
                let began = Instant::now();
                self.sqlreg.select(s, id).await?;
                Ok::<_, BenchError>(began)
            })
            .await?;
        Ok(began - called)
    }

    /// A write session setting row `id`'s `qty`, then a read session that
    /// must see it; returns how long the read took to open and whether a
    /// replica served it. A stale read is an error: it ends the run.
    async fn write_then_read(&self, id: i32) -> Result<(Duration, bool)> {
        let value = WRITTEN.fetch_add(1, Ordering::Relaxed);
        let dialect = self.dialect;
        self.db()
            .session(async |s| {
                let sql = dialect.update_counter();
                let stmt = Statement::from_sql_and_values(
                    s.get_database_backend(),
                    sql,
                    [value.into(), id.into()],
                );
                s.execute_raw(stmt).await?;
                Ok::<_, BenchError>(())
            })
            .await?;
        if let Some(replica) = &self.replica {
            while read_counter(replica.registry(), dialect, id).await? != value {
                tokio::task::yield_now().await;
            }
        }
        let called = Instant::now();
        let (began, seen, replica) = self
            .db()
            .read_session(async |s| {
                let began = Instant::now();
                let seen = counter(s, dialect, id).await?;
                Ok::<_, BenchError>((began, seen, on_replica(s, dialect).await?))
            })
            .await?;
        if seen != value {
            let host = if replica {
                "the replica"
            } else {
                "the primary"
            };
            return Err(format!("a read after a write on {host} missed it").into());
        }
        Ok((began - called, replica))
    }
}

/// Row `id`'s `qty` as `db`'s read sessions see it.
async fn read_counter(db: &SqlConnectionRegistry, dialect: Dialect, id: i32) -> Result<i32> {
    db.read_session(async |s| counter(s, dialect, id).await)
        .await
}

/// Row `id`'s `qty`.
async fn counter(s: &Session, dialect: Dialect, id: i32) -> Result<i32> {
    let sql = dialect.select_counter();
    let stmt = Statement::from_sql_and_values(s.get_database_backend(), sql, [id.into()]);
    let row = s.query_one_raw(stmt).await?.ok_or("row not found")?;
    Ok(row.try_get("", "qty")?)
}

/// Whether `s` runs on a replica, as the server says.
async fn on_replica(s: &Session, dialect: Dialect) -> Result<bool> {
    let stmt = Statement::from_string(s.get_database_backend(), dialect.on_replica());
    let row = s.query_one_raw(stmt).await?.ok_or("no row")?;
    Ok(row.try_get::<i64>("", "v")? == 1)
}

impl Contender for Routed {
    fn run<'a>(&'a self, load: Load, mark: Mark<'a>) -> BoxFuture<'a, Result<Sample>> {
        Box::pin(async move {
            let Load::Sequential { op, ops } = load else {
                return Err("W8 runs one client".into());
            };
            let before = self.replica_checkouts();
            let mut sample = Sample {
                ops,
                latencies: Vec::with_capacity(usize::try_from(ops)?),
                ..Sample::default()
            };
            let mut served = 0;
            mark();
            let started = Instant::now();
            for k in 0..ops {
                let id = data::id_at(k);
                match op {
                    Op::SelectById => sample.latencies.push(self.read(id).await?),
                    Op::WriteThenRead => {
                        let (wait, replica) = self.write_then_read(id).await?;
                        sample.latencies.push(wait);
                        served += u64::from(replica);
                    }
                    other => return Err(format!("W8 does not run {other:?}").into()),
                }
            }
            sample.elapsed = started.elapsed();
            sample.on_replica = match (op, before) {
                (_, None) => None,
                (Op::WriteThenRead, Some(_)) => Some(served),
                (_, Some(before)) => Some(self.replica_checkouts().unwrap_or(before) - before),
            };
            Ok(sample)
        })
    }
}
