//! Every contender, one file each, and the factory that builds one by family.

mod corelib;
mod pgbench;
mod raw_mysql;
mod raw_pg;
mod raw_sqlite;
mod seaorm;
mod sqlreg;
mod sqlx_pool;

use std::sync::Arc;

use crate::runner::{Contender, Driven, Result};
use crate::targets::{Servers, Target};

/// The kinds of contender, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// The raw driver on held connections.
    Limit,
    /// sqlx's pool directly.
    Sqlx,
    /// sea-orm with `Database::connect(url)`'s defaults.
    SeaOrmDefault,
    /// sea-orm with the pool tuned as sqlreg tunes it.
    SeaOrmTuned,
    /// sqlreg, plain sqlx inside the session.
    SqlregRaw,
    /// sqlreg, a sea-orm entity inside the session.
    SqlregEntity,
    /// Python core-lib.
    CoreLib,
    /// PostgreSQL's pgbench.
    Pgbench,
}

impl Family {
    /// Every family, in table order.
    pub const ALL: [Self; 8] = [
        Self::Limit,
        Self::Sqlx,
        Self::SeaOrmDefault,
        Self::SeaOrmTuned,
        Self::SqlregRaw,
        Self::SqlregEntity,
        Self::CoreLib,
        Self::Pgbench,
    ];

    /// Its name on the command line (`--only sqlreg-raw,sqlx`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::Sqlx => "sqlx",
            Self::SeaOrmDefault => "sea-orm-default",
            Self::SeaOrmTuned => "sea-orm-tuned",
            Self::SqlregRaw => "sqlreg-raw",
            Self::SqlregEntity => "sqlreg-entity",
            Self::CoreLib => "core-lib",
            Self::Pgbench => "pgbench",
        }
    }

    /// Its name in tables and charts, for a target (the limit's driver differs).
    pub fn label(self, target: Target) -> &'static str {
        match self {
            Self::Limit => match target {
                Target::SqliteFile | Target::SqliteMemory => "limit: rusqlite",
                Target::Postgres => "limit: tokio-postgres, pipelined",
                Target::MariaDb => "limit: sqlx MySqlConnection",
            },
            Self::Sqlx => "sqlx pool",
            Self::SeaOrmDefault => "sea-orm (defaults)",
            Self::SeaOrmTuned => "sea-orm (tuned)",
            Self::SqlregRaw => "sqlreg (sqlx body)",
            Self::SqlregEntity => "sqlreg (entity body)",
            Self::CoreLib => "core-lib (Python)",
            Self::Pgbench => "pgbench",
        }
    }
}

/// How a contender is to be set up for one workload.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// The database.
    pub target: Target,
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
pub async fn build(family: Family, servers: &Servers, setup: Setup) -> Result<Box<dyn Contender>> {
    let Setup {
        target,
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
        Family::Sqlx => driven(sqlx_pool::SqlxPool::connect(servers, target, max).await?),
        Family::SeaOrmDefault => driven(seaorm::SeaOrm::default_options(servers, target).await?),
        Family::SeaOrmTuned => driven(seaorm::SeaOrm::tuned(servers, target, max).await?),
        Family::SqlregRaw => {
            driven(sqlreg::Sqlreg::connect(servers, target, pool, sqlreg::Path::Raw).await?)
        }
        Family::SqlregEntity => {
            driven(sqlreg::Sqlreg::connect(servers, target, pool, sqlreg::Path::Entity).await?)
        }
        Family::CoreLib => {
            let python = corelib::CoreLib::python()?;
            Box::new(corelib::CoreLib::new(python, servers, target, warmup))
        }
        Family::Pgbench => Box::new(pgbench::Pgbench::find(servers)?),
    })
}

fn driven<C: crate::runner::Client>(client: C) -> Box<dyn Contender> {
    Box::new(Driven(Arc::new(client)))
}
