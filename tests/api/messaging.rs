//! Outbound messages: sendMessage, the outbox against a Cloud API stand-in,
//! windows, billing, the new-customer limit, canned responses, permissions.

use chrono::{DateTime, Duration, Utc};
use entity::{
    DeliveryStatus, Direction, MessageType, OutboxStatus, SenderKind, billing_ledger, channel,
    contact, conversation, message, outbox,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::cloud_api::CloudApi;
use crate::helpers::{Gql, TestApp, spawn_app_with};

const TOKEN: &str = "test-access-token";

struct Desk {
    app: TestApp,
    cloud: CloudApi,
    channel: i64,
    phone_number_id: String,
}

/// A server whose Graph API is the stand-in, and a channel with a token.
async fn desk() -> Desk {
    let cloud = CloudApi::start().await;
    let url = cloud.base_url.clone();
    let app = spawn_app_with(|c| c.graph_base_url = url).await;
    let channel = app.seed_channel().await;
    channel::Entity::update_many()
        .col_expr(channel::Column::AccessToken, Expr::value(TOKEN))
        .filter(channel::Column::Id.eq(channel))
        .exec(&app.domain.db)
        .await
        .unwrap();
    let phone_number_id = channel::Entity::find_by_id(channel)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap()
        .phone_number_id;
    Desk {
        app,
        cloud,
        channel,
        phone_number_id,
    }
}

fn at(app: &TestApp, ago: Duration) -> DateTime<Utc> {
    app.now() - ago
}

/// The customer of `conversation_id` wrote `ago`; returns the inbound
/// message's id (its wamid is `wamid.IN<id>`).
async fn customer_wrote(app: &TestApp, conversation_id: i64, ago: Duration) -> i64 {
    let db = &app.domain.db;
    let when = at(app, ago);
    let c = conversation::Entity::find_by_id(conversation_id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let inbound = message::ActiveModel {
        conversation_id: Set(c.id),
        channel_id: Set(c.channel_id),
        direction: Set(Direction::Inbound),
        sender_kind: Set(SenderKind::Customer),
        message_type: Set(MessageType::Text),
        body: Set(Some("Ciao, dov'è il mio ordine?".into())),
        wa_message_id: Set(Some(format!("wamid.IN{}", uuid::Uuid::new_v4().simple()))),
        status: Set(DeliveryStatus::Received),
        created_at: Set(when),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    conversation::Entity::update_many()
        .col_expr(conversation::Column::LastInboundAt, Expr::value(when))
        .filter(conversation::Column::Id.eq(c.id))
        .exec(db)
        .await
        .unwrap();
    contact::Entity::update_many()
        .col_expr(contact::Column::LastInboundAt, Expr::value(when))
        .filter(contact::Column::Id.eq(c.contact_id))
        .exec(db)
        .await
        .unwrap();
    inbound.id
}

/// A conversation whose customer wrote `ago`.
async fn conversation_with_customer(d: &Desk, assignee: Option<i64>, ago: Duration) -> i64 {
    let id = d.app.seed_conversation(d.channel, assignee).await;
    customer_wrote(&d.app, id, ago).await;
    id
}

async fn contact_of(app: &TestApp, conversation_id: i64) -> contact::Model {
    let c = conversation::Entity::find_by_id(conversation_id)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    contact::Entity::find_by_id(c.contact_id)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap()
}

const SEND: &str =
    "mutation($i: SendMessageInput!){ sendMessage(input:$i){ id status type body } }";

async fn send(app: &TestApp, token: &str, conversation: i64, fields: Value) -> Gql {
    let mut input = json!({"conversationId": conversation.to_string()});
    if let (Some(obj), Value::Object(extra)) = (input.as_object_mut(), fields) {
        obj.extend(extra);
    }
    app.gql(token, SEND, json!({"i": input})).await
}

async fn send_text(app: &TestApp, token: &str, conversation: i64, text: &str) -> Gql {
    send(app, token, conversation, json!({"text": text})).await
}

fn sent_id(r: &Gql) -> i64 {
    r.data()["sendMessage"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

const MESSAGE: &str = "query($c:ID!){ messages(conversationId:$c){ edges { node { id status waMessageId errorCode errorTitle sentAt failedAt costMicros direction } } } }";

/// The GraphQL view of one message.
async fn message_view(app: &TestApp, conversation: i64, id: i64) -> Value {
    let r = app
        .gql(
            &app.admin_token,
            MESSAGE,
            json!({"c": conversation.to_string()}),
        )
        .await;
    let key = id.to_string();
    r.data()["messages"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .find(|n| n["id"] == key.as_str())
        .unwrap_or_else(|| panic!("message {id} not in {}", r.body))
}

async fn outbox_row(app: &TestApp, message_id: i64) -> outbox::Model {
    outbox::Entity::find()
        .filter(outbox::Column::MessageId.eq(message_id))
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_reply_is_sent_to_the_cloud_api_with_the_channel_token() {
    let d = desk().await;
    let app = &d.app;
    let conv = app.seed_conversation(d.channel, None).await;
    let inbound = customer_wrote(app, conv, Duration::minutes(10)).await;
    let quoted = message::Entity::find_by_id(inbound)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap()
        .wa_message_id
        .unwrap();
    let r = send(
        app,
        &app.admin_token,
        conv,
        json!({"text": "Il pacco parte oggi.", "replyTo": inbound.to_string()}),
    )
    .await;
    assert_eq!(r.data()["sendMessage"]["status"], "QUEUED");
    assert_eq!(r.data()["sendMessage"]["type"], "TEXT");
    let id = sent_id(&r);
    assert_eq!(outbox_row(app, id).await.status, OutboxStatus::Pending);
    assert!(
        d.cloud.requests().is_empty(),
        "nothing leaves before the outbox runs"
    );

    let run = app.domain.run_outbox_once().await.unwrap();
    assert_eq!(run.sent, 1, "{run:?}");

    let requests = d.cloud.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.path, format!("/v21.0/{}/messages", d.phone_number_id));
    assert_eq!(
        req.authorization.as_deref(),
        Some("Bearer test-access-token")
    );
    let wa_id = contact_of(app, conv).await.wa_id.unwrap();
    assert_eq!(
        req.body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": wa_id,
            "type": "text",
            "text": {"body": "Il pacco parte oggi.", "preview_url": false},
            "context": {"message_id": quoted},
        })
    );

    let view = message_view(app, conv, id).await;
    assert_eq!(view["status"], "SENT");
    assert_eq!(view["waMessageId"], d.cloud.wamids()[0].as_str());
    assert!(view["sentAt"].is_string());
    assert_eq!(
        view["costMicros"], 0,
        "the first message of the month is free"
    );
    assert_eq!(outbox_row(app, id).await.status, OutboxStatus::Sent);

    let c = app
        .gql(
            &app.admin_token,
            "query($id:ID!){ conversation(id:$id){ firstResponseAt insideWindow windowExpiresAt } }",
            json!({"id": conv.to_string()}),
        )
        .await;
    let c = &c.data()["conversation"];
    assert!(c["firstResponseAt"].is_string());
    assert_eq!(c["insideWindow"], true);
    let audit = app
        .gql(
            &app.admin_token,
            "query($id:String){ auditLog(filter:{action:\"message.send\", entityId:$id}){ edges { node { actorId } } } }",
            json!({"id": id.to_string()}),
        )
        .await;
    assert_eq!(
        audit.data()["auditLog"]["edges"].as_array().unwrap().len(),
        1
    );
    // Nothing is sent twice.
    assert_eq!(app.domain.run_outbox_once().await.unwrap().sent, 0);
    assert_eq!(d.cloud.requests().len(), 1);
}

#[tokio::test]
async fn a_transient_failure_is_retried_with_backoff_then_sent() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::minutes(5)).await;
    d.cloud.fail_transient(2, 429, Some(130_429));
    let id = sent_id(&send_text(app, &app.admin_token, conv, "Un attimo").await);

    let run = app.domain.run_outbox_once().await.unwrap();
    assert_eq!((run.sent, run.retried), (0, 1), "{run:?}");
    let row = outbox_row(app, id).await;
    assert_eq!(row.status, OutboxStatus::Pending);
    assert_eq!(row.attempts, 1);
    assert!(row.next_attempt_at > app.now(), "backoff");
    assert!(row.last_error.unwrap().contains("130429"));
    assert_eq!(message_view(app, conv, id).await["status"], "QUEUED");

    // Not due yet: nothing is sent.
    assert_eq!(
        app.domain.run_outbox_once().await.unwrap(),
        Default::default()
    );
    assert_eq!(d.cloud.requests().len(), 1);

    app.clock.advance(Duration::seconds(6));
    let run = app.domain.run_outbox_once().await.unwrap();
    assert_eq!(run.retried, 1, "second failure: {run:?}");
    app.clock.advance(Duration::seconds(11));
    let run = app.domain.run_outbox_once().await.unwrap();
    assert_eq!(run.sent, 1, "{run:?}");
    assert_eq!(d.cloud.requests().len(), 3);
    let view = message_view(app, conv, id).await;
    assert_eq!(view["status"], "SENT");
    assert_eq!(view["errorCode"], Value::Null);
    assert_eq!(outbox_row(app, id).await.attempts, 3);
}

#[tokio::test]
async fn a_server_error_without_a_meta_code_is_retried() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::minutes(5)).await;
    d.cloud.fail_transient(1, 503, None);
    let id = sent_id(&send_text(app, &app.admin_token, conv, "Ciao").await);
    assert_eq!(app.domain.run_outbox_once().await.unwrap().retried, 1);
    app.clock.advance(Duration::seconds(6));
    assert_eq!(app.domain.run_outbox_once().await.unwrap().sent, 1);
    assert_eq!(message_view(app, conv, id).await["status"], "SENT");
}

#[tokio::test]
async fn a_permanent_failure_marks_the_message_failed_with_metas_code_and_title() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::minutes(5)).await;
    d.cloud.fail_permanently(131_026, "Message undeliverable");
    let id = sent_id(&send_text(app, &app.admin_token, conv, "Ciao").await);
    let run = app.domain.run_outbox_once().await.unwrap();
    assert_eq!(run.failed, 1, "{run:?}");
    let view = message_view(app, conv, id).await;
    assert_eq!(view["status"], "FAILED");
    assert_eq!(view["errorCode"], 131_026);
    assert!(
        view["errorTitle"]
            .as_str()
            .unwrap()
            .starts_with("Message undeliverable"),
        "{view}"
    );
    assert!(view["failedAt"].is_string());
    assert_eq!(
        view["costMicros"],
        Value::Null,
        "failed messages cost nothing"
    );
    assert_eq!(outbox_row(app, id).await.status, OutboxStatus::Failed);
    // Never retried.
    app.clock.advance(Duration::hours(1));
    d.cloud.succeed();
    app.domain.run_outbox_once().await.unwrap();
    assert_eq!(d.cloud.requests().len(), 1);
}

#[tokio::test]
async fn failures_of_one_run_each_keep_their_own_code_and_title() {
    let d = desk().await;
    let app = &d.app;
    let at_meta = conversation_with_customer(&d, None, Duration::minutes(5)).await;
    let closing = conversation_with_customer(&d, None, Duration::minutes(23 * 60 + 55)).await;
    let refused_by_meta = sent_id(&send_text(app, &app.admin_token, at_meta, "Ciao").await);
    let refused_here = sent_id(&send_text(app, &app.admin_token, closing, "Ciao").await);
    // The second customer's window closes before the outbox runs.
    app.clock.advance(Duration::minutes(10));
    d.cloud.fail_permanently(131_026, "Message undeliverable");
    let run = app.domain.run_outbox_once().await.unwrap();
    assert_eq!(run.failed, 2, "{run:?}");
    let meta = message_view(app, at_meta, refused_by_meta).await;
    assert_eq!(meta["errorCode"], 131_026, "{meta}");
    assert!(
        meta["errorTitle"]
            .as_str()
            .unwrap()
            .starts_with("Message undeliverable")
    );
    let ours = message_view(app, closing, refused_here).await;
    assert_eq!(ours["errorCode"], 131_047, "{ours}");
    assert!(
        ours["errorTitle"]
            .as_str()
            .unwrap()
            .starts_with("Re-engagement message")
    );
    for (conv, id) in [(at_meta, refused_by_meta), (closing, refused_here)] {
        assert_eq!(message_view(app, conv, id).await["status"], "FAILED");
        assert_eq!(outbox_row(app, id).await.status, OutboxStatus::Failed);
    }
    assert_eq!(
        d.cloud.requests().len(),
        1,
        "only the open window reached Meta"
    );
}

#[tokio::test]
async fn metas_window_error_fails_the_message_like_our_own_check() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::hours(1)).await;
    d.cloud.fail_permanently(131_047, "Re-engagement message");
    let id = sent_id(&send_text(app, &app.admin_token, conv, "Ciao").await);
    app.domain.run_outbox_once().await.unwrap();
    let view = message_view(app, conv, id).await;
    assert_eq!(view["status"], "FAILED");
    assert_eq!(view["errorCode"], 131_047);

    // Queued inside the window, still unsent when it closes: refused before Meta.
    d.cloud.fail_transient(1, 500, Some(131_000));
    let conv =
        conversation_with_customer(&d, None, Duration::hours(24) - Duration::minutes(1)).await;
    let id = sent_id(&send_text(app, &app.admin_token, conv, "Ciao").await);
    assert_eq!(app.domain.run_outbox_once().await.unwrap().retried, 1);
    let before = d.cloud.requests().len();
    app.clock.advance(Duration::minutes(2));
    assert_eq!(app.domain.run_outbox_once().await.unwrap().failed, 1);
    assert_eq!(d.cloud.requests().len(), before);
    let view = message_view(app, conv, id).await;
    assert_eq!(view["status"], "FAILED");
    assert_eq!(view["errorCode"], 131_047);
}

#[tokio::test]
async fn two_workers_never_send_the_same_message_twice() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::minutes(5)).await;
    d.cloud.delay(std::time::Duration::from_millis(300));
    sent_id(&send_text(app, &app.admin_token, conv, "Uno").await);
    sent_id(&send_text(app, &app.admin_token, conv, "Due").await);
    let (a, b) = tokio::join!(app.domain.run_outbox_once(), app.domain.run_outbox_once());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 2, "{a:?} {b:?}");
    let bodies: Vec<Value> = d
        .cloud
        .requests()
        .iter()
        .map(|r| r.body["text"]["body"].clone())
        .collect();
    assert_eq!(
        bodies,
        vec![json!("Uno"), json!("Due")],
        "once each, in order"
    );
}

#[tokio::test]
async fn an_automated_message_to_an_opted_out_contact_is_not_sent() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::minutes(5)).await;
    let contact = contact_of(app, conv).await;
    assert!(domain::outbound::may_automate(&contact));
    contact::Entity::update_many()
        .col_expr(
            contact::Column::Consent,
            Expr::value(entity::ConsentState::OptedOut),
        )
        .filter(contact::Column::Id.eq(contact.id))
        .exec(&app.domain.db)
        .await
        .unwrap();
    let now = app.now();
    let content = domain::outbound::OutboundContent::Text {
        body: "Offerta!".into(),
        preview_url: false,
    };
    let bot = message::ActiveModel {
        conversation_id: Set(conv),
        channel_id: Set(d.channel),
        direction: Set(Direction::Outbound),
        sender_kind: Set(SenderKind::Bot),
        message_type: Set(MessageType::Text),
        body: Set(Some("Offerta!".into())),
        payload: Set(Some(serde_json::to_value(&content).unwrap())),
        status: Set(DeliveryStatus::Queued),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&app.domain.db)
    .await
    .unwrap();
    outbox::ActiveModel {
        message_id: Set(bot.id),
        channel_id: Set(d.channel),
        status: Set(OutboxStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.domain.db)
    .await
    .unwrap();
    assert_eq!(app.domain.run_outbox_once().await.unwrap().failed, 1);
    assert!(d.cloud.requests().is_empty());
    // An agent may still answer inside the window.
    sent_id(&send_text(app, &app.admin_token, conv, "Le rispondo io").await);
    assert_eq!(app.domain.run_outbox_once().await.unwrap().sent, 1);
}

#[tokio::test]
async fn every_message_limit_is_checked_and_names_the_field() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::minutes(5)).await;
    let mb = 1024 * 1024;
    let media = |kind: &str, mime: &str, size: i64| json!({"media": {"kind": kind, "link": "https://cdn.example/f", "mimeType": mime, "sizeBytes": size}});
    let buttons = |bs: Value| json!({"interactive": {"body": "Scegli", "buttons": bs}});
    let b = |id: &str, title: &str| json!({"id": id, "title": title});
    let list = |button: &str, rows: Value| json!({"interactive": {"body": "Scegli", "list": {"button": button, "sections": [{"title": "Taglie", "rows": rows}]}}});
    let row = |id: usize| json!({"id": format!("r{id}"), "title": format!("Riga {id}")});
    let eleven: Vec<Value> = (0..11).map(row).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("text over 4096", json!({"text": "a".repeat(4097)}), "text"),
        ("nothing", json!({}), "input"),
        (
            "two kinds",
            json!({"text": "hi", "template": {"name": "x", "language": "en"}}),
            "input",
        ),
        (
            "video over 16 MB",
            media("VIDEO", "video/mp4", 16 * mb + 1),
            "media.sizeBytes",
        ),
        (
            "image over 5 MB",
            media("IMAGE", "image/jpeg", 5 * mb + 1),
            "media.sizeBytes",
        ),
        (
            "gif image",
            media("IMAGE", "image/gif", 1000),
            "media.mimeType",
        ),
        (
            "audio over 16 MB",
            media("AUDIO", "audio/ogg", 16 * mb + 1),
            "media.sizeBytes",
        ),
        (
            "document over 100 MB",
            media("DOCUMENT", "application/pdf", 100 * mb + 1),
            "media.sizeBytes",
        ),
        (
            "sticker over 100 KB",
            media("STICKER", "image/webp", 100 * 1024 + 1),
            "media.sizeBytes",
        ),
        (
            "not a URL",
            json!({"media": {"kind": "IMAGE", "link": "file:///etc/passwd", "mimeType": "image/png", "sizeBytes": 10}}),
            "media.link",
        ),
        (
            "four buttons",
            buttons(json!([b("a", "A"), b("b", "B"), b("c", "C"), b("d", "D")])),
            "interactive.buttons",
        ),
        (
            "button title over 20",
            buttons(json!([b("a", &"t".repeat(21))])),
            "interactive.buttons.title",
        ),
        (
            "button id over 256",
            buttons(json!([b(&"i".repeat(257), "A")])),
            "interactive.buttons.id",
        ),
        (
            "duplicate button ids",
            buttons(json!([b("a", "A"), b("a", "B")])),
            "interactive.buttons.id",
        ),
        (
            "body over 1024",
            json!({"interactive": {"body": "x".repeat(1025), "buttons": [b("a","A")]}}),
            "interactive.body",
        ),
        (
            "eleven rows",
            list("Vedi", json!(eleven)),
            "interactive.list.rows",
        ),
        (
            "row title over 24",
            list("Vedi", json!([{"id": "r", "title": "t".repeat(25)}])),
            "interactive.list.rows.title",
        ),
        (
            "row description over 72",
            list(
                "Vedi",
                json!([{"id": "r", "title": "T", "description": "d".repeat(73)}]),
            ),
            "interactive.list.rows.description",
        ),
        (
            "list button over 20",
            list(&"b".repeat(21), json!([row(1)])),
            "interactive.list.button",
        ),
        (
            "template name",
            json!({"template": {"name": "Order Update!", "language": "en"}}),
            "template.name",
        ),
        (
            "template language",
            json!({"template": {"name": "order_update", "language": "english"}}),
            "template.language",
        ),
        (
            "reply to unknown",
            json!({"text": "hi", "replyTo": "999999"}),
            "replyTo",
        ),
        ("unknown shortcut", json!({"text": "/nope"}), "text"),
    ];
    let mut failures = vec![];
    for (name, fields, field) in cases {
        let r = send(app, &app.admin_token, conv, fields).await;
        let err = &r.body["errors"][0]["extensions"];
        if err["code"] != "BAD_USER_INPUT" || err["field"] != field {
            failures.push(format!(
                "{name}: expected BAD_USER_INPUT on {field}, got {}",
                r.body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // At the limits everything is accepted.
    let ok: Vec<Value> = vec![
        json!({"text": "a".repeat(4096)}),
        media("VIDEO", "video/mp4", 16 * mb),
        media("IMAGE", "image/png", 5 * mb),
        buttons(json!([
            b("a", &"t".repeat(20)),
            b(&"i".repeat(256), "B"),
            b("c", "C")
        ])),
        list(&"b".repeat(20), json!((0..10).map(row).collect::<Vec<_>>())),
        json!({"template": {"name": "order_update", "language": "it", "parameters": ["A12"]}}),
    ];
    // Enough room for all of them under the new-customer limit.
    for (i, fields) in ok.into_iter().enumerate() {
        if i == 5 {
            app.clock.advance(Duration::seconds(61));
        }
        send(app, &app.admin_token, conv, fields).await.data();
    }
    let run = app.domain.run_outbox_once().await.unwrap();
    assert_eq!(
        run.sent,
        6,
        "{run:?} {:?}",
        outbox::Entity::find().all(&app.domain.db).await.unwrap()
    );
    let sent = d.cloud.requests();
    assert_eq!(
        sent[1].body["video"],
        json!({"link": "https://cdn.example/f"})
    );
    assert_eq!(
        sent[3].body["interactive"]["action"]["buttons"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        sent[4].body["interactive"]["action"]["sections"][0]["rows"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(sent[5].body["template"]["name"], "order_update");
}

#[tokio::test]
async fn after_24_hours_free_form_is_refused_but_a_template_is_accepted() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::hours(25)).await;
    send_text(app, &app.admin_token, conv, "Ciao")
        .await
        .assert_code("OUTSIDE_WINDOW");
    let r = app
        .gql(
            &app.admin_token,
            "query($id:ID!){ conversation(id:$id){ insideWindow windowExpiresAt } }",
            json!({"id": conv.to_string()}),
        )
        .await;
    assert_eq!(r.data()["conversation"]["insideWindow"], false);
    let expires: DateTime<Utc> = r.data()["conversation"]["windowExpiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(expires, at(app, Duration::hours(1)));
    let r = send(
        app,
        &app.admin_token,
        conv,
        json!({"template": {"name": "order_update", "language": "it", "parameters": ["A12"]}}),
    )
    .await;
    assert_eq!(r.data()["sendMessage"]["type"], "TEMPLATE");
    assert_eq!(app.domain.run_outbox_once().await.unwrap().sent, 1);
    assert_eq!(d.cloud.requests()[0].body["type"], "template");

    // A conversation whose customer never wrote is outside the window too.
    let cold = app.seed_conversation(d.channel, None).await;
    send_text(app, &app.admin_token, cold, "Ciao")
        .await
        .assert_code("OUTSIDE_WINDOW");
}

async fn ledger_of(app: &TestApp, message_id: i64) -> billing_ledger::Model {
    billing_ledger::Entity::find()
        .filter(billing_ledger::Column::MessageId.eq(message_id))
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap()
}

const TEMPLATE: &str = r#"{"template": {"name": "order_update", "language": "it"}}"#;

#[tokio::test]
async fn a_message_sent_more_than_48_hours_after_the_customer_is_surcharged() {
    let d = desk().await;
    let app = &d.app;
    let template: Value = serde_json::from_str(TEMPLATE).unwrap();
    let late = conversation_with_customer(&d, None, Duration::hours(49)).await;
    let recent = conversation_with_customer(&d, None, Duration::hours(47)).await;
    let late_id = sent_id(&send(app, &app.admin_token, late, template.clone()).await);
    let recent_id = sent_id(&send(app, &app.admin_token, recent, template).await);
    assert_eq!(app.domain.run_outbox_once().await.unwrap().sent, 2);

    let row = ledger_of(app, late_id).await;
    assert!(row.free, "within the monthly allowance");
    assert_eq!(row.base_micros, 0);
    assert_eq!(row.surcharge_micros, 10_000);
    assert_eq!(row.total_micros, 10_000);
    assert_eq!(message_view(app, late, late_id).await["costMicros"], 10_000);
    let row = ledger_of(app, recent_id).await;
    assert_eq!(row.surcharge_micros, 0);
    assert_eq!(row.total_micros, 0);
}

/// `n` sent messages with their ledger rows, in a conversation of their own.
async fn seed_ledger(d: &Desk, n: usize) {
    let app = &d.app;
    let db = &app.domain.db;
    let conv = app.seed_conversation(d.channel, None).await;
    let when = app.now() - Duration::seconds(1);
    let period = domain::billing::period(when);
    for start in (0..n).step_by(200) {
        let rows = (start..n.min(start + 200)).map(|_| message::ActiveModel {
            conversation_id: Set(conv),
            channel_id: Set(d.channel),
            direction: Set(Direction::Outbound),
            sender_kind: Set(SenderKind::Agent),
            message_type: Set(MessageType::Text),
            body: Set(Some("earlier".into())),
            status: Set(DeliveryStatus::Sent),
            cost_micros: Set(Some(0)),
            created_at: Set(when),
            ..Default::default()
        });
        message::Entity::insert_many(rows).exec(db).await.unwrap();
    }
    let ids: Vec<i64> = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conv))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids.len(), n);
    for chunk in ids.chunks(200) {
        let ledger = chunk.iter().map(|&id| billing_ledger::ActiveModel {
            message_id: Set(id),
            channel_id: Set(d.channel),
            conversation_id: Set(conv),
            period: Set(period.clone()),
            region: Set("europe".into()),
            free: Set(true),
            base_micros: Set(0),
            surcharge_micros: Set(0),
            total_micros: Set(0),
            created_at: Set(when),
            ..Default::default()
        });
        billing_ledger::Entity::insert_many(ledger)
            .exec(db)
            .await
            .unwrap();
    }
}

const BILLING: &str = "query($from:DateTime!,$to:DateTime!,$ch:ID,$conv:ID,$g:BillingGranularity){ billing(from:$from,to:$to,channelId:$ch,conversationId:$conv,granularity:$g){ totals { messages free billable baseMicros surchargeMicros totalMicros totalUsd } periods { period start totals { messages totalMicros } } } }";

#[tokio::test]
async fn the_1000th_message_of_the_month_is_free_and_the_1001st_is_billed() {
    let d = desk().await;
    let app = &d.app;
    seed_ledger(&d, 999).await;
    let conv = conversation_with_customer(&d, None, Duration::minutes(5)).await;
    let thousandth = sent_id(&send_text(app, &app.admin_token, conv, "Mille").await);
    let next = sent_id(&send_text(app, &app.admin_token, conv, "Milleuno").await);
    assert_eq!(app.domain.run_outbox_once().await.unwrap().sent, 2);
    let row = ledger_of(app, thousandth).await;
    assert!(row.free);
    assert_eq!(row.total_micros, 0);
    let row = ledger_of(app, next).await;
    assert!(!row.free);
    assert_eq!(row.base_micros, 8_000, "Europe: 0.008 USD");
    assert_eq!(row.total_micros, 8_000);
    assert_eq!(message_view(app, conv, next).await["costMicros"], 8_000);

    let from = (app.now() - Duration::days(40)).to_rfc3339();
    let to = (app.now() + Duration::days(1)).to_rfc3339();
    let r = app
        .gql(
            &app.admin_token,
            BILLING,
            json!({"from": from, "to": to, "ch": d.channel.to_string(), "g": "MONTH"}),
        )
        .await;
    let b = &r.data()["billing"];
    assert_eq!(
        b["totals"],
        json!({"messages": 1001, "free": 1000, "billable": 1, "baseMicros": 8000,
               "surchargeMicros": 0, "totalMicros": 8000, "totalUsd": 0.008})
    );
    assert_eq!(b["periods"].as_array().unwrap().len(), 1);
    assert_eq!(
        b["periods"][0]["period"],
        domain::billing::period(app.now())
    );

    let r = app
        .gql(
            &app.admin_token,
            BILLING,
            json!({"from": from, "to": to, "conv": conv.to_string(), "g": "DAY"}),
        )
        .await;
    let b = &r.data()["billing"];
    assert_eq!(b["totals"]["messages"], 2);
    assert_eq!(b["totals"]["billable"], 1);
    assert_eq!(
        b["periods"][0]["period"],
        app.now().format("%Y-%m-%d").to_string()
    );
    assert_eq!(b["periods"][0]["totals"]["totalMicros"], 8000);

    // Another channel's month is untouched.
    let r = app
        .gql(
            &app.admin_token,
            BILLING,
            json!({"from": from, "to": to, "ch": "999999"}),
        )
        .await;
    assert_eq!(r.data()["billing"]["totals"]["messages"], 0);
    app.gql(&app.admin_token, BILLING, json!({"from": to, "to": from}))
        .await
        .assert_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn a_new_customer_gets_at_most_5_messages_a_minute() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::minutes(1)).await;
    for i in 0..5 {
        send_text(app, &app.admin_token, conv, &format!("Messaggio {i}"))
            .await
            .data();
    }
    let r = send_text(app, &app.admin_token, conv, "Il sesto").await;
    r.assert_code("RATE_LIMITED");
    assert_eq!(r.body["errors"][0]["extensions"]["retryAfterSeconds"], 60);
    app.clock.advance(Duration::seconds(30));
    let r = send_text(app, &app.admin_token, conv, "Il sesto").await;
    assert_eq!(r.body["errors"][0]["extensions"]["retryAfterSeconds"], 30);
    app.clock.advance(Duration::seconds(30));
    send_text(app, &app.admin_token, conv, "Il sesto")
        .await
        .data();
}

#[tokio::test]
async fn an_existing_customer_has_no_limit() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::minutes(1)).await;
    let contact = contact_of(app, conv).await;
    let mut old: contact::ActiveModel = contact.into();
    old.created_at = Set(app.now() - Duration::days(30));
    old.update(&app.domain.db).await.unwrap();
    for i in 0..8 {
        send_text(app, &app.admin_token, conv, &format!("Messaggio {i}"))
            .await
            .data();
    }
    // A returning customer (an earlier conversation) is not new either.
    let returning = conversation_with_customer(&d, None, Duration::minutes(1)).await;
    let contact_id = contact_of(app, returning).await.id;
    let earlier = app.seed_conversation(d.channel, None).await;
    conversation::Entity::update_many()
        .col_expr(conversation::Column::ContactId, Expr::value(contact_id))
        .col_expr(
            conversation::Column::Status,
            Expr::value(entity::ConversationStatus::Closed),
        )
        .col_expr(
            conversation::Column::CreatedAt,
            Expr::value(app.now() - Duration::hours(2)),
        )
        .filter(conversation::Column::Id.eq(earlier))
        .exec(&app.domain.db)
        .await
        .unwrap();
    for i in 0..6 {
        send_text(app, &app.admin_token, returning, &format!("Messaggio {i}"))
            .await
            .data();
    }
}

#[tokio::test]
async fn only_staff_who_may_act_on_the_conversation_can_send() {
    let d = desk().await;
    let app = &d.app;
    let (agent_id, agent) = app.staff("Agnese", "AGENT").await;
    let (_, analyst) = app.staff("Analisa", "ANALYST").await;
    let (_, first) = app.staff("Marco", "EDITOR").await;
    let (_, second) = app.staff("Sofia", "EDITOR").await;
    let mine = conversation_with_customer(&d, Some(agent_id), Duration::minutes(5)).await;
    let other = conversation_with_customer(&d, None, Duration::minutes(5)).await;

    send_text(app, &analyst, mine, "Ciao")
        .await
        .assert_code("FORBIDDEN");
    send_text(app, &agent, other, "Ciao")
        .await
        .assert_code("FORBIDDEN");
    send_text(app, &agent, mine, "Ciao").await.data();

    // The lock: a non-holder is refused, the holder's reply is lock activity.
    app.gql(
        &first,
        "mutation($id:ID!){ openConversation(id:$id){ id } }",
        json!({"id": other.to_string()}),
    )
    .await
    .data();
    let refused = send_text(app, &second, other, "Rispondo io").await;
    refused.assert_code("CONFLICT");
    assert_eq!(
        refused.body["errors"][0]["extensions"]["holderName"],
        "Marco"
    );
    app.clock.advance(Duration::minutes(2));
    send_text(app, &first, other, "Rispondo io").await.data();
    app.clock.advance(Duration::minutes(2));
    // Four minutes after opening, idle would have released it at three.
    send_text(app, &second, other, "Anch'io")
        .await
        .assert_code("CONFLICT");
    let c = conversation::Entity::find_by_id(other)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.lock_last_activity_at,
        Some(app.now() - Duration::minutes(2))
    );
}

#[tokio::test]
async fn a_shortcut_sends_the_canned_response_with_placeholders_filled() {
    let d = desk().await;
    let app = &d.app;
    let conv = conversation_with_customer(&d, None, Duration::minutes(5)).await;
    let r = app
        .gql(
            &app.admin_token,
            "mutation { createCannedResponse(input:{shortcut:\"/reso\", title:\"Reso\", body:\"Ciao {{name}}, il reso per la pratica {{conversation}} è avviato.\"}) { id shortcut } }",
            json!({}),
        )
        .await;
    assert_eq!(r.data()["createCannedResponse"]["shortcut"], "reso");
    let canned_id = r.data()["createCannedResponse"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let name = contact_of(app, conv).await.profile_name.unwrap();
    let expected = format!("Ciao {name}, il reso per la pratica {conv} è avviato.");

    let r = send_text(app, &app.admin_token, conv, "/reso").await;
    assert_eq!(r.data()["sendMessage"]["body"], expected.as_str());
    let r = send(
        app,
        &app.admin_token,
        conv,
        json!({"cannedResponseId": canned_id}),
    )
    .await;
    assert_eq!(r.data()["sendMessage"]["body"], expected.as_str());
    app.domain.run_outbox_once().await.unwrap();
    assert_eq!(
        d.cloud.requests()[1].body["text"]["body"],
        expected.as_str()
    );

    let (_, agent) = app.staff("Agnese", "AGENT").await;
    let list = app
        .gql(
            &agent,
            "{ cannedResponses(search:\"reso\") { shortcut } }",
            json!({}),
        )
        .await;
    assert_eq!(list.data()["cannedResponses"][0]["shortcut"], "reso");
    app.gql(
        &agent,
        "mutation { createCannedResponse(input:{shortcut:\"x\", title:\"x\", body:\"x\"}) { id } }",
        json!({}),
    )
    .await
    .assert_code("FORBIDDEN");
    app.gql(
        &app.admin_token,
        "mutation { createCannedResponse(input:{shortcut:\"reso\", title:\"Again\", body:\"x\"}) { id } }",
        json!({}),
    )
    .await
    .assert_code("BAD_USER_INPUT");
}
