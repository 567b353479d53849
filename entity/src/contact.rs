//! `contacts`: Customers (WhatsApp users).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{ConsentState, Priority};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub wa_id: Option<String>,
    /// Business-scoped user id (BSUID); not a FK.
    #[sea_orm(unique)]
    pub user_id: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub profile_name: Option<String>,
    pub language: Option<String>,
    /// Database default: `normal`.
    pub priority: Priority,
    /// Database default: `false`.
    pub is_vip: bool,
    /// Database default: `unknown`.
    pub consent: ConsentState,
    pub consent_changed_at: Option<DateTimeUtc>,
    /// Custom fields (JSON object).
    /// Database default: `{}`.
    pub fields: Json,
    #[sea_orm(unique)]
    pub external_id: Option<String>,
    pub last_inbound_at: Option<DateTimeUtc>,
    pub erased_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::contact_tag::Entity")]
    ContactTags,
    #[sea_orm(has_many = "super::conversation::Entity")]
    Conversations,
    #[sea_orm(has_many = "super::survey::Entity")]
    Surveys,
}

impl Related<super::contact_tag::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ContactTags.def()
    }
}

impl Related<super::tag::Entity> for Entity {
    fn to() -> RelationDef {
        super::contact_tag::Relation::Tag.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::contact_tag::Relation::Contact.def().rev())
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversations.def()
    }
}

impl Related<super::survey::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Surveys.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
