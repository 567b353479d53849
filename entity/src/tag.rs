//! `tags`: Tags for contacts and conversations.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "tags")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub color: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::contact_tag::Entity")]
    ContactTags,
    #[sea_orm(has_many = "super::conversation_tag::Entity")]
    ConversationTags,
}

impl Related<super::contact_tag::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ContactTags.def()
    }
}

impl Related<super::contact::Entity> for Entity {
    fn to() -> RelationDef {
        super::contact_tag::Relation::Contact.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::contact_tag::Relation::Tag.def().rev())
    }
}

impl Related<super::conversation_tag::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ConversationTags.def()
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        super::conversation_tag::Relation::Conversation.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::conversation_tag::Relation::Tag.def().rev())
    }
}

impl ActiveModelBehavior for ActiveModel {}
