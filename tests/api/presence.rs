//! Agent presence: heartbeats, activity, the 5-minute timeout and online time.

use chrono::Duration;
use entity::{Presence, presence_interval, user};
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, spawn_app_with};

/// Tokens that outlive the hours these tests move the clock by.
async fn spawn_app() -> TestApp {
    spawn_app_with(|c| c.access_token_ttl_secs = 7 * 24 * 3600).await
}

async fn presence_of(app: &TestApp, id: i64) -> Presence {
    user::Entity::find_by_id(id)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap()
        .presence
}

async fn intervals(app: &TestApp, id: i64) -> Vec<presence_interval::Model> {
    presence_interval::Entity::find()
        .filter(presence_interval::Column::UserId.eq(id))
        .order_by_asc(presence_interval::Column::Id)
        .all(&app.domain.db)
        .await
        .unwrap()
}

async fn online_time(app: &TestApp, token: &str, user: Option<i64>) -> Value {
    let from = app.now() - Duration::hours(12);
    let to = app.now() + Duration::hours(12);
    let r = app
        .gql(
            token,
            "query($u:ID,$f:DateTime!,$t:DateTime!){ onlineTime(userId:$u, from:$f, to:$t){ totalOnlineSeconds targetSecondsPerDay days { date onlineSeconds meetsTarget } } }",
            json!({"u": user.map(|u| u.to_string()), "f": from.to_rfc3339(), "t": to.to_rfc3339()}),
        )
        .await;
    r.data()["onlineTime"].clone()
}

#[tokio::test]
async fn heartbeats_set_presence_and_online_time_counts_online_periods_only() {
    let app = spawn_app().await;
    let (anna, anna_t) = app.agent("Anna", &[], &[], 3).await;
    assert_eq!(presence_of(&app, anna).await, Presence::Offline);
    app.heartbeat(&anna_t, "ONLINE").await;
    assert_eq!(presence_of(&app, anna).await, Presence::Online);
    for _ in 0..4 {
        app.clock.advance(Duration::minutes(4));
        app.heartbeat(&anna_t, "ONLINE").await;
    }
    // 16 minutes online, then a 28-minute break marked away, the console
    // still sending heartbeats: activity alone does not end "away".
    app.heartbeat(&anna_t, "AWAY").await;
    for _ in 0..7 {
        app.clock.advance(Duration::minutes(4));
        let r = app
            .gql(
                &anna_t,
                "mutation { heartbeat { presence lastSeenAt } }",
                json!({}),
            )
            .await;
        assert_eq!(r.data()["heartbeat"]["presence"], "AWAY");
    }
    app.heartbeat(&anna_t, "ONLINE").await;
    app.clock.advance(Duration::minutes(4));
    app.heartbeat(&anna_t, "OFFLINE").await;
    assert_eq!(presence_of(&app, anna).await, Presence::Offline);
    let kinds: Vec<(Presence, bool)> = intervals(&app, anna)
        .await
        .iter()
        .map(|i| (i.status, i.ended_at.is_some()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Presence::Online, true),
            (Presence::Away, true),
            (Presence::Online, true)
        ]
    );
    let report = online_time(&app, &anna_t, None).await;
    assert_eq!(report["totalOnlineSeconds"], 20 * 60);
    assert_eq!(report["targetSecondsPerDay"], 23_400);
    // Explicit changes are audited.
    let audited = entity::audit_log::Entity::find()
        .filter(entity::audit_log::Column::Action.eq("staff.presence"))
        .filter(entity::audit_log::Column::EntityId.eq(anna.to_string()))
        .all(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(audited.len(), 3, "away, online, offline");
}

#[tokio::test]
async fn any_authenticated_request_brings_an_agent_online() {
    let app = spawn_app().await;
    let (anna, anna_t) = app.agent("Anna", &[], &[], 3).await;
    app.gql(&anna_t, "{ me { id } }", json!({})).await.data();
    assert_eq!(presence_of(&app, anna).await, Presence::Online);
    let r = app
        .gql(
            &app.admin_token,
            "query($id:ID!){ staffMember(id:$id){ presence lastSeenAt } }",
            json!({"id": anna.to_string()}),
        )
        .await;
    assert_eq!(r.data()["staffMember"]["presence"], "ONLINE");
    // Analysts have no presence.
    let (ugo, ugo_t) = app.staff("Ugo", "ANALYST").await;
    app.gql(&ugo_t, "{ me { id } }", json!({})).await.data();
    assert_eq!(presence_of(&app, ugo).await, Presence::Offline);
}

#[tokio::test]
async fn five_minutes_without_activity_is_offline_and_not_online_time() {
    let app = spawn_app().await;
    let (anna, anna_t) = app.agent("Anna", &[], &[], 3).await;
    app.heartbeat(&anna_t, "ONLINE").await;
    app.clock.advance(Duration::minutes(2));
    app.heartbeat(&anna_t, "ONLINE").await;
    app.clock.advance(Duration::seconds(4 * 60 + 59));
    // (The admin who created her is idle too: only Anna matters here.)
    assert!(!app.domain.expire_presence().await.unwrap().contains(&anna));
    assert_eq!(presence_of(&app, anna).await, Presence::Online);
    app.clock.advance(Duration::seconds(1));
    // The presence worker may sweep first; either way she is offline now.
    app.domain.expire_presence().await.unwrap();
    assert_eq!(presence_of(&app, anna).await, Presence::Offline);
    // Online from the first heartbeat to the last activity: 2 minutes.
    let i = intervals(&app, anna).await;
    assert_eq!(i.len(), 1);
    assert_eq!(
        i[0].ended_at.unwrap() - i[0].started_at,
        Duration::minutes(2)
    );
    // Back after the gap: a new online period, the gap not counted.
    app.clock.advance(Duration::hours(1));
    app.gql(&anna_t, "{ me { id } }", json!({})).await.data();
    app.clock.advance(Duration::minutes(3));
    app.heartbeat(&anna_t, "ONLINE").await;
    let report = online_time(&app, &app.admin_token, Some(anna)).await;
    assert_eq!(report["totalOnlineSeconds"], 5 * 60);
}

#[tokio::test]
async fn a_stale_online_agent_coming_back_does_not_count_the_gap() {
    let app = spawn_app().await;
    let (anna, anna_t) = app.agent("Anna", &[], &[], 3).await;
    app.heartbeat(&anna_t, "ONLINE").await;
    app.clock.advance(Duration::minutes(1));
    app.heartbeat(&anna_t, "ONLINE").await;
    // Gone for 20 minutes, and the sweep has not run yet.
    app.clock.advance(Duration::minutes(20));
    app.heartbeat(&anna_t, "ONLINE").await;
    app.clock.advance(Duration::minutes(1));
    app.heartbeat(&anna_t, "ONLINE").await;
    let report = online_time(&app, &anna_t, None).await;
    assert_eq!(report["totalOnlineSeconds"], 2 * 60);
    assert_eq!(intervals(&app, anna).await.len(), 2);
}

#[tokio::test]
async fn an_open_subscription_connection_counts_as_activity() {
    let app = spawn_app().await;
    let (anna, anna_t) = app.agent("Anna", &[], &[], 3).await;
    let mut req = format!("ws://127.0.0.1:{}/graphql", app.port)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = connect_async(req).await.expect("websocket handshake");
    ws.send(Message::Text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {anna_t}")}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let ack = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .expect("an answer")
        .unwrap()
        .unwrap();
    assert!(ack.to_string().contains("connection_ack"), "{ack}");
    assert_eq!(presence_of(&app, anna).await, Presence::Online);
    // The socket's periodic touch is what keeps the agent online; it is the
    // same entry point.
    app.clock.advance(Duration::minutes(4));
    app.domain.touch_presence(anna).await.unwrap();
    app.clock.advance(Duration::minutes(4));
    assert!(!app.domain.expire_presence().await.unwrap().contains(&anna));
    assert_eq!(presence_of(&app, anna).await, Presence::Online);
}

#[tokio::test]
async fn online_time_is_reported_per_local_day() {
    let app = spawn_app().await;
    let (anna, anna_t) = app.agent("Anna", &[], &[], 3).await;
    // 14:30 UTC three days ago is 23:30 in Tokyo (no daylight saving).
    let day = app.now().date_naive() - chrono::Days::new(3);
    let start = day.and_hms_opt(14, 30, 0).unwrap().and_utc();
    app.clock.set(start);
    app.heartbeat(&anna_t, "ONLINE").await;
    for _ in 0..15 {
        app.clock.advance(Duration::minutes(4));
        app.heartbeat(&anna_t, "ONLINE").await;
    }
    // One hour online, 30 minutes on each side of midnight in Tokyo.
    let from = start - Duration::minutes(23 * 60 + 30);
    let to = from + Duration::days(2);
    let r = app
        .gql(
            &app.admin_token,
            "query($u:ID!,$f:DateTime!,$t:DateTime!){ onlineTime(userId:$u, from:$f, to:$t, timeZone:\"Asia/Tokyo\"){ days { date onlineSeconds meetsTarget } } }",
            json!({"u": anna.to_string(), "f": from.to_rfc3339(), "t": to.to_rfc3339()}),
        )
        .await;
    let next = day + chrono::Days::new(1);
    assert_eq!(
        r.data()["onlineTime"]["days"],
        json!([
            {"date": day.to_string(), "onlineSeconds": 1800, "meetsTarget": false},
            {"date": next.to_string(), "onlineSeconds": 1800, "meetsTarget": false}
        ])
    );
    let bad = app
        .gql(
            &app.admin_token,
            "query($u:ID!){ onlineTime(userId:$u, from:\"2026-03-01T00:00:00Z\", to:\"2026-03-02T00:00:00Z\", timeZone:\"Mars/Olympus\"){ totalOnlineSeconds } }",
            json!({"u": anna.to_string()}),
        )
        .await;
    bad.assert_code("BAD_USER_INPUT");
    assert_eq!(bad.body["errors"][0]["extensions"]["field"], "timeZone");
}
