//! Every contender, one file each, and the factory that builds one by family.

mod corelib;
mod mariadb_slap;
mod pgbench;
mod raw_mysql;
mod raw_pg;
mod raw_sqlite;
mod routed;
mod seaorm;
mod sqlreg;
mod sqlx_conn;
mod sqlx_pgbouncer;
mod sqlx_pool;
mod sqlx_same;
mod traced;

use std::sync::Arc;

use crate::runner::{Contender, Driven, Op, Result};
use crate::targets::{Servers, Target};
pub use sqlx_same::{Replay, Step, steps_from_log};

/// The kinds of contender, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// The raw driver on held connections.
    Limit,
    /// One statement on a held sqlx connection, no transaction: the floor
    /// for anything that decodes sqlx rows.
    SqlxConn,
    /// sqlx's pool directly.
    Sqlx,
    /// sqlx's pool sending exactly the statements sqlreg sent.
    SqlxSame,
    /// sea-orm with `Database::connect(url)`'s defaults.
    SeaOrmDefault,
    /// sea-orm with the pool tuned as sqlreg tunes it.
    SeaOrmTuned,
    /// sqlreg, plain sqlx inside the session.
    SqlregRaw,
    /// [`Family::SqlregRaw`] with a `tracing_subscriber::fmt` subscriber
    /// installed that records sqlreg's spans.
    SqlregTraced,
    /// sqlreg, a sea-orm entity inside the session.
    SqlregEntity,
    /// Python core-lib.
    CoreLib,
    /// PostgreSQL's pgbench running the same transaction.
    Pgbench,
    /// pgbench's built-in select-only script (`-S`): one statement.
    PgbenchSelectOnly,
    /// MariaDB's load client running the same transaction.
    MariadbSlap,
    /// W8: sqlreg without replicas, everything on the primary.
    SqlregPrimary,
    /// W8: sqlreg without replicas whose url is the replica: the server
    /// [`Family::SqlregRouted`] reads from, without routing.
    SqlregOnReplica,
    /// W8: sqlreg with the replica under `replicas:`, routing defaults.
    SqlregRouted,
    /// W8: the same with `primary_reads: true`.
    SqlregPrimaryReads,
    /// W8: [`Family::SqlregRouted`] reading after a write only once the
    /// replica has replayed it.
    SqlregRoutedCaughtUp,
    /// W9: sqlreg (sqlx body, unnamed statements) through PgBouncer in
    /// transaction mode, `session.pooler: transaction`.
    SqlregPgbouncer,
    /// W9: sqlx's pool through the same PgBouncer, as sqlx documents it.
    SqlxPgbouncer,
    /// W9: pgbench's same script through the same PgBouncer, `-M extended`.
    PgbenchPgbouncer,
}

impl Family {
    /// Every family, in table order.
    pub const ALL: [Self; 21] = [
        Self::Limit,
        Self::SqlxConn,
        Self::Sqlx,
        Self::SqlxSame,
        Self::SeaOrmDefault,
        Self::SeaOrmTuned,
        Self::SqlregRaw,
        Self::SqlregTraced,
        Self::SqlregEntity,
        Self::CoreLib,
        Self::Pgbench,
        Self::PgbenchSelectOnly,
        Self::MariadbSlap,
        Self::SqlregPrimary,
        Self::SqlregOnReplica,
        Self::SqlregRouted,
        Self::SqlregPrimaryReads,
        Self::SqlregRoutedCaughtUp,
        Self::SqlregPgbouncer,
        Self::SqlxPgbouncer,
        Self::PgbenchPgbouncer,
    ];

    /// Its name on the command line (`--only sqlreg-raw,sqlx`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::SqlxConn => "sqlx-conn",
            Self::Sqlx => "sqlx",
            Self::SqlxSame => "sqlx-same",
            Self::SeaOrmDefault => "sea-orm-default",
            Self::SeaOrmTuned => "sea-orm-tuned",
            Self::SqlregRaw => "sqlreg-raw",
            Self::SqlregTraced => "sqlreg-traced",
            Self::SqlregEntity => "sqlreg-entity",
            Self::CoreLib => "core-lib",
            Self::Pgbench => "pgbench",
            Self::PgbenchSelectOnly => "pgbench-s",
            Self::MariadbSlap => "mariadb-slap",
            Self::SqlregPrimary => "sqlreg-primary",
            Self::SqlregOnReplica => "sqlreg-on-replica",
            Self::SqlregRouted => "sqlreg-routed",
            Self::SqlregPrimaryReads => "sqlreg-primary-reads",
            Self::SqlregRoutedCaughtUp => "sqlreg-routed-caught-up",
            Self::SqlregPgbouncer => "sqlreg-pgbouncer",
            Self::SqlxPgbouncer => "sqlx-pgbouncer",
            Self::PgbenchPgbouncer => "pgbench-pgbouncer",
        }
    }

    /// Whether it runs inside this process (its SQLite hops can be counted).
    pub fn in_process(self) -> bool {
        !matches!(
            self,
            Self::CoreLib
                | Self::Pgbench
                | Self::PgbenchSelectOnly
                | Self::PgbenchPgbouncer
                | Self::MariadbSlap
        )
    }

    /// Its name in tables and charts, for a target (the limit's driver differs).
    pub fn label(self, target: Target) -> &'static str {
        match self {
            Self::Limit => match target {
                Target::SqliteFile | Target::SqliteMemory => "limit: rusqlite",
                Target::Postgres => "limit: tokio-postgres, pipelined",
                Target::MariaDb => "limit: sqlx MySqlConnection, one multi-statement query",
            },
            Self::SqlxConn => match target {
                Target::SqliteFile | Target::SqliteMemory => "sqlx SqliteConnection, 1 statement",
                Target::Postgres => "sqlx PgConnection, 1 statement",
                Target::MariaDb => "sqlx MySqlConnection, 1 statement",
            },
            Self::Sqlx => "sqlx pool",
            Self::SqlxSame => "sqlx pool, sqlreg's statements",
            Self::SeaOrmDefault => "sea-orm (defaults)",
            Self::SeaOrmTuned => "sea-orm (tuned)",
            Self::SqlregRaw => "sqlreg (sqlx body)",
            Self::SqlregTraced => "sqlreg (sqlx body), fmt subscriber",
            Self::SqlregEntity => "sqlreg (entity body)",
            Self::CoreLib => "core-lib (Python)",
            Self::Pgbench => "pgbench, same script",
            Self::PgbenchSelectOnly => "pgbench -S (select only)",
            Self::MariadbSlap => "mariadb-slap, same script",
            Self::SqlregPrimary => "sqlreg, no replicas",
            Self::SqlregOnReplica => "sqlreg, no replicas, url: the replica",
            Self::SqlregRouted => "sqlreg, replicas: [replica]",
            Self::SqlregPrimaryReads => "sqlreg, replicas + primary_reads: true",
            Self::SqlregRoutedCaughtUp => "sqlreg, replicas: [replica], read once it has the write",
            Self::SqlregPgbouncer => "sqlreg (sqlx body, persistent(false)), PgBouncer",
            Self::SqlxPgbouncer => "sqlx pool (no statement cache, persistent(false)), PgBouncer",
            Self::PgbenchPgbouncer => "pgbench -M extended, same script, PgBouncer",
        }
    }
}

/// How a contender is to be set up for one workload.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// The database.
    pub target: Target,
    /// What each session does (a read-only connection for reads, …).
    pub op: Op,
    /// Pool size (`None`: sqlreg's config defaults, 5 + 10, and 15 for the peers).
    pub pool: Option<u32>,
    /// Connections the limit holds (one per task slot).
    pub held: usize,
    /// Sessions core-lib runs before it is measured.
    pub warmup: u64,
}

/// Connects one contender.
///
/// # Errors
///
/// The connect failure, or why the contender is unavailable here.
pub async fn build(
    family: Family,
    servers: &Servers,
    setup: Setup,
    replay: &Replay,
) -> Result<Box<dyn Contender>> {
    let Setup {
        target,
        op,
        pool,
        held,
        warmup,
    } = setup;
    let max = pool.unwrap_or(15);
    Ok(match family {
        Family::Limit => match target {
            Target::SqliteFile | Target::SqliteMemory => {
                driven(raw_sqlite::RawSqlite::open(servers, target, held)?)
            }
            Target::Postgres => driven(raw_pg::RawPg::connect(servers, held).await?),
            Target::MariaDb => driven(raw_mysql::RawMySql::connect(servers, held).await?),
        },
        Family::SqlxConn => driven(sqlx_conn::SqlxConn::connect(servers, target, held).await?),
        Family::Sqlx => driven(sqlx_pool::SqlxPool::connect(servers, target, max).await?),
        Family::SqlxSame => {
            driven(sqlx_same::SqlxSame::connect(servers, target, op, max, replay.clone()).await?)
        }
        Family::SeaOrmDefault => driven(seaorm::SeaOrm::default_options(servers, target).await?),
        Family::SeaOrmTuned => driven(seaorm::SeaOrm::tuned(servers, target, max).await?),
        Family::SqlregRaw => {
            driven(sqlreg::Sqlreg::connect(servers, target, pool, sqlreg::Path::Raw).await?)
        }
        Family::SqlregTraced => Box::new(traced::Traced(Driven(Arc::new(
            sqlreg::Sqlreg::connect(servers, target, pool, sqlreg::Path::Raw).await?,
        )))),
        Family::SqlregEntity => {
            driven(sqlreg::Sqlreg::connect(servers, target, pool, sqlreg::Path::Entity).await?)
        }
        Family::CoreLib => {
            let python = corelib::CoreLib::python()?;
            Box::new(corelib::CoreLib::new(python, servers, target, warmup))
        }
        Family::Pgbench => Box::new(pgbench::Pgbench::find(servers, pgbench::Script::Same)?),
        Family::PgbenchSelectOnly => Box::new(
            pgbench::Pgbench::find(servers, pgbench::Script::BuiltinSelectOnly)?
                .initialized()
                .await?,
        ),
        Family::MariadbSlap => Box::new(mariadb_slap::MariadbSlap::find(servers)?),
        Family::SqlregPrimary => routed(servers, target, routed::Hosts::Primary).await?,
        Family::SqlregOnReplica => routed(servers, target, routed::Hosts::OnReplica).await?,
        Family::SqlregRouted => routed(servers, target, routed::Hosts::Replica).await?,
        Family::SqlregPrimaryReads => {
            routed(servers, target, routed::Hosts::ReplicaAndPrimary).await?
        }
        Family::SqlregRoutedCaughtUp => {
            routed(servers, target, routed::Hosts::ReplicaCaughtUp).await?
        }
        Family::SqlregPgbouncer => driven(sqlreg::Sqlreg::through_pgbouncer(servers, pool).await?),
        Family::SqlxPgbouncer => {
            driven(sqlx_pgbouncer::SqlxPgbouncer::connect(servers, max).await?)
        }
        Family::PgbenchPgbouncer => Box::new(
            pgbench::Pgbench::find(servers, pgbench::Script::Same)?.through_pgbouncer(servers)?,
        ),
    })
}

async fn routed(
    servers: &Servers,
    target: Target,
    hosts: routed::Hosts,
) -> Result<Box<dyn Contender>> {
    Ok(Box::new(
        routed::Routed::connect(servers, target, hosts).await?,
    ))
}

fn driven<C: crate::runner::Client>(client: C) -> Box<dyn Contender> {
    Box::new(Driven(Arc::new(client)))
}
