//! CRM webhooks are at least once: every subscribable change writes its
//! delivery rows in its own transaction. Rows are checked right after each
//! change returns, with no delivery worker and, where the domain is driven
//! directly, with events dropped instead of published; a change whose
//! commit fails leaves no delivery behind.

use std::sync::Arc;

use chrono::Duration;
use domain::events::NoEvents;
use entity::{ConversationStatus, webhook_delivery};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::automation::{Desk, SECRET, desk_with, new_customer};

const ALL_TYPES: [&str; 8] = [
    "CONVERSATION_CREATED",
    "CONVERSATION_ASSIGNED",
    "CONVERSATION_RESOLVED",
    "MESSAGE_INBOUND",
    "MESSAGE_OUTBOUND",
    "SLA_BREACHED",
    "SURVEY_ANSWERED",
    "CONTACT_UPDATED",
];

/// A desk with no delivery worker and one subscription to every event type
/// (at a URL nothing listens on: the rows stay pending).
async fn subscribed_desk() -> Desk {
    let d = desk_with(|c| {
        c.webhooks_allow_http = true;
        c.webhooks_worker = false;
    })
    .await;
    d.app
        .gql(
            &d.app.admin_token,
            "mutation($t:[WebhookEventType!]!){ createWebhookSubscription(input:{name:\"CRM\", url:\"http://127.0.0.1:9/hook\", eventTypes:$t}) { secret } }",
            json!({"t": ALL_TYPES}),
        )
        .await
        .data();
    d
}

/// The deliveries written since the last call, oldest first.
struct Log<'a> {
    d: &'a Desk,
    seen: i64,
}

impl<'a> Log<'a> {
    fn new(d: &'a Desk) -> Self {
        Self { d, seen: 0 }
    }

    async fn new_rows(&mut self) -> Vec<webhook_delivery::Model> {
        let rows = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Id.gt(self.seen))
            .order_by_asc(webhook_delivery::Column::Id)
            .all(&self.d.app.domain.db)
            .await
            .unwrap();
        if let Some(last) = rows.last() {
            self.seen = last.id;
        }
        rows
    }

    async fn new_types(&mut self) -> Vec<String> {
        self.new_rows()
            .await
            .into_iter()
            .map(|r| r.event_type)
            .collect()
    }
}

async fn ok(d: &Desk, query: &str, vars: Value) -> Value {
    d.app
        .gql(&d.app.admin_token, query, vars)
        .await
        .data()
        .clone()
}

/// The app's domain with its events dropped: whatever it queues for the CRM
/// was written in the change's transaction, since no event ever leaves it.
fn without_events(d: &Desk) -> domain::Domain {
    let mut quiet = d.app.domain.clone();
    quiet.events = Arc::new(NoEvents);
    quiet
}

#[tokio::test]
async fn every_event_type_is_queued_in_the_transaction_of_its_change() {
    let d = subscribed_desk().await;
    let mut log = Log::new(&d);
    let who = new_customer();

    d.says(&who, "Bonjour, où est mon colis ?").await;
    let rows = log.new_rows().await;
    let types: Vec<&str> = rows.iter().map(|r| r.event_type.as_str()).collect();
    assert_eq!(types, ["conversation.created", "message.inbound"]);
    let conv = d.conversation(&who).await;
    for r in &rows {
        assert_eq!(
            r.ordering_key.as_deref(),
            Some(format!("conversation:{}", conv.id).as_str())
        );
    }
    assert_eq!(
        rows[1].payload["data"]["text"],
        "Bonjour, où est mon colis ?"
    );
    let c = json!({"c": conv.id.to_string()});

    ok(
        &d,
        "mutation($id:ID!){ updateContact(id:$id, input:{name:\"Camille Martin\"}){ id } }",
        json!({"id": conv.contact_id.to_string()}),
    )
    .await;
    let rows = log.new_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].event_type, "contact.updated");
    assert_eq!(rows[0].payload["data"]["name"], "Camille Martin");

    let (ana, _) = d.app.staff("Ana", "AGENT").await;
    let (bob, _) = d.app.staff("Bob", "AGENT").await;
    ok(
        &d,
        "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }",
        json!({"c": conv.id.to_string(), "a": ana.to_string()}),
    )
    .await;
    let rows = log.new_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].event_type, "conversation.assigned");
    assert_eq!(rows[0].payload["data"]["assigneeId"], ana.to_string());

    // A reassignment and a transfer are assignments too.
    ok(
        &d,
        "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }",
        json!({"c": conv.id.to_string(), "a": bob.to_string()}),
    )
    .await;
    ok(
        &d,
        "mutation($c:ID!,$a:ID){ transfer(conversationId:$c, toAgentId:$a, reason:\"shift\"){ id } }",
        json!({"c": conv.id.to_string(), "a": ana.to_string()}),
    )
    .await;
    let rows = log.new_rows().await;
    let assignees: Vec<(&str, &Value)> = rows
        .iter()
        .map(|r| (r.event_type.as_str(), &r.payload["data"]["assigneeId"]))
        .collect();
    assert_eq!(
        assignees,
        [
            ("conversation.assigned", &json!(bob.to_string())),
            ("conversation.assigned", &json!(ana.to_string()))
        ]
    );

    ok(
        &d,
        "mutation($c:ID!){ sendMessage(input:{conversationId:$c, text:\"Il arrive demain.\"}){ id } }",
        c.clone(),
    )
    .await;
    let rows = log.new_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].event_type, "message.outbound");
    assert_eq!(rows[0].payload["data"]["text"], "Il arrive demain.");

    // The resolution, then the CSAT question it queues.
    ok(
        &d,
        "mutation($c:ID!){ resolve(conversationId:$c){ status } }",
        c.clone(),
    )
    .await;
    let rows = log.new_rows().await;
    let types: Vec<&str> = rows.iter().map(|r| r.event_type.as_str()).collect();
    assert_eq!(types, ["conversation.resolved", "message.outbound"]);
    assert_eq!(rows[0].payload["data"]["status"], "resolved");

    // The customer's answer, then what it says.
    d.says(&who, "4").await;
    let rows = log.new_rows().await;
    let types: Vec<&str> = rows.iter().map(|r| r.event_type.as_str()).collect();
    assert_eq!(types, ["message.inbound", "survey.answered"]);
    assert_eq!(rows[1].payload["data"]["score"], 4);
    assert_eq!(rows[1].payload["data"]["agentId"], ana.to_string());
    assert_eq!(rows[1].payload["data"]["kind"], "csat");

    // A change that is not subscribable queues nothing.
    ok(
        &d,
        "mutation($c:ID!){ reopen(conversationId:$c){ status } }",
        c.clone(),
    )
    .await;
    assert_eq!(log.new_types().await, Vec::<String>::new());
}

#[tokio::test]
async fn routing_and_sla_breaches_are_queued_without_publishing_an_event() {
    let d = subscribed_desk().await;
    let quiet = without_events(&d);
    ok(
        &d,
        "mutation($i: SlaPolicyInput!){ createSlaPolicy(input:$i){ id } }",
        json!({"i": {"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 86400}}),
    )
    .await;
    let department = d.app.department("Support", "SMART").await;
    let who = new_customer();
    d.says(&who, "Hello?").await;
    let conv = d.conversation(&who).await;
    let mut log = Log::new(&d);
    log.new_rows().await;

    // Auto-assignment by the routing pass.
    entity::conversation::Entity::update_many()
        .col_expr(
            entity::conversation::Column::DepartmentId,
            sea_orm::sea_query::Expr::value(department),
        )
        .filter(entity::conversation::Column::Id.eq(conv.id))
        .exec(&d.app.domain.db)
        .await
        .unwrap();
    let (agent, token) = d.app.agent("Carla", &[], &[department], 5).await;
    d.app.heartbeat(&token, "ONLINE").await;
    quiet.route_queue().await.unwrap();
    assert_eq!(
        d.app.conversation_row(conv.id).await.assignee_id,
        Some(agent)
    );
    let rows = log.new_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].event_type, "conversation.assigned");
    assert_eq!(rows[0].payload["data"]["assigneeId"], agent.to_string());

    // 12 minutes unanswered: the 10-minute first response is breached.
    d.app.clock.advance(Duration::minutes(12));
    let report = quiet.run_sla_sweep().await.unwrap();
    assert_eq!(report.breaches, 1, "{report:?}");
    let rows = log.new_rows().await;
    let breaches: Vec<&webhook_delivery::Model> = rows
        .iter()
        .filter(|r| r.event_type == "sla.breached")
        .collect();
    assert_eq!(breaches.len(), 1, "{rows:?}");
    assert_eq!(breaches[0].payload["data"]["slaKind"], "first_response");
    assert_eq!(breaches[0].payload["data"]["slaLevel"], "breach");
    assert_eq!(
        breaches[0].payload["data"]["conversationId"],
        conv.id.to_string()
    );
}

/// Makes the commit of every transaction that fires `when` (a trigger
/// condition on `table`) fail: the trigger writes a row whose deferred foreign
/// key is checked, and refused, at commit.
async fn fail_commits(d: &Desk, table: &str, event: &str, when: &str) {
    let db = &d.app.domain.db;
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => format!(
            "CREATE TABLE trap_target (id BIGINT PRIMARY KEY);
             CREATE TABLE trap (target_id BIGINT REFERENCES trap_target(id) DEFERRABLE INITIALLY DEFERRED);
             CREATE FUNCTION trap_fire() RETURNS trigger AS $$ BEGIN INSERT INTO trap VALUES (-1); RETURN NEW; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER trap_on AFTER {event} ON {table} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION trap_fire();"
        ),
        _ => format!(
            "CREATE TABLE trap_target (id INTEGER PRIMARY KEY);
             CREATE TABLE trap (target_id INTEGER REFERENCES trap_target(id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TRIGGER trap_on AFTER {event} ON {table} WHEN {when} BEGIN INSERT INTO trap VALUES (-1); END;"
        ),
    };
    db.execute_unprepared(&sql).await.unwrap();
}

async fn delivery_count(d: &Desk) -> usize {
    webhook_delivery::Entity::find()
        .all(&d.app.domain.db)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_resolution_whose_commit_fails_leaves_no_delivery() {
    let d = subscribed_desk().await;
    let who = new_customer();
    d.says(&who, "Bonjour").await;
    let conv = d.conversation(&who).await;
    let before = delivery_count(&d).await;
    assert_eq!(before, 2);
    fail_commits(&d, "conversations", "UPDATE", "NEW.status = 'resolved'").await;

    let r = d
        .app
        .gql(
            &d.app.admin_token,
            "mutation($c:ID!){ resolve(conversationId:$c){ status } }",
            json!({"c": conv.id.to_string()}),
        )
        .await;
    assert!(r.body["errors"][0]["message"].is_string(), "{}", r.body);
    assert_eq!(
        d.app.conversation_row(conv.id).await.status,
        ConversationStatus::Open
    );
    assert_eq!(delivery_count(&d).await, before);
}

#[tokio::test]
async fn a_customer_message_whose_commit_fails_leaves_no_delivery() {
    let d = subscribed_desk().await;
    fail_commits(&d, "messages", "INSERT", "NEW.body = 'boom'").await;
    let who = new_customer();
    d.says(&who, "Bonjour").await;
    assert_eq!(delivery_count(&d).await, 2);

    let status = post_text(&d, &new_customer(), "boom").await;
    assert_ne!(status, 200, "the delivery is refused, for Meta to retry");
    let stored = entity::message::Entity::find()
        .filter(entity::message::Column::Body.eq("boom"))
        .all(&d.app.domain.db)
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    assert_eq!(delivery_count(&d).await, 2);
}

/// Posts one signed text from `from`; returns the HTTP status.
async fn post_text(d: &Desk, from: &str, text: &str) -> u16 {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "33100000000", "phone_number_id": d.number},
        "contacts": [{"profile": {"name": "Camille"}, "wa_id": from}],
        "messages": [{"from": from, "id": format!("wamid.{}", uuid::Uuid::new_v4().simple()),
            "timestamp": d.app.now().timestamp().to_string(), "type": "text", "text": {"body": text}}],
    }}]}]})
    .to_string();
    let sig = api::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
    d.app
        .client
        .post(format!("{}/webhooks/whatsapp", d.app.address))
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
