//! sqlreg through its public API only: `read_session(..)` for reads and
//! `session(..)` for writes, with plain sqlx inside (`Session::sqlx`) or a
//! sea-orm entity, `get()` + `commit()` for W1, and W6's read-modify-write
//! in the retrying `transaction(..)` form at `serializable`. W9 connects
//! through PgBouncer in transaction mode (`session.pooler: transaction`).

use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use sqlreg::{Config, Isolation, Session, SqlConnectionRegistry};
use sqlx::{MySql, Postgres, Sqlite};

use crate::data::Dialect;
use crate::entity::{self, Entity as Item};
use crate::hot_row;
use crate::runner::{BenchError, BoxFuture, Client, Op, Result};
use crate::targets::{Servers, Target};

/// The error W3's failing body returns.
const PLANNED: &str = "the body fails on purpose";

/// Which body the sessions run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `s.sqlx::<DB>()` as the executor of a sqlx query.
    Raw,
    /// `Item::find_by_id(id).one(s)`.
    Entity,
}

/// Runs `$query(conn)` on the session's own sqlx connection, with `$db`
/// bound to the backend's sqlx database type.
macro_rules! on_backend {
    ($dialect:expr, $session:expr, $db:ident => $($query:tt)+) => {{
        match $dialect {
            Dialect::Sqlite => {
                type $db = Sqlite;
                let _ = $($query)+(&mut $session.sqlx::<$db>().await?).await?;
            }
            Dialect::Postgres => {
                type $db = Postgres;
                let _ = $($query)+(&mut $session.sqlx::<$db>().await?).await?;
            }
            Dialect::MySql => {
                type $db = MySql;
                let _ = $($query)+(&mut $session.sqlx::<$db>().await?).await?;
            }
        }
        Ok(())
    }};
}

/// A registry built from a core-lib style YAML section.
pub struct Sqlreg {
    db: SqlConnectionRegistry,
    dialect: Dialect,
    path: Path,
    /// Whether the sqlx body's statements are named and cached (sqlx's
    /// default); not behind a transaction pooler, where another client's
    /// names would collide with them on a shared server connection.
    persistent: bool,
}

impl Sqlreg {
    /// Connects with `pool_size`/`max_overflow` from `pool` (`None`: the
    /// config defaults, 5 + 10), `pool_pre_ping: false`.
    pub async fn connect(
        servers: &Servers,
        target: Target,
        pool: Option<u32>,
        path: Path,
    ) -> Result<Self> {
        let sizing = pool
            .map(|n| format!("pool_size: {n}, max_overflow: 0, "))
            .unwrap_or_default();
        let yaml = format!(
            "db:\n  log_queries: false\n  create_db: true\n  \
             session: {{{sizing}pool_pre_ping: false}}\n  url: {}\n",
            servers.yaml_url(target)
        );
        Self::from_yaml(&yaml, target, path).await
    }

    /// Connects to PostgreSQL through PgBouncer in transaction mode, as the
    /// README says (`session.pooler: transaction`, the url's port the
    /// pooler's; no `create_db`, which needs a direct url), the sqlx body
    /// sending unnamed statements (`persistent(false)`).
    pub async fn through_pgbouncer(servers: &Servers, pool: Option<u32>) -> Result<Self> {
        let sizing = pool
            .map(|n| format!("pool_size: {n}, max_overflow: 0, "))
            .unwrap_or_default();
        // Checked here so that a missing pooler is named, not a YAML error.
        servers.var("PGBOUNCER_PORT")?;
        let url = servers
            .yaml_url(Target::Postgres)
            .replace("SQLREG_TEST_PG_PORT", "SQLREG_TEST_PGBOUNCER_PORT");
        let yaml = format!(
            "db:\n  log_queries: false\n  \
             session: {{{sizing}pool_pre_ping: false, pooler: transaction}}\n  url: {url}\n"
        );
        let sqlreg = Self::from_yaml(&yaml, Target::Postgres, Path::Raw).await?;
        Ok(Self {
            persistent: false,
            ..sqlreg
        })
    }

    /// Connects with the `db:` section of `yaml` (W8 adds `replicas:`).
    pub async fn from_yaml(yaml: &str, target: Target, path: Path) -> Result<Self> {
        let config = Config::from_yaml_str(yaml)?.at("db")?;
        let db = SqlConnectionRegistry::connect(config).await?;
        if target.private_memory() {
            let seed = target.dialect().seed();
            db.session(async |s| {
                for sql in &seed {
                    s.execute_unprepared(sql).await?;
                }
                Ok::<_, sqlreg::Error>(())
            })
            .await?;
        }
        Ok(Self {
            db,
            dialect: target.dialect(),
            path,
            persistent: true,
        })
    }

    /// The registry.
    pub fn registry(&self) -> &SqlConnectionRegistry {
        &self.db
    }

    /// One session's body: read row `id`.
    pub async fn select(&self, s: &Session, id: i32) -> Result<()> {
        if self.path == Path::Entity {
            Item::find_by_id(id).one(s).await?.ok_or("row not found")?;
            return Ok(());
        }
        let (sql, persistent) = (self.dialect.select(), self.persistent);
        on_backend!(self.dialect, s, DB => sqlx::query_as::<DB, (i32, String, i32)>(sql).bind(id).persistent(persistent).fetch_one)
    }

    async fn insert(&self, s: &Session, id: i32) -> Result<()> {
        let sql = self.dialect.insert();
        if self.path == Path::Entity {
            let stmt = Statement::from_sql_and_values(s.get_database_backend(), sql, [id.into()]);
            s.execute_raw(stmt).await?;
            return Ok(());
        }
        let persistent = self.persistent;
        on_backend!(self.dialect, s, DB => sqlx::query::<DB>(sql).bind(id).persistent(persistent).execute)
    }
}

impl Client for Sqlreg {
    fn session(&self, op: Op, id: i32, _task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match op {
                Op::Checkout => Ok(self.db.get().await?.commit().await?),
                Op::SelectById => {
                    self.db
                        .read_session(async |s| self.select(s, id).await)
                        .await
                }
                Op::FailThenSelect => {
                    let failed = self
                        .db
                        .session(async |s| {
                            self.select(s, id).await?;
                            Err::<(), BenchError>(PLANNED.into())
                        })
                        .await;
                    match failed {
                        Err(err) if err.to_string() == PLANNED => {}
                        Err(err) => return Err(err),
                        Ok(()) => return Err("a failing session reported success".into()),
                    }
                    self.db
                        .read_session(async |s| self.select(s, id).await)
                        .await
                }
                Op::Insert => self.db.session(async |s| self.insert(s, id).await).await,
                Op::WriteThenRead => Err("W8's routing contender runs this, not W2's".into()),
                Op::Increment => {
                    if self.path == Path::Raw {
                        return Err("sqlreg runs the hot-row workload with its entity body".into());
                    }
                    self.db
                        .isolation(Isolation::Serializable)
                        .transaction(async |s| {
                            Ok::<_, BenchError>(entity::bump(s, hot_row::ID).await?)
                        })
                        .await
                }
            }
        })
    }

    fn counter(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            self.db
                .read_session(async |s| Ok::<_, BenchError>(entity::counter(s, hot_row::ID).await?))
                .await
        })
    }

    fn retries(&self) -> Option<u64> {
        Some(self.db.stats().retries)
    }
}
