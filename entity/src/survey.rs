//! `surveys`: CSAT / NPS surveys.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{SurveyKind, SurveyStatus};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "surveys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `conversations.id` (on delete cascade).
    pub conversation_id: i64,
    /// FK → `contacts.id` (on delete cascade).
    pub contact_id: i64,
    pub agent_id: Option<i64>,
    pub kind: SurveyKind,
    /// The conversation's reopen_count at send time.
    /// Database default: `0`.
    pub round: i32,
    pub status: SurveyStatus,
    pub score: Option<i32>,
    pub raw_answer: Option<String>,
    pub sent_at: DateTimeUtc,
    pub answered_at: Option<DateTimeUtc>,
    pub expires_at: DateTimeUtc,
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
        belongs_to = "super::contact::Entity",
        from = "Column::ContactId",
        to = "super::contact::Column::Id",
        on_delete = "Cascade"
    )]
    Contact,
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversation.def()
    }
}

impl Related<super::contact::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Contact.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
