//! `auto_reply_rules`: Auto-reply rules.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::TriggerMode;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "auto_reply_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub trigger_mode: TriggerMode,
    /// FK → `channels.id` (on delete cascade).
    pub channel_id: Option<i64>,
    pub language: Option<String>,
    /// Database default: `[]`.
    pub keywords: Json,
    /// JSON array of reply strings (A/B variants).
    pub variants: Json,
    /// JSON array of button titles.
    /// Database default: `[]`.
    pub buttons: Json,
    /// e.g. `{"days":[1,2,3,4,5],"start":"11:30","end":"13:00"}`.
    pub schedule: Option<Json>,
    /// Database default: `0`.
    pub priority: i32,
    /// Database default: `true`.
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::channel::Entity",
        from = "Column::ChannelId",
        to = "super::channel::Column::Id",
        on_delete = "Cascade"
    )]
    Channel,
}

impl Related<super::channel::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Channel.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
