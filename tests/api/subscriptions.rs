//! Subscriptions over WebSocket with a real client, both sub-protocols.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::{TestApp, spawn_app};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, protocol: &str) -> Ws {
    let mut req = format!("ws://127.0.0.1:{}/graphql", app.port)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (ws, resp) = connect_async(req).await.expect("websocket handshake");
    assert_eq!(resp.headers()["sec-websocket-protocol"], protocol);
    ws
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

/// The next text message, skipping keep-alives, within 5 s.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("stream open")
            .expect("frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if !matches!(v["type"].as_str(), Some("ka" | "ping" | "pong")) {
                return v;
            }
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

const LOCKS: &str = "subscription { lockChanged { conversationId holder { name } } }";
const OPEN: &str = "mutation($id:ID!){ openConversation(id:$id){ id } }";

/// Subscriptions have no acknowledgement: give the server a moment to register.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn graphql_transport_ws_delivers_lock_changes_and_closes_cleanly() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await.to_string();
    let mut ws = connect(&app, "graphql-transport-ws").await;
    assert_eq!(
        init(&mut ws, &app.admin_token).await["type"],
        "connection_ack"
    );
    send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": LOCKS}}),
    )
    .await;
    settle().await;
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
    let mut ws = connect(&app, "graphql-ws").await;
    assert_eq!(
        init(&mut ws, &app.admin_token).await["type"],
        "connection_ack"
    );
    send(
        &mut ws,
        json!({"id": "7", "type": "start", "payload": {"query": LOCKS}}),
    )
    .await;
    settle().await;
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

#[tokio::test]
async fn a_connection_without_a_valid_token_is_closed_as_forbidden() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "graphql-transport-ws").await;
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
async fn an_agent_only_hears_about_its_own_conversations() {
    let app = spawn_app().await;
    let (agent_id, agent) = app.staff("Nina", "AGENT").await;
    let channel = app.seed_channel().await;
    let others = app.seed_conversation(channel, None).await.to_string();
    let mine = app
        .seed_conversation(channel, Some(agent_id))
        .await
        .to_string();
    let mut ws = connect(&app, "graphql-transport-ws").await;
    assert_eq!(init(&mut ws, &agent).await["type"], "connection_ack");
    send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": LOCKS}}),
    )
    .await;
    settle().await;
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
async fn an_analyst_cannot_subscribe_to_conversation_streams() {
    let app = spawn_app().await;
    let (_, analyst) = app.staff("Alba", "ANALYST").await;
    let mut ws = connect(&app, "graphql-transport-ws").await;
    assert_eq!(init(&mut ws, &analyst).await["type"], "connection_ack");
    send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": LOCKS}}),
    )
    .await;
    let reply = next_json(&mut ws).await;
    assert_eq!(reply["type"], "next", "{reply}");
    assert_eq!(
        reply["payload"]["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );
    assert!(reply["payload"]["data"].is_null());
}
