//! sea-orm used directly: `begin` / `find_by_id` / `commit`, once with its
//! default options and once tuned the way sqlreg configures its pool. W6's
//! read-modify-write is sea-orm's documented `db.transaction(|txn| …)` with
//! an entity find and an `ActiveModel` update, at the server's default
//! isolation.

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait, Statement,
    TransactionTrait,
};

use crate::entity::{self, Entity as Item};
use crate::hot_row;
use crate::runner::{BoxFuture, Client, Op, Result};
use crate::targets::{Servers, Target};

/// A sea-orm `DatabaseConnection` on one target.
pub struct SeaOrm {
    db: DatabaseConnection,
    target: Target,
}

impl SeaOrm {
    /// `Database::connect(url)` with sea-orm's defaults.
    pub async fn default_options(servers: &Servers, target: Target) -> Result<Self> {
        let db = Database::connect(servers.sqlx_url(target)).await?;
        Self::seeded(db, target).await
    }

    /// `max` connections, no test before acquire, no statement logging.
    pub async fn tuned(servers: &Servers, target: Target, max: u32) -> Result<Self> {
        let mut options = ConnectOptions::new(servers.sqlx_url(target));
        options
            .max_connections(max)
            .min_connections(1)
            .test_before_acquire(false)
            .sqlx_logging(false);
        let db = Database::connect(options).await?;
        Self::seeded(db, target).await
    }

    async fn seeded(db: DatabaseConnection, target: Target) -> Result<Self> {
        if target.private_memory() {
            for sql in target.dialect().seed() {
                db.execute_unprepared(&sql).await?;
            }
        }
        Ok(Self { db, target })
    }

    async fn select(&self, id: i32, commit: bool) -> Result<()> {
        let txn = self.db.begin().await?;
        Item::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or("row not found")?;
        if commit {
            txn.commit().await?;
        } else {
            txn.rollback().await?;
        }
        Ok(())
    }
}

impl Client for SeaOrm {
    fn session(&self, op: Op, id: i32, _task: usize) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match op {
                Op::Checkout => Err("sea-orm has no checkout without a statement".into()),
                Op::WriteThenRead => Err("sea-orm does not run W8".into()),
                Op::SelectById => self.select(id, true).await,
                Op::FailThenSelect => {
                    self.select(id, false).await?;
                    self.select(id, true).await
                }
                Op::Increment => {
                    self.db
                        .transaction::<_, (), DbErr>(|txn| {
                            Box::pin(async move { entity::bump(txn, hot_row::ID).await })
                        })
                        .await?;
                    Ok(())
                }
                Op::Insert => {
                    let txn = self.db.begin().await?;
                    let backend = txn.get_database_backend();
                    let insert = self.target.dialect().insert();
                    txn.execute_raw(Statement::from_sql_and_values(backend, insert, [id.into()]))
                        .await?;
                    txn.commit().await?;
                    Ok(())
                }
            }
        })
    }

    fn counter(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move { Ok(entity::counter(&self.db, hot_row::ID).await?) })
    }
}
