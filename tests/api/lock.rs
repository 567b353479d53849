//! The conversation lock: one holder, idle release at 3 min, expiry at 7 min.

use chrono::Duration;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

async fn two_editors_and_a_conversation(app: &TestApp) -> (String, String, String, i64) {
    let (first_id, first) = app.staff("Marco", "EDITOR").await;
    let (_, second) = app.staff("Sofia", "EDITOR").await;
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await;
    (first, second, id.to_string(), first_id)
}

const OPEN: &str =
    "mutation($id:ID!){ openConversation(id:$id){ lock { holder { name } expiresAt } } }";
const NOTE: &str =
    "mutation($id:ID!){ addNote(conversationId:$id, body:\"checking stock\"){ id } }";

#[tokio::test]
async fn a_second_agent_cannot_take_a_held_lock_or_write_notes() {
    let app = spawn_app().await;
    let (first, second, id, first_id) = two_editors_and_a_conversation(&app).await;
    let r = app.gql(&first, OPEN, json!({"id": id})).await;
    assert_eq!(
        r.data()["openConversation"]["lock"]["holder"]["name"],
        "Marco"
    );
    let refused = app.gql(&second, OPEN, json!({"id": id})).await;
    refused.assert_code("CONFLICT");
    let ext = &refused.body["errors"][0]["extensions"];
    assert_eq!(ext["holderId"], first_id.to_string());
    assert_eq!(ext["holderName"], "Marco");
    assert!(ext["until"].is_string());
    app.gql(&second, NOTE, json!({"id": id}))
        .await
        .assert_code("CONFLICT");
    app.gql(&first, NOTE, json!({"id": id})).await.data();
}

#[tokio::test]
async fn an_idle_lock_is_released_after_three_minutes() {
    let app = spawn_app().await;
    let (first, second, id, _) = two_editors_and_a_conversation(&app).await;
    app.gql(&first, OPEN, json!({"id": id})).await.data();
    app.clock.advance(Duration::seconds(179));
    app.gql(&second, OPEN, json!({"id": id}))
        .await
        .assert_code("CONFLICT");
    app.clock.advance(Duration::seconds(1));
    let released = app.domain.release_stale_locks().await.unwrap();
    assert_eq!(released.len(), 1);
    let r = app.gql(&second, OPEN, json!({"id": id})).await;
    assert_eq!(
        r.data()["openConversation"]["lock"]["holder"]["name"],
        "Sofia"
    );
}

#[tokio::test]
async fn activity_keeps_a_lock_until_it_expires_at_seven_minutes() {
    let app = spawn_app().await;
    let (first, second, id, _) = two_editors_and_a_conversation(&app).await;
    app.gql(&first, OPEN, json!({"id": id})).await.data();
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(2));
        app.gql(&first, NOTE, json!({"id": id})).await.data();
    }
    // 6 minutes in, active: still held.
    app.gql(&second, OPEN, json!({"id": id}))
        .await
        .assert_code("CONFLICT");
    app.clock.advance(Duration::minutes(1));
    // 7 minutes after acquisition the lock has expired, activity or not.
    let r = app.gql(&second, OPEN, json!({"id": id})).await;
    assert_eq!(
        r.data()["openConversation"]["lock"]["holder"]["name"],
        "Sofia"
    );
}

#[tokio::test]
async fn release_lock_frees_it_at_once() {
    let app = spawn_app().await;
    let (first, second, id, _) = two_editors_and_a_conversation(&app).await;
    app.gql(&first, OPEN, json!({"id": id})).await.data();
    let r = app
        .gql(
            &first,
            "mutation($id:ID!){ releaseLock(id:$id){ lock { expiresAt } } }",
            json!({"id": id}),
        )
        .await;
    assert!(r.data()["releaseLock"]["lock"].is_null());
    app.gql(&second, OPEN, json!({"id": id})).await.data();
}

#[tokio::test]
async fn concurrent_opens_have_exactly_one_winner() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let id = app.seed_conversation(channel, None).await.to_string();
    let mut tokens = vec![];
    for i in 0..16 {
        tokens.push(app.staff(&format!("Editor{i}"), "EDITOR").await.1);
    }
    let attempts = tokens.iter().map(|t| app.gql(t, OPEN, json!({"id": id})));
    let results = futures_util::future::join_all(attempts).await;
    let winners = results
        .iter()
        .filter(|r| r.body.get("errors").is_none())
        .count();
    let conflicts = results
        .iter()
        .filter(|r| r.body["errors"][0]["extensions"]["code"] == "CONFLICT")
        .count();
    assert_eq!((winners, conflicts), (1, 15));
}
