//! sea-orm entities of the helpdesk data model (see the data-model spec).
//!
//! One module per table (singular module name, plural table name), the shared
//! string-backed enums in [`enums`] (re-exported at the crate root) and a
//! [`prelude`] with every `Entity` under its model name.

pub mod enums;
pub mod prelude;

pub mod api_token;
pub mod assignment;
pub mod audit_log;
pub mod auto_reply_rule;
pub mod automation_hit;
pub mod automation_variable;
pub mod billing_ledger;
pub mod business_hours;
pub mod canned_response;
pub mod channel;
pub mod contact;
pub mod contact_tag;
pub mod conversation;
pub mod conversation_tag;
pub mod department;
pub mod department_member;
pub mod holiday;
pub mod lead_flow;
pub mod lead_flow_run;
pub mod message;
pub mod note;
pub mod outbox;
pub mod presence_interval;
pub mod sla_event;
pub mod sla_policy;
pub mod survey;
pub mod tag;
pub mod user;
pub mod webhook_delivery;
pub mod webhook_inbox;
pub mod webhook_subscription;

pub use enums::*;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    #[test]
    fn secrets_are_never_serialized() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        let channel = channel::Model {
            id: 1,
            name: "Main".into(),
            phone_number_id: "123".into(),
            display_phone_number: None,
            waba_id: None,
            app_secret: Some("app-secret".into()),
            access_token: Some("access-token".into()),
            region: "europe".into(),
            is_active: true,
            created_at: at,
            updated_at: at,
        };
        let json = serde_json::to_value(&channel).unwrap();
        assert_eq!(json["phone_number_id"], "123");
        assert!(json.get("app_secret").is_none() && json.get("access_token").is_none());

        let user = user::Model {
            id: 1,
            email: "a@example.com".into(),
            name: "A".into(),
            password_hash: "hash".into(),
            role: Role::Agent,
            skills: json!([]),
            max_concurrent: 3,
            presence: Presence::Offline,
            last_seen_at: None,
            last_assigned_at: None,
            is_active: true,
            token_version: 0,
            created_at: at,
            updated_at: at,
        };
        let json = serde_json::to_value(&user).unwrap();
        assert_eq!(json["role"], "agent");
        assert!(json.get("password_hash").is_none());

        let subscription = webhook_subscription::Model {
            id: 1,
            name: "CRM".into(),
            url: "https://crm.example/hook".into(),
            secret: "whsec".into(),
            event_types: json!(["conversation.resolved"]),
            is_active: true,
            disabled_reason: None,
            consecutive_failures: 0,
            created_at: at,
            updated_at: at,
        };
        let json = serde_json::to_value(&subscription).unwrap();
        assert!(json.get("secret").is_none());
        assert_eq!(json["url"], "https://crm.example/hook");
    }

    #[test]
    fn graphql_enum_values_are_screaming_snake_case() {
        use async_graphql::{Name, Value};
        assert_eq!(
            Value::from(RoutingStrategy::RoundRobin),
            Value::Enum(Name::new("ROUND_ROBIN"))
        );
        assert_eq!(
            Value::from(ActorKind::ApiToken),
            Value::Enum(Name::new("API_TOKEN"))
        );
    }
}
