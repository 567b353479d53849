//! `presence_intervals`: Agent presence history.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::Presence;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "presence_intervals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `users.id` (on delete cascade).
    pub user_id: i64,
    pub status: Presence,
    pub started_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
