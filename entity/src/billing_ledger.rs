//! `billing_ledger`: Per-message cost ledger (micro-USD).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "billing_ledger")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `messages.id` (on delete cascade).
    #[sea_orm(unique)]
    pub message_id: i64,
    /// FK → `channels.id`.
    pub channel_id: i64,
    /// FK → `conversations.id` (on delete cascade).
    pub conversation_id: i64,
    /// `YYYY-MM`.
    pub period: String,
    pub region: String,
    pub free: bool,
    pub base_micros: i64,
    pub surcharge_micros: i64,
    pub total_micros: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::message::Entity",
        from = "Column::MessageId",
        to = "super::message::Column::Id",
        on_delete = "Cascade"
    )]
    Message,
    #[sea_orm(
        belongs_to = "super::channel::Entity",
        from = "Column::ChannelId",
        to = "super::channel::Column::Id"
    )]
    Channel,
    #[sea_orm(
        belongs_to = "super::conversation::Entity",
        from = "Column::ConversationId",
        to = "super::conversation::Column::Id",
        on_delete = "Cascade"
    )]
    Conversation,
}

impl Related<super::message::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Message.def()
    }
}

impl Related<super::channel::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Channel.def()
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversation.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
