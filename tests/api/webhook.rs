//! The WhatsApp webhook: handshake, signatures, every message type,
//! statuses, idempotency under concurrency, malformed input.

use entity::{
    ConsentState, DeliveryStatus, Direction, MessageType, contact, conversation, message,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const SECRET: &str = "test-app-secret";
const NUMBER_ID: &str = "106540352242922";

async fn app() -> TestApp {
    let app = spawn_app_with(|c| {
        c.webhook_verify_token = Some("verify-me".into());
        c.whatsapp_app_secret = Some(SECRET.into());
    })
    .await;
    app.gql(
        &app.admin_token,
        "mutation($n:String!){ createChannel(input:{name:\"Shop IT\", phoneNumberId:$n}) { id } }",
        json!({"n": NUMBER_ID}),
    )
    .await
    .data();
    app
}

fn envelope(number: &str, value: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": number},
        "contacts": value.get("contacts").cloned().unwrap_or(json!([])),
        "messages": value.get("messages").cloned().unwrap_or(json!([])),
        "statuses": value.get("statuses").cloned().unwrap_or(json!([])),
    }}]}]})
}

fn text(id: &str, from: &str, body: &str, ts: i64) -> Value {
    json!({"from": from, "id": id, "timestamp": ts.to_string(), "type": "text", "text": {"body": body}})
}

fn profile(wa_id: &str, name: &str) -> Value {
    json!({"profile": {"name": name}, "wa_id": wa_id})
}

impl TestApp {
    async fn post_webhook(&self, body: &[u8], signature: Option<String>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/webhooks/whatsapp", self.address))
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("X-Hub-Signature-256", sig);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn deliver(&self, delivery: &Value) -> (u16, Value) {
        let body = delivery.to_string();
        let sig = api::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
        self.post_webhook(body.as_bytes(), Some(sig)).await
    }

    async fn message_count(&self) -> u64 {
        message::Entity::find()
            .count(&self.domain.db)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_verification_handshake_echoes_the_challenge_only_for_the_right_token() {
    let app = app().await;
    let get = |token: &str| {
        app.client
            .get(format!("{}/webhooks/whatsapp", app.address))
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", token),
                ("hub.challenge", "1158201444"),
            ])
            .send()
    };
    let ok = get("verify-me").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    assert_eq!(get("wrong").await.unwrap().status(), 403);
    let missing = app
        .client
        .get(format!("{}/webhooks/whatsapp", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn signatures_are_required_and_checked_against_the_raw_body() {
    let app = app().await;
    let delivery = envelope(
        NUMBER_ID,
        json!({"messages": [text("wamid.S1", "393331112222", "Ciao, è arrivato?", 1_700_000_000)]}),
    );
    let body = delivery.to_string();
    let (missing, _) = app.post_webhook(body.as_bytes(), None).await;
    assert_eq!(missing, 401);
    let wrong = api::whatsapp::signature::sign(b"another-secret", body.as_bytes());
    assert_eq!(app.post_webhook(body.as_bytes(), Some(wrong)).await.0, 401);
    assert_eq!(
        app.message_count().await,
        0,
        "refused deliveries write nothing"
    );
    let (status, report) = app.deliver(&delivery).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["messages"], 1);
}

#[tokio::test]
async fn every_message_type_is_stored_with_its_contact_and_conversation() {
    let app = app().await;
    let from = "393401234567";
    let ts = 1_700_000_000;
    let m = |id: &str, kind: &str, content: Value, offset: i64| {
        let mut v =
            json!({"from": from, "id": id, "timestamp": (ts + offset).to_string(), "type": kind});
        v[kind] = content;
        v
    };
    let messages = vec![
        text("wamid.T", from, "Ciao", ts),
        m(
            "wamid.I",
            "image",
            json!({"id": "media1", "mime_type": "image/jpeg", "sha256": "abc", "caption": "la scatola"}),
            1,
        ),
        m(
            "wamid.A",
            "audio",
            json!({"id": "media2", "mime_type": "audio/ogg", "voice": true}),
            2,
        ),
        m(
            "wamid.V",
            "video",
            json!({"id": "media3", "mime_type": "video/mp4"}),
            3,
        ),
        m(
            "wamid.D",
            "document",
            json!({"id": "media4", "mime_type": "application/pdf", "filename": "fattura.pdf"}),
            4,
        ),
        m(
            "wamid.ST",
            "sticker",
            json!({"id": "media5", "mime_type": "image/webp", "animated": false}),
            5,
        ),
        m(
            "wamid.L",
            "location",
            json!({"latitude": 45.46, "longitude": 9.19, "name": "Negozio Milano"}),
            6,
        ),
        m(
            "wamid.C",
            "contacts",
            json!([{"name": {"formatted_name": "Mario Rossi"}, "phones": [{"phone": "+39 333"}]}]),
            7,
        ),
        m(
            "wamid.IB",
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": "agent", "title": "Talk to an agent"}}),
            8,
        ),
        m(
            "wamid.IL",
            "interactive",
            json!({"type": "list_reply", "list_reply": {"id": "size-m", "title": "Size M", "description": "Medium"}}),
            9,
        ),
        m(
            "wamid.B",
            "button",
            json!({"payload": "STOP_PROMO", "text": "Stop promotions"}),
            10,
        ),
        m(
            "wamid.R",
            "reaction",
            json!({"message_id": "wamid.OUT1", "emoji": "👍"}),
            11,
        ),
        m(
            "wamid.O",
            "order",
            json!({"catalog_id": "cat1", "product_items": [{"product_retailer_id": "sku1", "quantity": 2, "item_price": 19.9, "currency": "EUR"}]}),
            12,
        ),
        json!({"from": from, "id": "wamid.U", "timestamp": (ts + 13).to_string(), "type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]}),
        m("wamid.NEW", "poll", json!({"question": "?"}), 14),
    ];
    let (status, report) = app
        .deliver(&envelope(
            NUMBER_ID,
            json!({"contacts": [profile(from, "Giulia")], "messages": messages}),
        ))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["messages"], 15);

    let stored = message::Entity::find().all(&app.domain.db).await.unwrap();
    assert_eq!(stored.len(), 15);
    assert_eq!(
        stored
            .iter()
            .map(|m| m.conversation_id)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        1,
        "one conversation"
    );
    let by_id = |id: &str| {
        stored
            .iter()
            .find(|m| m.wa_message_id.as_deref() == Some(id))
            .unwrap()
    };
    assert_eq!(by_id("wamid.T").body.as_deref(), Some("Ciao"));
    assert_eq!(by_id("wamid.I").message_type, MessageType::Image);
    assert_eq!(
        by_id("wamid.I").media.as_ref().unwrap()["caption"],
        "la scatola"
    );
    assert_eq!(
        by_id("wamid.D").media.as_ref().unwrap()["filename"],
        "fattura.pdf"
    );
    assert_eq!(by_id("wamid.L").message_type, MessageType::Location);
    assert_eq!(by_id("wamid.IB").body.as_deref(), Some("Talk to an agent"));
    assert_eq!(by_id("wamid.IL").message_type, MessageType::Interactive);
    assert_eq!(by_id("wamid.B").message_type, MessageType::Button);
    assert_eq!(by_id("wamid.R").message_type, MessageType::Reaction);
    assert_eq!(by_id("wamid.O").message_type, MessageType::Order);
    assert_eq!(by_id("wamid.U").message_type, MessageType::Unsupported);
    assert_eq!(
        by_id("wamid.NEW").message_type,
        MessageType::Unsupported,
        "unknown types are kept"
    );
    assert!(stored.iter().all(|m| m.direction == Direction::Inbound));

    let contact = contact::Entity::find()
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.wa_id.as_deref(), Some(from));
    assert_eq!(contact.profile_name.as_deref(), Some("Giulia"));

    // Visible over GraphQL, oldest first.
    let conv = conversation::Entity::find()
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    let r = app
        .gql(&app.admin_token, "query($id:ID!){ conversation(id:$id){ status contact { displayName } messages(first:3){ edges { node { type body } } } } }", json!({"id": conv.id.to_string()}))
        .await;
    let c = &r.data()["conversation"];
    assert_eq!(c["status"], "OPEN");
    assert_eq!(c["contact"]["displayName"], "Giulia");
    assert_eq!(
        c["messages"]["edges"][0]["node"],
        json!({"type": "TEXT", "body": "Ciao"})
    );
}

#[tokio::test]
async fn a_repeated_delivery_stores_the_message_once_even_fifty_at_a_time() {
    let app = app().await;
    let delivery = envelope(
        NUMBER_ID,
        json!({"contacts": [profile("33612345678", "Luc")], "messages": [text("wamid.DUP", "33612345678", "Bonjour", 1_700_000_100)]}),
    );
    for _ in 0..3 {
        assert_eq!(app.deliver(&delivery).await.0, 200);
    }
    assert_eq!(app.message_count().await, 1);

    let concurrent = envelope(
        NUMBER_ID,
        json!({"messages": [text("wamid.CONC", "33698765432", "Allô ?", 1_700_000_200)]}),
    );
    let results = futures_util::future::join_all((0..50).map(|_| app.deliver(&concurrent))).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let stored: i64 = results
        .iter()
        .map(|(_, r)| r["messages"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, 1, "exactly one delivery stored it");
    assert_eq!(app.message_count().await, 2);
    assert_eq!(
        conversation::Entity::find()
            .count(&app.domain.db)
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn malformed_deliveries_get_a_4xx_that_says_why_and_write_nothing() {
    let app = app().await;
    let sign = |b: &[u8]| Some(api::whatsapp::signature::sign(SECRET.as_bytes(), b));
    let cases: Vec<(&[u8], u16, &str)> = vec![
        (b"{not json", 400, "malformed JSON"),
        (br#"{"object":"page","entry":[]}"#, 400, "object"),
        (br#"{"object":"whatsapp_business_account","entry":{}}"#, 400, "entry"),
        (
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[{"from":"39","timestamp":"1700000000","type":"text","text":{"body":"x"}}]}}]}]}"#,
            400,
            "id",
        ),
    ];
    for (body, status, mentions) in cases {
        let (got, err) = app.post_webhook(body, sign(body)).await;
        assert_eq!(got, status, "{}", String::from_utf8_lossy(body));
        assert_eq!(err["error"]["code"], "BAD_USER_INPUT");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(mentions),
            "{err}"
        );
    }
    let huge = vec![b' '; 3 * 1024 * 1024 + 1];
    assert_eq!(app.post_webhook(&huge, sign(&huge)).await.0, 413);
    assert_eq!(app.message_count().await, 0);
}

#[tokio::test]
async fn a_delivery_for_an_unknown_number_is_acknowledged_and_ignored() {
    let app = app().await;
    let (status, _) = app
        .deliver(&envelope(
            "999999",
            json!({"messages": [text("wamid.X", "39", "hi", 1_700_000_000)]}),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.message_count().await, 0);
}

#[tokio::test]
async fn statuses_only_move_forward_and_failures_keep_the_error() {
    let app = app().await;
    app.deliver(&envelope(
        NUMBER_ID,
        json!({"messages": [text("wamid.IN", "393339998888", "ciao", 1_700_000_000)]}),
    ))
    .await;
    let inbound = message::Entity::find()
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    let outbound = |wa: &str| message::ActiveModel {
        conversation_id: Set(inbound.conversation_id),
        channel_id: Set(inbound.channel_id),
        direction: Set(Direction::Outbound),
        sender_kind: Set(entity::SenderKind::Agent),
        message_type: Set(MessageType::Text),
        body: Set(Some("Buongiorno".into())),
        wa_message_id: Set(Some(wa.into())),
        status: Set(DeliveryStatus::Sent),
        created_at: Set(app.now()),
        ..Default::default()
    };
    outbound("wamid.OUT1").insert(&app.domain.db).await.unwrap();
    outbound("wamid.OUT2").insert(&app.domain.db).await.unwrap();
    let status = |id: &str, s: &str, ts: i64| json!({"id": id, "status": s, "timestamp": ts.to_string(), "recipient_id": "393339998888"});
    let failed = json!({"id": "wamid.OUT2", "status": "failed", "timestamp": "1700000300", "recipient_id": "393339998888",
        "errors": [{"code": 131047, "title": "Re-engagement message", "error_data": {"details": "more than 24 hours"}}]});
    let statuses = json!([
        status("wamid.OUT1", "read", 1_700_000_200),
        status("wamid.OUT1", "delivered", 1_700_000_100),
        failed,
        status("wamid.GHOST", "read", 1_700_000_000)
    ]);
    let (code, report) = app
        .deliver(&envelope(NUMBER_ID, json!({"statuses": statuses})))
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        report["statuses"], 2,
        "read and failed apply; late delivered and unknown do not"
    );
    let db = app.domain.db.clone();
    let find = |id: &'static str| {
        let db = db.clone();
        async move {
            message::Entity::find()
                .filter(message::Column::WaMessageId.eq(id))
                .one(&db)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let one = find("wamid.OUT1").await;
    assert_eq!(one.status, DeliveryStatus::Read);
    assert!(one.read_at.is_some() && one.delivered_at.is_none());
    let two = find("wamid.OUT2").await;
    assert_eq!(two.status, DeliveryStatus::Failed);
    assert_eq!(two.error_code, Some(131047));
    assert_eq!(two.error_title.as_deref(), Some("Re-engagement message"));
}

#[tokio::test]
async fn stop_opts_out_and_start_opts_back_in() {
    let app = app().await;
    let from = "34611222333";
    app.deliver(&envelope(
        NUMBER_ID,
        json!({"messages": [text("wamid.1", from, "STOP", 1_700_000_000)]}),
    ))
    .await;
    let consent = || async {
        contact::Entity::find()
            .one(&app.domain.db)
            .await
            .unwrap()
            .unwrap()
            .consent
    };
    assert_eq!(consent().await, ConsentState::OptedOut);
    app.deliver(&envelope(
        NUMBER_ID,
        json!({"messages": [text("wamid.2", from, "I said stop sending promos", 1_700_000_010)]}),
    ))
    .await;
    assert_eq!(consent().await, ConsentState::OptedOut);
    app.deliver(&envelope(
        NUMBER_ID,
        json!({"messages": [text("wamid.3", from, "Start", 1_700_000_020)]}),
    ))
    .await;
    assert_eq!(consent().await, ConsentState::OptedIn);
}

#[tokio::test]
async fn a_sender_known_only_by_user_id_gets_a_contact_and_a_conversation() {
    let app = app().await;
    let msg = json!({"from_user_id": "US.13491208655302741918", "id": "wamid.BSU", "timestamp": "1700000000", "type": "text", "text": {"body": "hello"}});
    let (status, report) = app
        .deliver(&envelope(NUMBER_ID, json!({"contacts": [{"user_id": "US.13491208655302741918", "profile": {"name": "ana.b"}}], "messages": [msg]})))
        .await;
    assert_eq!((status, report["messages"].as_i64()), (200, Some(1)));
    let c = contact::Entity::find()
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.user_id.as_deref(), Some("US.13491208655302741918"));
    assert!(c.wa_id.is_none());
}

/// Deliveries ingested together are written together: each sender and each
/// open conversation is read and updated once for all of them, and must end
/// as if the messages had come one by one.
#[tokio::test]
async fn messages_of_several_senders_in_one_delivery_update_each_contact_and_conversation() {
    let app = app().await;
    let (known, new) = ("393330000001", "393330000002");
    app.deliver(&envelope(
        NUMBER_ID,
        json!({"contacts": [profile(known, "Old name")], "messages": [text("wamid.K0", known, "ciao", 1_700_000_000)]}),
    ))
    .await;
    let first = conversation::Entity::find()
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    // Waiting for the customer: their next message opens it again.
    let mut pending: conversation::ActiveModel = first.clone().into();
    pending.status = Set(entity::ConversationStatus::Pending);
    pending.update(&app.domain.db).await.unwrap();

    let (status, _) = app
        .deliver(&envelope(
            NUMBER_ID,
            json!({
                "contacts": [profile(known, "Giulia"), profile(new, "Marco")],
                // Out of order: stored by timestamp.
                "messages": [
                    text("wamid.K2", known, "ci sei?", 1_700_000_090),
                    text("wamid.N1", new, "buongiorno", 1_700_000_050),
                    text("wamid.K1", known, "il mio ordine", 1_700_000_060),
                    text("wamid.N2", new, "ordine 42", 1_700_000_070),
                ],
            }),
        ))
        .await;
    assert_eq!(status, 200);
    let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
    let contact_of = |wa: &'static str| {
        let db = app.domain.db.clone();
        async move {
            contact::Entity::find()
                .filter(contact::Column::WaId.eq(wa))
                .one(&db)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let k = contact_of(known).await;
    assert_eq!(k.profile_name.as_deref(), Some("Giulia"));
    assert_eq!(k.last_inbound_at, Some(at(1_700_000_090)));
    let n = contact_of(new).await;
    assert_eq!(n.last_inbound_at, Some(at(1_700_000_070)));

    let conversations = conversation::Entity::find()
        .all(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(conversations.len(), 2, "one per customer");
    let of = |contact_id: i64| {
        conversations
            .iter()
            .find(|c| c.contact_id == contact_id)
            .unwrap()
    };
    let reopened = of(k.id);
    assert_eq!(reopened.id, first.id);
    assert_eq!(reopened.status, entity::ConversationStatus::Open);
    assert_eq!(reopened.last_message_at, Some(at(1_700_000_090)));
    let opened = of(n.id);
    assert_eq!(opened.last_message_at, Some(at(1_700_000_070)));
    assert_eq!(opened.last_inbound_at, Some(at(1_700_000_070)));

    let bodies = |conversation_id: i64| {
        let db = app.domain.db.clone();
        async move {
            message::Entity::find()
                .filter(message::Column::ConversationId.eq(conversation_id))
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.id, m.body.unwrap_or_default()))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_values()
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(bodies(first.id).await, ["ciao", "il mio ordine", "ci sei?"]);
    assert_eq!(bodies(opened.id).await, ["buongiorno", "ordine 42"]);
}
