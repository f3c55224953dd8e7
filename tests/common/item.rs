//! The entity the scenarios work on, and small helpers around it.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, Statement};
use sqlreg::{DbConfig, Session, SqlConnectionRegistry};

use super::TestDb;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub name: String,
    pub qty: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A registry on `db` whose `create_db` creates the `items` table.
pub async fn registry(db: &TestDb) -> SqlConnectionRegistry {
    registry_with(db.config.clone()).await
}

/// A registry with `config` whose `create_db` creates the `items` table.
pub async fn registry_with(config: DbConfig) -> SqlConnectionRegistry {
    SqlConnectionRegistry::builder(config)
        .entity(Entity)
        .connect()
        .await
        .expect("connect")
}

/// Inserts one item through sea-orm's ActiveModel.
pub async fn insert(s: &Session, name: &str) -> Result<Model, sqlreg::Error> {
    let item = ActiveModel {
        name: Set(name.to_owned()),
        qty: Set(1),
        ..Default::default()
    };
    Ok(item.insert(s).await?)
}

/// The names of all committed items, read in a session of its own.
/// The stored names, read as readers should: in a read session, which on
/// SQLite never queues behind a writer.
pub async fn names(db: &SqlConnectionRegistry) -> Vec<String> {
    db.read_session(async |s| {
        let items = Entity::find().all(s).await?;
        Ok::<_, sqlreg::Error>(items.into_iter().map(|i| i.name).collect())
    })
    .await
    .expect("read items")
}

/// How many items exist, counted with raw SQL on `conn`.
pub async fn count_on(conn: &impl ConnectionTrait) -> i64 {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM items",
        ))
        .await
        .expect("count")
        .expect("one row");
    row.try_get::<i64>("", "n").expect("count column")
}

/// Locks the row of the item called `name` by updating it (bumps its `qty`).
pub async fn touch(s: &Session, name: &str) -> Result<(), sea_orm::DbErr> {
    let backend = s.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "UPDATE items SET qty = qty + 1 WHERE name = $1",
        _ => "UPDATE items SET qty = qty + 1 WHERE name = ?",
    };
    s.execute_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await
        .map(drop)
}
