//! Outbound webhooks against a local CRM stand-in: signature, id and
//! timestamp, retries with backoff on the manual clock, order per
//! conversation, disabling after repeated failure, and the delivery log.

use chrono::Duration;
use entity::webhook_delivery;
use hmac::{KeyInit, Mac};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::crm::Crm;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app_with};

async fn webhook_app(adjust: impl FnOnce(&mut api::Config)) -> TestApp {
    spawn_app_with(|c| {
        c.webhooks_allow_http = true;
        // Tests drive deliveries with `domain.run_webhooks_once()`.
        c.webhooks_worker = false;
        adjust(c);
    })
    .await
}

async fn subscribe(app: &TestApp, url: &str, types: &[&str]) -> (String, String) {
    let r = app
        .gql(
            &app.admin_token,
            "mutation($i: WebhookSubscriptionCreateInput!){ createWebhookSubscription(input:$i){ secret subscription { id isActive eventTypes } } }",
            json!({"i": {"name": "CRM", "url": url, "eventTypes": types}}),
        )
        .await;
    let created = &r.data()["createWebhookSubscription"];
    assert_eq!(created["subscription"]["isActive"], true);
    (
        created["subscription"]["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

async fn contact_of(app: &TestApp, conversation: i64) -> i64 {
    app.conversation_row(conversation).await.contact_id
}

async fn rename(app: &TestApp, contact: i64, name: &str) {
    app.gql(
        &admin(app).await,
        "mutation($id:ID!,$n:String){ updateContact(id:$id, input:{name:$n}){ id } }",
        json!({"id": contact.to_string(), "n": name}),
    )
    .await
    .data();
}

async fn pending(app: &TestApp) -> u64 {
    webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq(entity::DeliveryState::Pending))
        .count(&app.domain.db)
        .await
        .unwrap()
}

fn hmac_hex(secret: &str, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A fresh admin token: tests move the clock past the access token's life.
async fn admin(app: &TestApp) -> String {
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
}

async fn subscription(app: &TestApp, id: &str) -> Value {
    let token = admin(app).await;
    let r = app
        .gql(
            &token,
            "{ webhookSubscriptions { id isActive disabledReason consecutiveFailures } }",
            json!({}),
        )
        .await;
    r.data()["webhookSubscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .expect("subscription listed")
}

#[tokio::test]
async fn deliveries_are_signed_and_carry_an_id_and_a_timestamp() {
    let app = webhook_app(|_| {}).await;
    let crm = Crm::start().await;
    let (sub, secret) = subscribe(
        &app,
        &crm.url,
        &["CONTACT_UPDATED", "CONVERSATION_ASSIGNED"],
    )
    .await;
    let channel = app.seed_channel().await;
    let conversation = app.seed_conversation(channel, None).await;
    let contact = contact_of(&app, conversation).await;
    rename(&app, contact, "Ada Lovelace").await;

    let run = app.domain.run_webhooks_once().await.unwrap();
    assert_eq!(run.delivered, 1);
    let got = crm.received();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    let expected = format!("sha256={}", hmac_hex(&secret, &req.body));
    assert_eq!(req.header("x-helpdesk-signature"), Some(expected.as_str()));
    assert_ne!(
        req.header("x-helpdesk-signature"),
        Some(format!("sha256={}", hmac_hex("another-secret", &req.body)).as_str())
    );
    let body = req.json();
    assert_eq!(body["type"], "contact.updated");
    assert_eq!(body["data"]["contactId"], contact.to_string());
    assert_eq!(body["data"]["name"], "Ada Lovelace");
    assert_eq!(req.header("x-helpdesk-id"), body["id"].as_str());
    assert_eq!(
        req.header("x-helpdesk-timestamp"),
        Some(app.now().timestamp().to_string().as_str())
    );
    assert_eq!(body["timestamp"], app.now().timestamp());

    // A conversation change is queued by the time its mutation returns.
    let (agent, _) = app.staff("Wanda", "AGENT").await;
    app.gql(
        &app.admin_token,
        "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }",
        json!({"c": conversation.to_string(), "a": agent.to_string()}),
    )
    .await
    .data();
    assert_eq!(
        pending(&app).await,
        1,
        "the assignment is queued for the CRM"
    );
    app.domain.run_webhooks_once().await.unwrap();
    let got = crm.received();
    assert_eq!(got.len(), 2);
    let body = got[1].json();
    assert_eq!(body["type"], "conversation.assigned");
    assert_eq!(body["data"]["conversationId"], conversation.to_string());
    assert_eq!(body["data"]["assigneeId"], agent.to_string());

    // The delivery log.
    let r = app
        .gql(
            &app.admin_token,
            "query($s:ID){ webhookDeliveries(subscriptionId:$s){ edges { node { eventType status attempts responseStatus latencyMs deliveredAt } } } }",
            json!({"s": sub}),
        )
        .await;
    let edges = r.data()["webhookDeliveries"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 2);
    let last = &edges[1]["node"];
    assert_eq!(last["eventType"], "contact.updated");
    assert_eq!(last["status"], "DELIVERED");
    assert_eq!(last["attempts"], 1);
    assert_eq!(last["responseStatus"], 200);
    assert!(last["latencyMs"].is_number());
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_backoff_and_the_same_id() {
    let app = webhook_app(|_| {}).await;
    let crm = Crm::start().await;
    subscribe(&app, &crm.url, &["CONTACT_UPDATED"]).await;
    let channel = app.seed_channel().await;
    let contact = contact_of(&app, app.seed_conversation(channel, None).await).await;
    crm.answer(&[500, 503]);
    rename(&app, contact, "Grace").await;

    let run = app.domain.run_webhooks_once().await.unwrap();
    assert_eq!(run.retried, 1);
    // Not due yet: nothing is sent.
    app.domain.run_webhooks_once().await.unwrap();
    assert_eq!(crm.received().len(), 1);
    app.clock.advance(Duration::seconds(11));
    assert_eq!(app.domain.run_webhooks_once().await.unwrap().retried, 1);
    app.clock.advance(Duration::hours(2));
    assert_eq!(app.domain.run_webhooks_once().await.unwrap().delivered, 1);

    let got = crm.received();
    assert_eq!(got.len(), 3);
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.header("x-helpdesk-id").unwrap().to_string())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let stamps: Vec<i64> = got
        .iter()
        .map(|r| r.json()["timestamp"].as_i64().unwrap())
        .collect();
    assert!(stamps[0] < stamps[1] && stamps[1] < stamps[2], "{stamps:?}");
    let row = webhook_delivery::Entity::find()
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 3);
    assert_eq!(row.status, entity::DeliveryState::Delivered);
    assert_eq!(row.response_status, Some(200));
}

#[tokio::test]
async fn events_of_one_conversation_are_delivered_in_order() {
    let app = webhook_app(|_| {}).await;
    let crm = Crm::start().await;
    subscribe(
        &app,
        &crm.url,
        &[
            "CONVERSATION_ASSIGNED",
            "CONVERSATION_RESOLVED",
            "CONTACT_UPDATED",
        ],
    )
    .await;
    let channel = app.seed_channel().await;
    let (agent, _) = app.staff("Olga", "AGENT").await;
    let first = app.seed_conversation(channel, None).await;
    let second = app.seed_conversation(channel, None).await;
    // The first event of `first` fails once; the others wait behind it.
    crm.answer(&[500]);
    app.gql(
        &app.admin_token,
        "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }",
        json!({"c": first.to_string(), "a": agent.to_string()}),
    )
    .await
    .data();
    assert_eq!(pending(&app).await, 1, "first assignment queued");
    app.domain.run_webhooks_once().await.unwrap();
    assert_eq!(crm.received().len(), 1);
    app.gql(
        &app.admin_token,
        "mutation($c:ID!){ resolve(conversationId:$c){ id } }",
        json!({"c": first.to_string()}),
    )
    .await
    .data();
    app.gql(
        &app.admin_token,
        "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }",
        json!({"c": second.to_string(), "a": agent.to_string()}),
    )
    .await
    .data();
    assert_eq!(pending(&app).await, 3, "three deliveries queued");

    // Only the other conversation may go while the first one's head waits.
    app.domain.run_webhooks_once().await.unwrap();
    let got = crm.received();
    assert_eq!(
        got.len(),
        2,
        "the resolution must wait behind the failed assignment"
    );
    assert_eq!(got[1].json()["data"]["conversationId"], second.to_string());

    app.clock.advance(Duration::hours(2));
    app.domain.run_webhooks_once().await.unwrap();
    let of_first: Vec<String> = crm
        .received()
        .iter()
        .map(|r| r.json())
        .filter(|b| b["data"]["conversationId"].as_str() == Some(first.to_string().as_str()))
        .map(|b| b["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        of_first,
        [
            "conversation.assigned",
            "conversation.assigned",
            "conversation.resolved"
        ]
    );
    assert_eq!(pending(&app).await, 0);
}

#[tokio::test]
async fn a_subscription_that_keeps_failing_is_disabled_with_its_reason() {
    let app = webhook_app(|c| c.webhook_disable_after_failures = 3).await;
    let crm = Crm::start().await;
    let (sub, _) = subscribe(&app, &crm.url, &["CONTACT_UPDATED"]).await;
    let channel = app.seed_channel().await;
    let contact = contact_of(&app, app.seed_conversation(channel, None).await).await;
    crm.answer_always(500);
    rename(&app, contact, "Failing").await;
    for _ in 0..3 {
        app.domain.run_webhooks_once().await.unwrap();
        app.clock.advance(Duration::hours(2));
    }
    assert_eq!(crm.received().len(), 3);
    let s = subscription(&app, &sub).await;
    assert_eq!(s["isActive"], false);
    let reason = s["disabledReason"].as_str().unwrap();
    assert!(
        reason.contains("3 failed attempts") && reason.contains("HTTP 500"),
        "{reason}"
    );
    // Disabled: nothing more is sent, and new events are not queued for it.
    rename(&app, contact, "Still failing").await;
    app.domain.run_webhooks_once().await.unwrap();
    assert_eq!(crm.received().len(), 3);
    assert_eq!(pending(&app).await, 1);
    let token = admin(&app).await;
    let audit = app
        .gql(
            &token,
            "{ auditLog(filter:{action:\"webhook_subscription.disable\"}){ edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        audit.data()["auditLog"]["edges"].as_array().unwrap().len(),
        1
    );

    // The admin fixes the endpoint and enables it again: the backlog goes.
    crm.answer_always(200);
    let r = app
        .gql(
            &token,
            "mutation($id:ID!){ updateWebhookSubscription(id:$id, input:{isActive:true}){ isActive disabledReason consecutiveFailures } }",
            json!({"id": sub}),
        )
        .await;
    assert_eq!(
        r.data()["updateWebhookSubscription"]["disabledReason"],
        Value::Null
    );
    app.clock.advance(Duration::hours(2));
    assert_eq!(app.domain.run_webhooks_once().await.unwrap().delivered, 1);
    assert_eq!(pending(&app).await, 0);
}

#[tokio::test]
async fn a_delivery_failing_for_a_day_is_given_up_and_the_subscription_disabled() {
    let app = webhook_app(|_| {}).await;
    let crm = Crm::start().await;
    let (sub, _) = subscribe(&app, &crm.url, &["CONTACT_UPDATED"]).await;
    let channel = app.seed_channel().await;
    let contact = contact_of(&app, app.seed_conversation(channel, None).await).await;
    crm.answer_always(502);
    rename(&app, contact, "Gone").await;
    app.domain.run_webhooks_once().await.unwrap();
    app.clock.advance(Duration::hours(25));
    let run = app.domain.run_webhooks_once().await.unwrap();
    assert_eq!((run.failed, run.disabled), (1, 1));
    let token = admin(&app).await;
    let r = app
        .gql(
            &token,
            "{ webhookDeliveries(status:FAILED){ edges { node { attempts lastError } } } }",
            json!({}),
        )
        .await;
    let node = &r.data()["webhookDeliveries"]["edges"][0]["node"];
    assert_eq!(node["attempts"], 2);
    assert_eq!(node["lastError"], "HTTP 502");
    let s = subscription(&app, &sub).await;
    assert_eq!(s["isActive"], false);
    assert!(s["disabledReason"].as_str().unwrap().contains("24 h"));
}

#[tokio::test]
async fn webhook_urls_must_be_https() {
    let app = spawn_app_with(|_| {}).await;
    let r = app
        .gql(
            &app.admin_token,
            "mutation { createWebhookSubscription(input:{name:\"CRM\", url:\"http://127.0.0.1:9/hook\", eventTypes:[CONTACT_UPDATED]}) { secret } }",
            json!({}),
        )
        .await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "url");
    let r = app
        .gql(
            &app.admin_token,
            "mutation { createWebhookSubscription(input:{name:\"CRM\", url:\"https://crm.example.com/hook\", eventTypes:[]}) { secret } }",
            json!({}),
        )
        .await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "eventTypes");
}

#[tokio::test]
async fn a_customer_message_and_the_reply_reach_the_crm_in_order() {
    let app = webhook_app(|_| {}).await;
    let crm = Crm::start().await;
    subscribe(
        &app,
        &crm.url,
        &[
            "CONVERSATION_CREATED",
            "MESSAGE_INBOUND",
            "MESSAGE_OUTBOUND",
        ],
    )
    .await;
    let number = "106540352242999";
    app.gql(
        &app.admin_token,
        "mutation($n:String!){ createChannel(input:{name:\"Shop\", phoneNumberId:$n}) { id } }",
        json!({"n": number}),
    )
    .await
    .data();
    let delivery = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": number},
        "contacts": [{"profile": {"name": "Lucia"}, "wa_id": "393401112222"}],
        "messages": [{"from": "393401112222", "id": "wamid.CRM1", "timestamp": app.now().timestamp().to_string(), "type": "text", "text": {"body": "Ciao"}}],
    }}]}]});
    let resp = app
        .client
        .post(format!("{}/webhooks/whatsapp", app.address))
        .json(&delivery)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        pending(&app).await,
        2,
        "the conversation and the message are queued"
    );
    let conversation = entity::conversation::Entity::find()
        .one(&app.domain.db)
        .await
        .unwrap()
        .expect("a conversation")
        .id;
    app.gql(
        &app.admin_token,
        "mutation($c:ID!){ sendMessage(input:{conversationId:$c, text:\"Salve, come posso aiutare?\"}){ id } }",
        json!({"c": conversation.to_string()}),
    )
    .await
    .data();
    assert_eq!(pending(&app).await, 3, "the reply is queued");
    assert_eq!(app.domain.run_webhooks_once().await.unwrap().delivered, 3);
    let bodies: Vec<Value> = crm.received().iter().map(|r| r.json()).collect();
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "conversation.created",
            "message.inbound",
            "message.outbound"
        ]
    );
    assert_eq!(bodies[1]["data"]["text"], "Ciao");
    assert_eq!(bodies[2]["data"]["text"], "Salve, come posso aiutare?");
    assert!(
        bodies.iter().all(
            |b| b["data"]["conversationId"].as_str() == Some(conversation.to_string().as_str())
        )
    );
}
