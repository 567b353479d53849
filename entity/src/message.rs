//! `messages`: Messages of a conversation.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{DeliveryStatus, Direction, MessageType, SenderKind};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `conversations.id` (on delete cascade).
    pub conversation_id: i64,
    /// FK → `channels.id`.
    pub channel_id: i64,
    pub direction: Direction,
    pub sender_kind: SenderKind,
    /// FK → `users.id` (on delete set null).
    pub sender_user_id: Option<i64>,
    pub message_type: MessageType,
    #[sea_orm(column_type = "Text")]
    pub body: Option<String>,
    pub media: Option<Json>,
    /// The type-specific object as received/sent.
    pub payload: Option<Json>,
    #[sea_orm(unique)]
    pub wa_message_id: Option<String>,
    pub context_wa_id: Option<String>,
    pub status: DeliveryStatus,
    pub error_code: Option<i32>,
    pub error_title: Option<String>,
    pub sent_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
    pub read_at: Option<DateTimeUtc>,
    pub failed_at: Option<DateTimeUtc>,
    pub auto_rule_id: Option<i64>,
    pub auto_variant: Option<i32>,
    pub cost_micros: Option<i64>,
    /// For inbound messages: the WhatsApp timestamp.
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::conversation::Entity",
        from = "Column::ConversationId",
        to = "super::conversation::Column::Id",
        on_delete = "Cascade"
    )]
    Conversation,
    #[sea_orm(
        belongs_to = "super::channel::Entity",
        from = "Column::ChannelId",
        to = "super::channel::Column::Id"
    )]
    Channel,
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::SenderUserId",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    SenderUser,
    #[sea_orm(has_one = "super::billing_ledger::Entity")]
    BillingLedger,
    #[sea_orm(has_one = "super::outbox::Entity")]
    Outbox,
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversation.def()
    }
}

impl Related<super::channel::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Channel.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SenderUser.def()
    }
}

impl Related<super::billing_ledger::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BillingLedger.def()
    }
}

impl Related<super::outbox::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Outbox.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
