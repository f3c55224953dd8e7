//! The `items` table as a sea-orm entity (what the entity paths query).

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
    /// Some number.
    pub qty: i32,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
