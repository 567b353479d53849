//! Subscriptions over WebSocket with a real client, both sub-protocols:
//! authentication (at connection_init and for the socket's whole life), every
//! subscription after the mutation that feeds it, per-role filtering, the
//! per-event row cache, and slow subscribers.
//!
//! Events no mutation produces yet (SLA alerts come from the SLA worker) are
//! published through the server's own domain (`app.domain.emit`), which goes
//! through the same bus as a mutation's.

use std::time::Duration;

use chrono::Duration as Minutes;
use domain::events::{EventPayload, QueueChange, Scope};
use entity::{ConversationStatus, DeliveryStatus, Direction, MessageType, Priority, SenderKind};
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::{PASSWORD, TestApp, spawn_app};

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub const TRANSPORT: &str = "graphql-transport-ws";
pub const LEGACY: &str = "graphql-ws";

pub async fn connect(app: &TestApp, protocol: &str) -> Ws {
    connect_with_header(app, protocol, None).await
}

async fn connect_with_header(app: &TestApp, protocol: &str, bearer: Option<&str>) -> Ws {
    let mut req = format!("ws://127.0.0.1:{}/graphql", app.port)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    if let Some(token) = bearer {
        req.headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (ws, resp) = connect_async(req).await.expect("websocket handshake");
    assert_eq!(resp.headers()["sec-websocket-protocol"], protocol);
    ws
}

pub async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

fn is_keepalive(v: &Value) -> bool {
    matches!(v["type"].as_str(), Some("ka" | "ping" | "pong"))
}

/// The next text message, skipping keep-alives, within 5 s.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("stream open")
            .expect("frame");
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if !is_keepalive(&v) {
                    return v;
                }
            }
            Message::Close(close) => panic!("closed while waiting for a message: {close:?}"),
            _ => {}
        }
    }
}

async fn init(ws: &mut Ws, token: &str) -> Value {
    send(
        ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    next_json(ws).await
}

/// A connected, acknowledged socket.
pub async fn session(app: &TestApp, protocol: &str, token: &str) -> Ws {
    let mut ws = connect(app, protocol).await;
    let ack = init(&mut ws, token).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

/// Starts a subscription in the socket's protocol, and gives the server a
/// moment to register it (subscriptions have no acknowledgement).
pub async fn subscribe(ws: &mut Ws, protocol: &str, id: &str, query: &str, variables: Value) {
    let kind = if protocol == LEGACY {
        "start"
    } else {
        "subscribe"
    };
    send(
        ws,
        json!({"id": id, "type": kind, "payload": {"query": query, "variables": variables}}),
    )
    .await;
    settle().await;
}

/// The next result's `data`, failing on errors.
pub async fn next_data(ws: &mut Ws) -> Value {
    let v = next_json(ws).await;
    assert!(
        matches!(v["type"].as_str(), Some("next" | "data")),
        "expected a result, got {v}"
    );
    assert!(v["payload"].get("errors").is_none(), "errors: {v}");
    v["payload"]["data"].clone()
}

/// Nothing but keep-alives for `within`.
pub async fn quiet(ws: &mut Ws, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert!(is_keepalive(&v), "expected nothing, got {v}");
            }
            Ok(Some(Ok(Message::Close(c)))) => panic!("closed: {c:?}"),
            Ok(_) => {}
        }
    }
}

/// The text messages received before the server's Close frame, and that frame.
async fn until_close(ws: &mut Ws) -> (Vec<Value>, CloseFrame) {
    let mut texts = vec![];
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a close within 5 s")
            .expect("a close frame before the end")
            .expect("frame");
        match frame {
            Message::Close(Some(close)) => return (texts, close),
            Message::Close(None) => panic!("a close without a code"),
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if !is_keepalive(&v) {
                    texts.push(v);
                }
            }
            _ => {}
        }
    }
}

pub const LOCKS: &str = "subscription { lockChanged { conversationId holder { name } } }";
pub const OPEN: &str = "mutation($id:ID!){ openConversation(id:$id){ id } }";

/// Subscriptions have no acknowledgement: give the server a moment to register.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn code(close: &CloseFrame) -> u16 {
    u16::from(close.code)
}

/// A staff member in the given departments, logged in.
async fn staff_in(app: &TestApp, name: &str, role: &str, departments: &[i64]) -> (i64, String) {
    let email = format!("{}@test.example", name.to_lowercase());
    let deps: Vec<String> = departments.iter().map(i64::to_string).collect();
    let r = app
        .gql(
            &app.admin_token,
            "mutation($i: StaffCreateInput!){ createStaff(input:$i){ id } }",
            json!({"i": {"email": email, "name": name, "password": PASSWORD, "role": role, "departmentIds": deps}}),
        )
        .await;
    let id = r.data()["createStaff"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (id, app.login(&email, PASSWORD).await)
}

async fn department(app: &TestApp, name: &str) -> i64 {
    let r = app
        .gql(
            &app.admin_token,
            "mutation($n:String!){ createDepartment(input:{name:$n}){ id } }",
            json!({"n": name}),
        )
        .await;
    r.data()["createDepartment"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn scope(conversation_id: i64, assignee_id: Option<i64>) -> Scope {
    Scope {
        conversation_id,
        assignee_id,
        department_id: None,
    }
}

async fn seed_message(app: &TestApp, channel: i64, conversation: i64) -> i64 {
    let now = app.now();
    entity::message::ActiveModel {
        conversation_id: Set(conversation),
        channel_id: Set(channel),
        direction: Set(Direction::Inbound),
        sender_kind: Set(SenderKind::Customer),
        message_type: Set(MessageType::Text),
        body: Set(Some("ciao".into())),
        status: Set(DeliveryStatus::Received),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&app.domain.db)
    .await
    .expect("message")
    .id
}

// ---------------------------------------------------------------- protocols

#[tokio::test]
async fn graphql_transport_ws_delivers_lock_changes_and_closes_cleanly() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await.to_string();
    let mut ws = session(&app, TRANSPORT, &app.admin_token).await;
    subscribe(&mut ws, TRANSPORT, "1", LOCKS, json!({})).await;
    app.gql(&app.admin_token, OPEN, json!({"id": id}))
        .await
        .data();
    let event = next_json(&mut ws).await;
    assert_eq!(event["type"], "next");
    assert_eq!(
        event["payload"]["data"]["lockChanged"]["conversationId"],
        id
    );
    assert_eq!(
        event["payload"]["data"]["lockChanged"]["holder"]["name"],
        "Administrator"
    );

    ws.close(None).await.unwrap();
    // The server answers the Close frame: the stream ends without an error.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut errors = 0;
        while let Some(frame) = ws.next().await {
            errors += frame.is_err() as u32;
        }
        errors
    })
    .await
    .expect("server closes");
    assert_eq!(rest, 0);
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_works_too() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await.to_string();
    let mut ws = session(&app, LEGACY, &app.admin_token).await;
    subscribe(&mut ws, LEGACY, "7", LOCKS, json!({})).await;
    app.gql(&app.admin_token, OPEN, json!({"id": id}))
        .await
        .data();
    let event = next_json(&mut ws).await;
    assert_eq!(event["type"], "data");
    assert_eq!(event["id"], "7");
    assert_eq!(
        event["payload"]["data"]["lockChanged"]["conversationId"],
        id
    );
}

// ----------------------------------------------------------- authentication

#[tokio::test]
async fn a_connection_without_a_valid_token_is_closed_as_forbidden() {
    let app = spawn_app().await;
    let mut ws = connect(&app, TRANSPORT).await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}),
    )
    .await;
    let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match frame {
        Message::Close(Some(close)) => assert_eq!(close.code, CloseCode::from(4403)),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn both_protocols_refuse_a_missing_an_invalid_and_an_expired_token() {
    let app = spawn_app().await;
    let (_, agent) = app.staff("Nina", "AGENT").await;
    let refused = async |payload: Value| {
        let mut outcomes = vec![];
        for protocol in [TRANSPORT, LEGACY] {
            let mut ws = connect(&app, protocol).await;
            send(
                &mut ws,
                json!({"type": "connection_init", "payload": payload.clone()}),
            )
            .await;
            let (texts, close) = until_close(&mut ws).await;
            if protocol == LEGACY {
                // The legacy protocol says why before closing.
                assert_eq!(texts.len(), 1, "{texts:?}");
                assert_eq!(texts[0]["type"], "connection_error");
            } else {
                assert!(texts.is_empty(), "{texts:?}");
            }
            outcomes.push(code(&close));
        }
        outcomes
    };
    assert_eq!(refused(json!({})).await, [4403, 4403], "missing");
    assert_eq!(
        refused(json!({"Authorization": "Bearer not-a-token"})).await,
        [4403, 4403],
        "invalid"
    );
    app.clock.advance(Minutes::minutes(16));
    assert_eq!(
        refused(json!({"Authorization": format!("Bearer {agent}")})).await,
        [4403, 4403],
        "expired"
    );
}

#[tokio::test]
async fn the_token_may_come_in_the_authorization_header() {
    let app = spawn_app().await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut ws = connect_with_header(&app, protocol, Some(&app.admin_token)).await;
        send(&mut ws, json!({"type": "connection_init", "payload": {}})).await;
        assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    }
}

#[tokio::test]
async fn a_live_socket_is_closed_when_its_token_expires() {
    let app = spawn_app().await;
    app.staff("Nina", "AGENT").await;
    for protocol in [TRANSPORT, LEGACY] {
        // A fresh token: 15 minutes from the domain clock's now.
        let token = app.login("nina@test.example", PASSWORD).await;
        let mut ws = session(&app, protocol, &token).await;
        subscribe(&mut ws, protocol, "1", LOCKS, json!({})).await;
        // Real time passes, domain time does not: the socket stays.
        quiet(&mut ws, Duration::from_millis(1500)).await;
        app.clock.advance(Minutes::minutes(16));
        // No event: the periodic check (1 s, domain clock) ends it.
        let (texts, close) = until_close(&mut ws).await;
        assert!(texts.is_empty(), "{protocol}: {texts:?}");
        assert_eq!(code(&close), 4401, "{protocol}");
        assert_eq!(close.reason.as_str(), "token expired");
    }
}

#[tokio::test]
async fn an_event_after_the_token_expired_is_not_delivered() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    for protocol in [TRANSPORT, LEGACY] {
        let id = app.seed_conversation(channel, None).await.to_string();
        let token = app
            .login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
            .await;
        let mut ws = session(&app, protocol, &token).await;
        subscribe(&mut ws, protocol, "1", LOCKS, json!({})).await;
        app.clock.advance(Minutes::minutes(16));
        let fresh = app
            .login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
            .await;
        app.gql(&fresh, OPEN, json!({"id": id})).await.data();
        let (texts, close) = until_close(&mut ws).await;
        assert!(
            texts.is_empty(),
            "{protocol}: delivered after expiry: {texts:?}"
        );
        assert_eq!(code(&close), 4401, "{protocol}");
    }
}

#[tokio::test]
async fn a_socket_opened_with_an_api_token_ends_when_the_token_does() {
    let app = spawn_app().await;
    let expires = app.now() + Minutes::hours(1);
    let r = app
        .gql(
            &app.admin_token,
            "mutation($e:DateTime){ createApiToken(name:\"bi\", expiresAt:$e){ secret } }",
            json!({"e": expires.to_rfc3339()}),
        )
        .await;
    let secret = r.data()["createApiToken"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = session(&app, TRANSPORT, &secret).await;
    app.clock.advance(Minutes::hours(2));
    let (_, close) = until_close(&mut ws).await;
    assert_eq!(code(&close), 4401);
}

// ------------------------------------------------------ each subscription

#[tokio::test]
async fn notes_tags_and_lock_releases_reach_their_subscriptions() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await.to_string();
    let mut notes = session(&app, TRANSPORT, &admin).await;
    subscribe(
        &mut notes,
        TRANSPORT,
        "n",
        "subscription($c:ID!){ noteAdded(conversationId:$c){ body author { name } } }",
        json!({"c": id}),
    )
    .await;
    let mut updates = session(&app, LEGACY, &admin).await;
    subscribe(
        &mut updates,
        LEGACY,
        "u",
        "subscription($c:ID!){ conversationUpdated(filter:{conversationId:$c, changes:[\"tags\"]}){ change at conversation { id tags { name } } } }",
        json!({"c": id}),
    )
    .await;
    let mut locks = session(&app, TRANSPORT, &admin).await;
    subscribe(
        &mut locks,
        TRANSPORT,
        "l",
        "subscription($c:ID){ lockChanged(conversationId:$c){ conversationId holder { name } expiresAt } }",
        json!({"c": id}),
    )
    .await;

    app.gql(&admin, OPEN, json!({"id": id})).await.data();
    let taken = next_data(&mut locks).await;
    assert_eq!(taken["lockChanged"]["holder"]["name"], "Administrator");

    app.gql(
        &admin,
        "mutation($c:ID!){ addNote(conversationId:$c, body:\"VIP, be quick\"){ id } }",
        json!({"c": id}),
    )
    .await
    .data();
    let note = next_data(&mut notes).await;
    assert_eq!(note["noteAdded"]["body"], "VIP, be quick");
    assert_eq!(note["noteAdded"]["author"]["name"], "Administrator");

    let tag = app
        .gql(
            &admin,
            "mutation{ createTag(name:\"urgent\"){ id } }",
            json!({}),
        )
        .await;
    let tag = tag.data()["createTag"]["id"].as_str().unwrap().to_string();
    app.gql(
        &admin,
        "mutation($c:ID!,$t:ID!){ setConversationTags(conversationId:$c, add:[$t]){ id } }",
        json!({"c": id, "t": tag}),
    )
    .await
    .data();
    let update = next_data(&mut updates).await;
    assert_eq!(update["conversationUpdated"]["change"], "tags");
    assert_eq!(
        update["conversationUpdated"]["conversation"]["tags"][0]["name"],
        "urgent"
    );

    app.gql(
        &admin,
        "mutation($id:ID!){ releaseLock(id:$id){ id } }",
        json!({"id": id}),
    )
    .await
    .data();
    let released = next_data(&mut locks).await;
    assert!(released["lockChanged"]["holder"].is_null(), "{released}");
    assert!(released["lockChanged"]["expiresAt"].is_null());
}

#[tokio::test]
async fn an_inbound_whatsapp_message_reaches_message_queue_and_conversation_subscribers() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let number = "106540352242999";
    app.gql(
        &admin,
        "mutation($n:String!){ createChannel(input:{name:\"Shop\", phoneNumberId:$n}){ id } }",
        json!({"n": number}),
    )
    .await
    .data();
    let mut messages = session(&app, TRANSPORT, &admin).await;
    subscribe(
        &mut messages,
        TRANSPORT,
        "m",
        "subscription{ messageAdded{ direction status body } }",
        json!({}),
    )
    .await;
    let mut queue = session(&app, TRANSPORT, &admin).await;
    subscribe(
        &mut queue,
        TRANSPORT,
        "q",
        "subscription{ queueChanged{ change queueLength conversationId } }",
        json!({}),
    )
    .await;
    let mut created = session(&app, TRANSPORT, &admin).await;
    subscribe(
        &mut created,
        TRANSPORT,
        "c",
        "subscription{ conversationUpdated(filter:{changes:[\"created\"]}){ change conversation { id status } } }",
        json!({}),
    )
    .await;

    let delivery = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": number},
        "contacts": [{"profile": {"name": "Giulia"}, "wa_id": "393331112222"}],
        "messages": [{"from": "393331112222", "id": "wamid.SUB1", "timestamp": app.now().timestamp().to_string(), "type": "text", "text": {"body": "Buongiorno"}}],
    }}]}]});
    let resp = app
        .client
        .post(format!("{}/webhooks/whatsapp", app.address))
        .json(&delivery)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    let message = next_data(&mut messages).await;
    assert_eq!(message["messageAdded"]["direction"], "INBOUND");
    assert_eq!(message["messageAdded"]["body"], "Buongiorno");
    let conversation = next_data(&mut created).await;
    assert_eq!(conversation["conversationUpdated"]["change"], "created");
    let id = conversation["conversationUpdated"]["conversation"]["id"].clone();
    let entered = next_data(&mut queue).await;
    assert_eq!(entered["queueChanged"]["change"], "ENTERED");
    assert_eq!(entered["queueChanged"]["conversationId"], id);
    assert!(entered["queueChanged"]["queueLength"].as_i64().unwrap() >= 1);
}

#[tokio::test]
async fn delivery_status_changes_of_outbound_messages_reach_message_added() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    let number = "106540352243000";
    let channel = app
        .gql(
            &admin,
            "mutation($n:String!){ createChannel(input:{name:\"Shop\", phoneNumberId:$n}){ id } }",
            json!({"n": number}),
        )
        .await;
    let channel: i64 = channel.data()["createChannel"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let conversation = app.seed_conversation(channel, None).await;
    let now = app.now();
    entity::message::ActiveModel {
        conversation_id: Set(conversation),
        channel_id: Set(channel),
        direction: Set(Direction::Outbound),
        sender_kind: Set(SenderKind::Agent),
        message_type: Set(MessageType::Text),
        body: Set(Some("Eccomi".into())),
        wa_message_id: Set(Some("wamid.OUT1".into())),
        status: Set(DeliveryStatus::Sent),
        sent_at: Set(Some(now)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&app.domain.db)
    .await
    .unwrap();
    let mut ws = session(&app, LEGACY, &admin).await;
    subscribe(
        &mut ws,
        LEGACY,
        "m",
        "subscription($c:ID){ messageAdded(conversationId:$c){ direction status } }",
        json!({"c": conversation.to_string()}),
    )
    .await;
    let delivery = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": number},
        "statuses": [{"id": "wamid.OUT1", "status": "delivered", "timestamp": (now.timestamp() + 1).to_string(), "recipient_id": "393331112222"}],
    }}]}]});
    let resp = app
        .client
        .post(format!("{}/webhooks/whatsapp", app.address))
        .json(&delivery)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let status = next_data(&mut ws).await;
    assert_eq!(status["messageAdded"]["direction"], "OUTBOUND");
    assert_eq!(status["messageAdded"]["status"], "DELIVERED");
}

#[tokio::test]
async fn my_assignments_follows_assignments_and_transfers_of_the_caller() {
    let app = spawn_app().await;
    let (nina_id, nina) = app.staff("Nina", "AGENT").await;
    let (omar_id, _) = app.staff("Omar", "AGENT").await;
    let channel = app.seed_channel().await;
    let first = app.seed_conversation(channel, None).await.to_string();
    let for_omar = app.seed_conversation(channel, None).await.to_string();
    let mut ws = session(&app, TRANSPORT, &nina).await;
    subscribe(
        &mut ws,
        TRANSPORT,
        "a",
        "subscription{ myAssignments{ kind change conversationId conversation { id assignee { name } } } }",
        json!({}),
    )
    .await;
    let assign = "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }";
    app.gql(
        &app.admin_token,
        assign,
        json!({"c": for_omar, "a": omar_id.to_string()}),
    )
    .await
    .data();
    app.gql(
        &app.admin_token,
        assign,
        json!({"c": first, "a": nina_id.to_string()}),
    )
    .await
    .data();
    let mine = next_data(&mut ws).await;
    assert_eq!(mine["myAssignments"]["kind"], "ASSIGNED", "{mine}");
    assert_eq!(mine["myAssignments"]["conversationId"], first);
    assert_eq!(
        mine["myAssignments"]["conversation"]["assignee"]["name"],
        "Nina"
    );

    app.gql(
        &app.admin_token,
        "mutation($c:ID!,$a:ID){ transfer(conversationId:$c, toAgentId:$a){ id } }",
        json!({"c": first, "a": omar_id.to_string()}),
    )
    .await
    .data();
    let gone = next_data(&mut ws).await;
    assert_eq!(gone["myAssignments"]["kind"], "UNASSIGNED", "{gone}");
    assert_eq!(gone["myAssignments"]["change"], "transferred");
    // No longer hers: she does not see where it went.
    assert!(gone["myAssignments"]["conversation"].is_null());
}

#[tokio::test]
async fn sla_alerts_reach_the_assignee_and_managers() {
    let app = spawn_app().await;
    let (nina_id, nina) = app.staff("Nina", "AGENT").await;
    let channel = app.seed_channel().await;
    let other = app.seed_conversation(channel, None).await;
    let mine = app.seed_conversation(channel, Some(nina_id)).await;
    let query = "subscription{ slaAlert{ conversationId kind level conversation { id } } }";
    let mut agent = session(&app, TRANSPORT, &nina).await;
    subscribe(&mut agent, TRANSPORT, "s", query, json!({})).await;
    let mut admin = session(&app, LEGACY, &app.admin_token).await;
    subscribe(&mut admin, LEGACY, "s", query, json!({})).await;
    for (id, assignee) in [(other, None), (mine, Some(nina_id))] {
        app.domain.emit(EventPayload::SlaAlert {
            scope: scope(id, assignee),
            kind: "first_response".into(),
            level: "warning".into(),
            cycle: 0,
        });
    }
    let seen = next_data(&mut agent).await;
    assert_eq!(seen["slaAlert"]["conversationId"], mine.to_string());
    assert_eq!(seen["slaAlert"]["level"], "warning");
    assert_eq!(seen["slaAlert"]["conversation"]["id"], mine.to_string());
    let first = next_data(&mut admin).await;
    let second = next_data(&mut admin).await;
    assert_eq!(first["slaAlert"]["conversationId"], other.to_string());
    assert_eq!(second["slaAlert"]["conversationId"], mine.to_string());
}

#[tokio::test]
async fn an_open_socket_counts_as_presence_and_colleagues_see_it() {
    let app = spawn_app().await;
    let sales = department(&app, "Sales").await;
    let (nina_id, _) = staff_in(&app, "Nina", "AGENT", &[sales]).await;
    // Whatever the logins did, Nina is offline once her activity is old.
    app.clock.advance(Minutes::minutes(6));
    app.domain.expire_presence().await.unwrap();
    let mut watcher = session(&app, TRANSPORT, &app.admin_token).await;
    subscribe(
        &mut watcher,
        TRANSPORT,
        "p",
        "subscription{ agentPresenceChanged{ agentId presence departmentIds agent { name } } }",
        json!({}),
    )
    .await;
    let nina = app.login("nina@test.example", PASSWORD).await;
    let _socket = session(&app, LEGACY, &nina).await;
    // The admin's own socket counts too: wait for Nina's event.
    let nina_id = nina_id.to_string();
    let event = loop {
        let data = next_data(&mut watcher).await;
        if data["agentPresenceChanged"]["agentId"] == nina_id.as_str() {
            break data;
        }
    };
    assert_eq!(event["agentPresenceChanged"]["presence"], "ONLINE");
    assert_eq!(event["agentPresenceChanged"]["agent"]["name"], "Nina");
    assert_eq!(
        event["agentPresenceChanged"]["departmentIds"],
        json!([sales.to_string()])
    );
}

// --------------------------------------------------------- per-role filtering

#[tokio::test]
async fn an_agent_only_hears_about_its_own_conversations() {
    let app = spawn_app().await;
    let (agent_id, agent) = app.staff("Nina", "AGENT").await;
    let channel = app.seed_channel().await;
    let others = app.seed_conversation(channel, None).await.to_string();
    let mine = app
        .seed_conversation(channel, Some(agent_id))
        .await
        .to_string();
    let mut ws = session(&app, TRANSPORT, &agent).await;
    subscribe(&mut ws, TRANSPORT, "1", LOCKS, json!({})).await;
    app.gql(&app.admin_token, OPEN, json!({"id": others}))
        .await
        .data();
    app.gql(&app.admin_token, OPEN, json!({"id": mine}))
        .await
        .data();
    let event = next_json(&mut ws).await;
    assert_eq!(
        event["payload"]["data"]["lockChanged"]["conversationId"],
        mine
    );
}

#[tokio::test]
async fn every_conversation_stream_shows_an_agent_only_its_conversations() {
    let app = spawn_app().await;
    let (nina_id, nina) = app.staff("Nina", "AGENT").await;
    let (_, editor) = app.staff("Edo", "EDITOR").await;
    let channel = app.seed_channel().await;
    let other = app.seed_conversation(channel, None).await;
    let mine = app.seed_conversation(channel, Some(nina_id)).await;
    let other_msg = seed_message(&app, channel, other).await;
    let my_msg = seed_message(&app, channel, mine).await;
    // (query, the result's field, what identifies the event: other's, mine)
    let streams = [
        (
            "subscription{ conversationUpdated{ conversation { id } } }",
            "conversationUpdated",
            (other, mine),
        ),
        (
            "subscription{ messageAdded{ id } }",
            "messageAdded",
            (other_msg, my_msg),
        ),
        (
            "subscription{ slaAlert{ conversationId } }",
            "slaAlert",
            (other, mine),
        ),
    ];
    let mut agent_sockets = vec![];
    let mut editor_sockets = vec![];
    for (query, _, _) in &streams {
        let mut ws = session(&app, TRANSPORT, &nina).await;
        subscribe(&mut ws, TRANSPORT, "1", query, json!({})).await;
        agent_sockets.push(ws);
        let mut ws = session(&app, TRANSPORT, &editor).await;
        subscribe(&mut ws, TRANSPORT, "1", query, json!({})).await;
        editor_sockets.push(ws);
    }
    for (conversation, message, assignee) in
        [(other, other_msg, None), (mine, my_msg, Some(nina_id))]
    {
        let scope = scope(conversation, assignee);
        app.domain.emit(EventPayload::ConversationUpdated {
            scope,
            status: ConversationStatus::Open,
            priority: Priority::Normal,
            change: "status".into(),
        });
        app.domain.emit(EventPayload::MessageAdded {
            scope,
            message_id: message,
            direction: Direction::Inbound,
            status: DeliveryStatus::Received,
        });
        app.domain.emit(EventPayload::SlaAlert {
            scope,
            kind: "resolution".into(),
            level: "breach".into(),
            cycle: 0,
        });
    }
    let key = |field: &str, data: &Value| -> i64 {
        let v = &data[field];
        v["conversation"]["id"]
            .as_str()
            .or(v["conversationId"].as_str())
            .or(v["id"].as_str())
            .unwrap()
            .parse()
            .unwrap()
    };
    for ((_, field, (_, mine)), ws) in streams.iter().zip(agent_sockets.iter_mut()) {
        let data = next_data(ws).await;
        assert_eq!(key(field, &data), *mine, "{field}");
    }
    for ((_, field, (other, mine)), ws) in streams.iter().zip(editor_sockets.iter_mut()) {
        let first = next_data(ws).await;
        let second = next_data(ws).await;
        assert_eq!(key(field, &first), *other, "{field}");
        assert_eq!(key(field, &second), *mine, "{field}");
    }
}

#[tokio::test]
async fn an_agent_hears_its_departments_queues_and_colleagues_only() {
    let app = spawn_app().await;
    let sales = department(&app, "Sales").await;
    let support = department(&app, "Support").await;
    let (_, nina) = staff_in(&app, "Nina", "AGENT", &[sales]).await;
    let (_, colleague) = staff_in(&app, "Carla", "AGENT", &[sales]).await;
    let (_, stranger) = staff_in(&app, "Ugo", "AGENT", &[support]).await;
    let mut queue = session(&app, TRANSPORT, &nina).await;
    subscribe(
        &mut queue,
        TRANSPORT,
        "q",
        "subscription{ queueChanged{ departmentId conversationId } }",
        json!({}),
    )
    .await;
    let mut presence = session(&app, TRANSPORT, &nina).await;
    subscribe(
        &mut presence,
        TRANSPORT,
        "p",
        "subscription{ agentPresenceChanged{ agent { name } presence } }",
        json!({}),
    )
    .await;
    for (department, conversation) in [(support, 1), (sales, 2)] {
        app.domain.emit(EventPayload::QueueChanged {
            department_id: Some(department),
            conversation_id: conversation,
            change: QueueChange::Entered,
            queue_length: 1,
        });
    }
    let seen = next_data(&mut queue).await;
    assert_eq!(seen["queueChanged"]["departmentId"], sales.to_string());
    assert_eq!(seen["queueChanged"]["conversationId"], "2");

    let away = "mutation{ heartbeat(status: AWAY){ id } }";
    app.gql(&stranger, away, json!({})).await.data();
    app.gql(&colleague, away, json!({})).await.data();
    // Nina's own sockets count as presence too, and Carla's request makes
    // her online before away: read up to Carla going away; never Ugo.
    loop {
        let data = next_data(&mut presence).await;
        let event = &data["agentPresenceChanged"];
        assert_ne!(event["agent"]["name"], "Ugo", "another department's agent");
        if event["agent"]["name"] == "Carla" && event["presence"] == "AWAY" {
            break;
        }
    }
}

#[tokio::test]
async fn an_analyst_and_an_api_token_get_no_conversation_stream() {
    let app = spawn_app().await;
    let (_, analyst) = app.staff("Alba", "ANALYST").await;
    let r = app
        .gql(
            &app.admin_token,
            "mutation{ createApiToken(name:\"bi\"){ secret } }",
            json!({}),
        )
        .await;
    let api_token = r.data()["createApiToken"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let streams = [
        "subscription { conversationUpdated { change } }",
        "subscription { messageAdded { id } }",
        "subscription { noteAdded(conversationId: \"1\") { id } }",
        LOCKS,
        "subscription { queueChanged { queueLength } }",
        "subscription { slaAlert { level } }",
        "subscription { myAssignments { kind } }",
        "subscription { agentPresenceChanged { presence } }",
    ];
    for token in [&analyst, &api_token] {
        let mut ws = session(&app, TRANSPORT, token).await;
        for (i, query) in streams.iter().enumerate() {
            send(
                &mut ws,
                json!({"id": i.to_string(), "type": "subscribe", "payload": {"query": query}}),
            )
            .await;
            let reply = next_json(&mut ws).await;
            assert_eq!(reply["type"], "next", "{query}: {reply}");
            assert_eq!(
                reply["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
                "{query}: {reply}"
            );
            assert!(reply["payload"]["data"].is_null());
            assert_eq!(next_json(&mut ws).await["type"], "complete");
        }
    }
}

// ----------------------------------------------------------------- cost

/// N subscribers of one event cost one read of its row, not N.
#[tokio::test]
async fn subscribers_of_one_event_share_one_read_of_its_row() {
    const SUBSCRIBERS: usize = 6;
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await;
    let mut sockets = vec![];
    for _ in 0..SUBSCRIBERS {
        let mut ws = session(&app, TRANSPORT, &app.admin_token).await;
        send(
            &mut ws,
            json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription{ conversationUpdated{ change conversation { id status priority } } }"}}),
        )
        .await;
        sockets.push(ws);
    }
    settle().await;
    // The fewest over three events: a background worker's query must not
    // make the test flaky, while one read per subscriber would still show.
    let mut fewest = u64::MAX;
    for _ in 0..3 {
        let before = app.queries.get();
        app.domain.emit(EventPayload::ConversationUpdated {
            scope: scope(id, None),
            status: ConversationStatus::Open,
            priority: Priority::Normal,
            change: "status".into(),
        });
        for ws in &mut sockets {
            let data = next_data(ws).await;
            assert_eq!(
                data["conversationUpdated"]["conversation"]["id"],
                id.to_string()
            );
        }
        fewest = fewest.min(app.queries.get() - before);
    }
    println!("{SUBSCRIBERS} subscribers, one event: {fewest} queries");
    assert_eq!(fewest, 1, "one read per event, whatever the subscribers");
    let m = app.events.metrics().snapshot();
    assert!(m.delivered >= 3 * SUBSCRIBERS as u64, "{m:?}");
}

// ------------------------------------------------------------ slow clients

#[tokio::test]
async fn a_subscriber_that_falls_far_behind_is_told_it_lagged() {
    let app = spawn_app().await;
    let mut ws = session(&app, TRANSPORT, &app.admin_token).await;
    subscribe(
        &mut ws,
        TRANSPORT,
        "q",
        "subscription{ queueChanged{ conversationId } }",
        json!({}),
    )
    .await;
    // Not reading while far more events than the buffer holds go out.
    let burst = 4 * api::events::SUBSCRIBER_BUFFER as i64;
    for n in 0..burst {
        app.domain.emit(EventPayload::QueueChanged {
            department_id: None,
            conversation_id: n,
            change: QueueChange::Entered,
            queue_length: n,
        });
    }
    let mut lagged = false;
    for _ in 0..burst {
        let v = next_json(&mut ws).await;
        if v["payload"]["errors"][0]["extensions"]["code"] == "LAGGED" {
            lagged = true;
            break;
        }
    }
    assert!(lagged, "a LAGGED error before the end of the burst");
    assert!(app.events.metrics().snapshot().lagged > 0);
    // The subscription goes on after telling.
    app.domain.emit(EventPayload::QueueChanged {
        department_id: None,
        conversation_id: -1,
        change: QueueChange::Left,
        queue_length: 0,
    });
    loop {
        let v = next_json(&mut ws).await;
        if v["payload"]["data"]["queueChanged"]["conversationId"] == "-1" {
            break;
        }
    }
}
