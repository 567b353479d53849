//! String-backed enums shared by the entities (stored in `VARCHAR(24)` columns).
//!
//! Every enum is at the same time a sea-orm `ActiveEnum` (database value = the
//! snake_case string), a serde type (same snake_case string) and an
//! `async_graphql::Enum` (GraphQL value = SCREAMING_SNAKE_CASE, async-graphql's default).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Staff / API-token role.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Editor,
    Agent,
    Analyst,
}

/// Agent presence.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Default,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Away,
    #[default]
    Offline,
}

/// Department routing strategy.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Default,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStrategy {
    #[default]
    Smart,
    RoundRobin,
}

/// Contact / conversation priority (ordered low < normal < high < urgent).
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

/// Marketing / messaging consent of a contact.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Default,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    #[default]
    Unknown,
    OptedIn,
    OptedOut,
}

/// Conversation lifecycle status.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Default,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    #[default]
    Open,
    Pending,
    Resolved,
    Closed,
}

/// Message direction.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Who sent a message.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    Customer,
    Agent,
    Bot,
    System,
}

/// WhatsApp message type.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Contacts,
    Interactive,
    Button,
    Reaction,
    Order,
    System,
    Template,
    Unsupported,
}

/// Message delivery status (ordered received < queued < sent < delivered < read < failed).
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Received,
    Queued,
    Sent,
    Delivered,
    Read,
    Failed,
}

/// Kind of an assignment history entry.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentKind {
    Auto,
    Manual,
    Claim,
    Transfer,
    Unassign,
    Escalation,
}

/// Who performed an audited action.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    ApiToken,
    System,
    Webhook,
}

/// When an auto-reply rule fires.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum TriggerMode {
    FirstContact,
    Keyword,
    Offline,
    Scheduled,
}

/// SLA escalation kind.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Default,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum EscalationKind {
    #[default]
    Hierarchical,
    Functional,
}

/// Which SLA timer an event is about.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum SlaKind {
    FirstResponse,
    Resolution,
    ImportantWait,
}

/// Severity level of an SLA event.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum SlaLevel {
    Warning,
    Escalation,
    Breach,
    Alert,
}

/// Survey kind.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum SurveyKind {
    Csat,
    Nps,
}

/// Survey status.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum SurveyStatus {
    Sent,
    Answered,
    Expired,
}

/// Outbound message queue status.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Sending,
    Sent,
    Failed,
}

/// Outbound CRM webhook delivery state.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

/// Lead-flow run status.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum FlowRunStatus {
    Active,
    Completed,
    Abandoned,
}

/// Raw webhook inbox status.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(24))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum InboxStatus {
    Pending,
    Processed,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    /// The database value, the serde value and the spec value must agree.
    fn check<E>(expected: &[&str])
    where
        E: ActiveEnum<Value = String> + Iterable + Serialize + std::fmt::Debug,
    {
        let db: Vec<String> = E::iter().map(|v| v.to_value()).collect();
        assert_eq!(db, expected, "db values of {}", std::any::type_name::<E>());
        for v in E::iter() {
            let json = serde_json::to_value(&v).unwrap();
            assert_eq!(
                json,
                serde_json::Value::String(v.to_value()),
                "serde value of {v:?}"
            );
            assert!(v.to_value().len() <= 24);
        }
    }

    #[test]
    fn values_match_the_data_model() {
        check::<Role>(&["admin", "editor", "agent", "analyst"]);
        check::<Presence>(&["online", "away", "offline"]);
        check::<RoutingStrategy>(&["smart", "round_robin"]);
        check::<Priority>(&["low", "normal", "high", "urgent"]);
        check::<ConsentState>(&["unknown", "opted_in", "opted_out"]);
        check::<ConversationStatus>(&["open", "pending", "resolved", "closed"]);
        check::<Direction>(&["inbound", "outbound"]);
        check::<SenderKind>(&["customer", "agent", "bot", "system"]);
        check::<MessageType>(&[
            "text",
            "image",
            "audio",
            "video",
            "document",
            "sticker",
            "location",
            "contacts",
            "interactive",
            "button",
            "reaction",
            "order",
            "system",
            "template",
            "unsupported",
        ]);
        check::<DeliveryStatus>(&["received", "queued", "sent", "delivered", "read", "failed"]);
        check::<AssignmentKind>(&[
            "auto",
            "manual",
            "claim",
            "transfer",
            "unassign",
            "escalation",
        ]);
        check::<ActorKind>(&["user", "api_token", "system", "webhook"]);
        check::<TriggerMode>(&["first_contact", "keyword", "offline", "scheduled"]);
        check::<EscalationKind>(&["hierarchical", "functional"]);
        check::<SlaKind>(&["first_response", "resolution", "important_wait"]);
        check::<SlaLevel>(&["warning", "escalation", "breach", "alert"]);
        check::<SurveyKind>(&["csat", "nps"]);
        check::<SurveyStatus>(&["sent", "answered", "expired"]);
        check::<OutboxStatus>(&["pending", "sending", "sent", "failed"]);
        check::<DeliveryState>(&["pending", "delivered", "failed"]);
        check::<FlowRunStatus>(&["active", "completed", "abandoned"]);
        check::<InboxStatus>(&["pending", "processed", "failed"]);
    }

    #[test]
    fn ordering_and_defaults() {
        assert!(Priority::Low < Priority::Normal);
        assert!(Priority::High < Priority::Urgent);
        assert!(DeliveryStatus::Received < DeliveryStatus::Queued);
        assert!(DeliveryStatus::Delivered < DeliveryStatus::Read);
        assert!(DeliveryStatus::Read < DeliveryStatus::Failed);
        assert_eq!(Presence::default(), Presence::Offline);
        assert_eq!(RoutingStrategy::default(), RoutingStrategy::Smart);
        assert_eq!(Priority::default(), Priority::Normal);
        assert_eq!(ConsentState::default(), ConsentState::Unknown);
        assert_eq!(ConversationStatus::default(), ConversationStatus::Open);
        assert_eq!(EscalationKind::default(), EscalationKind::Hierarchical);
    }
}
