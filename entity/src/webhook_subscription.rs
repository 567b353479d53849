//! `webhook_subscriptions`: Outbound CRM webhook subscriptions.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub url: String,
    /// HMAC signing secret; never serialized.
    #[serde(skip_serializing)]
    pub secret: String,
    /// JSON array of event type strings.
    pub event_types: Json,
    /// Database default: `true`.
    pub is_active: bool,
    pub disabled_reason: Option<String>,
    /// Database default: `0`.
    pub consecutive_failures: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::webhook_delivery::Entity")]
    WebhookDeliveries,
}

impl Related<super::webhook_delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::WebhookDeliveries.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
