//! `channels`: WhatsApp Business phone numbers.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "channels")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(unique)]
    pub phone_number_id: String,
    pub display_phone_number: Option<String>,
    pub waba_id: Option<String>,
    /// Meta app secret (webhook signature key); never serialized.
    #[serde(skip_serializing)]
    pub app_secret: Option<String>,
    /// Graph API access token; never serialized.
    #[serde(skip_serializing)]
    pub access_token: Option<String>,
    /// Database default: `europe`.
    pub region: String,
    /// Database default: `true`.
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::sla_policy::Entity")]
    SlaPolicies,
    #[sea_orm(has_many = "super::conversation::Entity")]
    Conversations,
    #[sea_orm(has_many = "super::message::Entity")]
    Messages,
    #[sea_orm(has_many = "super::auto_reply_rule::Entity")]
    AutoReplyRules,
    #[sea_orm(has_many = "super::billing_ledger::Entity")]
    BillingLedger,
    #[sea_orm(has_many = "super::outbox::Entity")]
    Outbox,
}

impl Related<super::sla_policy::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SlaPolicies.def()
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversations.def()
    }
}

impl Related<super::message::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Messages.def()
    }
}

impl Related<super::auto_reply_rule::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AutoReplyRules.def()
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
