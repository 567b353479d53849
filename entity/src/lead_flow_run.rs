//! `lead_flow_runs`: A lead flow running in a conversation.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::FlowRunStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "lead_flow_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `lead_flows.id` (on delete cascade).
    pub flow_id: i64,
    /// FK → `conversations.id` (on delete cascade).
    pub conversation_id: i64,
    /// Database default: `0`.
    pub step: i32,
    /// Database default: `{}`.
    pub answers: Json,
    pub status: FlowRunStatus,
    /// The current question was held back by the new-customer sending limit:
    /// the next message asks it again. Database default: `false`.
    pub question_held: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::lead_flow::Entity",
        from = "Column::FlowId",
        to = "super::lead_flow::Column::Id",
        on_delete = "Cascade"
    )]
    Flow,
    #[sea_orm(
        belongs_to = "super::conversation::Entity",
        from = "Column::ConversationId",
        to = "super::conversation::Column::Id",
        on_delete = "Cascade"
    )]
    Conversation,
}

impl Related<super::lead_flow::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Flow.def()
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversation.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
