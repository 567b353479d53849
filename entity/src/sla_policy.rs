//! `sla_policies`: SLA policies.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{EscalationKind, Priority};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "sla_policies")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub priority: Option<Priority>,
    /// FK → `channels.id` (on delete set null).
    pub channel_id: Option<i64>,
    /// FK → `departments.id` (on delete set null).
    pub department_id: Option<i64>,
    /// FK → `business_hours.id` (on delete set null).
    pub business_hours_id: Option<i64>,
    pub first_response_secs: i32,
    pub resolution_secs: i32,
    /// Database default: `80`.
    pub warn_percent: i32,
    /// Extra seconds per topic, e.g. `{"logistics":720}`.
    /// Database default: `{}`.
    pub topic_tolerances: Json,
    /// Database default: `true`.
    pub pause_when_pending: bool,
    /// Database default: `hierarchical`.
    pub escalation_kind: EscalationKind,
    pub escalate_to_user_id: Option<i64>,
    pub escalate_to_department_id: Option<i64>,
    /// Database default: `false`.
    pub notify_customer_on_breach: bool,
    /// Database default: `false`.
    pub is_default: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::channel::Entity",
        from = "Column::ChannelId",
        to = "super::channel::Column::Id",
        on_delete = "SetNull"
    )]
    Channel,
    #[sea_orm(
        belongs_to = "super::department::Entity",
        from = "Column::DepartmentId",
        to = "super::department::Column::Id",
        on_delete = "SetNull"
    )]
    Department,
    #[sea_orm(
        belongs_to = "super::business_hours::Entity",
        from = "Column::BusinessHoursId",
        to = "super::business_hours::Column::Id",
        on_delete = "SetNull"
    )]
    BusinessHours,
    #[sea_orm(has_many = "super::conversation::Entity")]
    Conversations,
}

impl Related<super::channel::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Channel.def()
    }
}

impl Related<super::department::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Department.def()
    }
}

impl Related<super::business_hours::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BusinessHours.def()
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversations.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
