//! `assignments`: Assignment history.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::AssignmentKind;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "assignments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `conversations.id` (on delete cascade).
    pub conversation_id: i64,
    pub kind: AssignmentKind,
    pub from_user_id: Option<i64>,
    pub to_user_id: Option<i64>,
    pub from_department_id: Option<i64>,
    pub to_department_id: Option<i64>,
    pub reason: Option<String>,
    pub actor_id: Option<i64>,
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
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversation.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
