//! `webhook_deliveries`: Outbound CRM webhook deliveries.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::DeliveryState;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `webhook_subscriptions.id` (on delete cascade).
    pub subscription_id: i64,
    /// Event UUID.
    pub event_id: String,
    pub event_type: String,
    pub ordering_key: Option<String>,
    pub payload: Json,
    pub status: DeliveryState,
    /// Database default: `0`.
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub response_status: Option<i32>,
    pub latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::webhook_subscription::Entity",
        from = "Column::SubscriptionId",
        to = "super::webhook_subscription::Column::Id",
        on_delete = "Cascade"
    )]
    Subscription,
}

impl Related<super::webhook_subscription::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Subscription.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
