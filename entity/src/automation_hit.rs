//! `automation_hits`: what automation did in a conversation: `reply` (a rule
//! answered, with the keyword that fired it) or `handover` (the conversation
//! left the bot for a human).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::TriggerMode;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "automation_hits")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `conversations.id` (on delete cascade).
    pub conversation_id: i64,
    pub contact_id: i64,
    /// FK → `auto_reply_rules.id` (on delete set null).
    pub rule_id: Option<i64>,
    /// `reply` or `handover`.
    pub kind: String,
    pub trigger_mode: Option<TriggerMode>,
    pub keyword: Option<String>,
    pub message_id: Option<i64>,
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
        belongs_to = "super::auto_reply_rule::Entity",
        from = "Column::RuleId",
        to = "super::auto_reply_rule::Column::Id",
        on_delete = "SetNull"
    )]
    Rule,
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversation.def()
    }
}

impl Related<super::auto_reply_rule::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Rule.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
