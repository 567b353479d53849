//! `sla_events`: SLA warnings / escalations / breaches.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{SlaKind, SlaLevel};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "sla_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `conversations.id` (on delete cascade).
    pub conversation_id: i64,
    pub kind: SlaKind,
    pub level: SlaLevel,
    pub target_at: DateTimeUtc,
    pub occurred_at: DateTimeUtc,
    pub late_secs: Option<i64>,
    pub details: Option<Json>,
    /// The conversation's `reopen_count` for resolution rows (each reopen
    /// starts a new resolution clock); `0` for the once-only first-response
    /// and important-wait clocks. Database default: `0`.
    pub cycle: i32,
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
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversation.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
