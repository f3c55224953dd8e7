//! The `items` table as a sea-orm entity (what the entity paths query), and
//! W6's read-modify-write through it.

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;

/// One row of `items`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "items")]
pub struct Model {
    /// The key every session looks up.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// `item-<id>`.
    pub name: String,
    /// Some number (W6's counter on the hot row).
    pub qty: i32,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The most common ORM pattern, as sea-orm's docs show it: find the row,
/// change a field on its `ActiveModel`, update it. sqlreg and sea-orm run
/// the same body inside their own transaction forms.
pub async fn bump(conn: &impl ConnectionTrait, id: i32) -> Result<(), DbErr> {
    let row = Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("items row {id}")))?;
    let next = row.qty + 1;
    let mut active: ActiveModel = row.into();
    active.qty = Set(next);
    active.update(conn).await?;
    Ok(())
}

/// The committed value of row `id`'s counter.
pub async fn counter(conn: &impl ConnectionTrait, id: i32) -> Result<i64, DbErr> {
    let row = Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("items row {id}")))?;
    Ok(i64::from(row.qty))
}
