//! `conversations`: Conversations (tickets). At most one open/pending conversation per (contact, channel): partial unique index `conversations_one_open_per_contact`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{ConversationStatus, Priority};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `channels.id`.
    pub channel_id: i64,
    /// FK → `contacts.id` (on delete cascade).
    pub contact_id: i64,
    /// Database default: `open`.
    pub status: ConversationStatus,
    /// Database default: `normal`.
    pub priority: Priority,
    pub topic: Option<String>,
    pub language: Option<String>,
    /// FK → `departments.id` (on delete set null).
    pub department_id: Option<i64>,
    /// FK → `users.id` (on delete set null).
    pub assignee_id: Option<i64>,
    /// FK → `users.id` (on delete set null).
    pub lock_holder_id: Option<i64>,
    pub lock_acquired_at: Option<DateTimeUtc>,
    pub lock_last_activity_at: Option<DateTimeUtc>,
    pub lock_expires_at: Option<DateTimeUtc>,
    /// FK → `sla_policies.id` (on delete set null).
    pub sla_policy_id: Option<i64>,
    pub first_response_due_at: Option<DateTimeUtc>,
    pub resolution_due_at: Option<DateTimeUtc>,
    pub sla_paused_at: Option<DateTimeUtc>,
    /// When an unanswered important (high/urgent) conversation raises its
    /// 5-minute alert, in business time.
    pub important_wait_due_at: Option<DateTimeUtc>,
    /// When the SLA sweep next has a level to decide (warning, breach or
    /// alert); `None` when no clock runs. Kept by the clocks and the sweep.
    pub sla_next_at: Option<DateTimeUtc>,
    /// Database default: `0`.
    pub escalation_level: i32,
    /// Database default: `0`.
    pub transfer_count: i32,
    /// Database default: `0`.
    pub reopen_count: i32,
    pub queued_at: Option<DateTimeUtc>,
    pub assigned_at: Option<DateTimeUtc>,
    pub first_response_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub last_message_at: Option<DateTimeUtc>,
    pub last_inbound_at: Option<DateTimeUtc>,
    pub csat: Option<i32>,
    pub nps: Option<i32>,
    pub converted_at: Option<DateTimeUtc>,
    pub conversion_amount_micros: Option<i64>,
    pub archived_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::channel::Entity",
        from = "Column::ChannelId",
        to = "super::channel::Column::Id"
    )]
    Channel,
    #[sea_orm(
        belongs_to = "super::contact::Entity",
        from = "Column::ContactId",
        to = "super::contact::Column::Id",
        on_delete = "Cascade"
    )]
    Contact,
    #[sea_orm(
        belongs_to = "super::department::Entity",
        from = "Column::DepartmentId",
        to = "super::department::Column::Id",
        on_delete = "SetNull"
    )]
    Department,
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::AssigneeId",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    Assignee,
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::LockHolderId",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    LockHolder,
    #[sea_orm(
        belongs_to = "super::sla_policy::Entity",
        from = "Column::SlaPolicyId",
        to = "super::sla_policy::Column::Id",
        on_delete = "SetNull"
    )]
    SlaPolicy,
    #[sea_orm(has_many = "super::conversation_tag::Entity")]
    ConversationTags,
    #[sea_orm(has_many = "super::message::Entity")]
    Messages,
    #[sea_orm(has_many = "super::note::Entity")]
    Notes,
    #[sea_orm(has_many = "super::assignment::Entity")]
    Assignments,
    #[sea_orm(has_many = "super::sla_event::Entity")]
    SlaEvents,
    #[sea_orm(has_many = "super::lead_flow_run::Entity")]
    LeadFlowRuns,
    #[sea_orm(has_many = "super::survey::Entity")]
    Surveys,
    #[sea_orm(has_many = "super::billing_ledger::Entity")]
    BillingLedger,
}

impl Related<super::channel::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Channel.def()
    }
}

impl Related<super::contact::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Contact.def()
    }
}

impl Related<super::department::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Department.def()
    }
}

impl Related<super::sla_policy::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SlaPolicy.def()
    }
}

impl Related<super::conversation_tag::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ConversationTags.def()
    }
}

impl Related<super::tag::Entity> for Entity {
    fn to() -> RelationDef {
        super::conversation_tag::Relation::Tag.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::conversation_tag::Relation::Conversation.def().rev())
    }
}

impl Related<super::message::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Messages.def()
    }
}

impl Related<super::note::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Notes.def()
    }
}

impl Related<super::assignment::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Assignments.def()
    }
}

impl Related<super::sla_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SlaEvents.def()
    }
}

impl Related<super::lead_flow_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::LeadFlowRuns.def()
    }
}

impl Related<super::survey::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Surveys.def()
    }
}

impl Related<super::billing_ledger::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BillingLedger.def()
    }
}

/// `conversations.assignee_id → users` (there are two FKs to `users`, so there is no
/// `Related<user::Entity>`; use `find_also_linked(AssigneeLink)` / `find_linked`).
#[derive(Copy, Clone, Debug)]
pub struct AssigneeLink;

impl Linked for AssigneeLink {
    type FromEntity = Entity;
    type ToEntity = super::user::Entity;

    fn link(&self) -> Vec<RelationDef> {
        vec![Relation::Assignee.def()]
    }
}

/// `conversations.lock_holder_id → users`.
#[derive(Copy, Clone, Debug)]
pub struct LockHolderLink;

impl Linked for LockHolderLink {
    type FromEntity = Entity;
    type ToEntity = super::user::Entity;

    fn link(&self) -> Vec<RelationDef> {
        vec![Relation::LockHolder.def()]
    }
}

impl ActiveModelBehavior for ActiveModel {}
