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

const TYPING: &str = "mutation($id:ID!){ typing(conversationId:$id){ lock { lastActivityAt } } }";

#[tokio::test]
async fn typing_counts_as_activity_but_does_not_extend_the_lock() {
    let app = spawn_app().await;
    let (first, second, id, _) = two_editors_and_a_conversation(&app).await;
    // Nobody holds the lock yet: open the conversation first.
    app.gql(&first, TYPING, json!({"id": id}))
        .await
        .assert_code("CONFLICT");
    app.gql(&first, OPEN, json!({"id": id})).await.data();
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(2));
        let r = app.gql(&first, TYPING, json!({"id": id})).await;
        assert!(r.data()["typing"]["lock"]["lastActivityAt"].is_string());
    }
    // Six minutes in and typing: not idle, still held; the other one may not type.
    let refused = app.gql(&second, TYPING, json!({"id": id})).await;
    refused.assert_code("CONFLICT");
    assert_eq!(
        refused.body["errors"][0]["extensions"]["holderName"],
        "Marco"
    );
    app.gql(&second, OPEN, json!({"id": id}))
        .await
        .assert_code("CONFLICT");
    // Typing never moves the 7-minute expiry.
    app.clock.advance(Duration::minutes(1));
    app.gql(&first, TYPING, json!({"id": id}))
        .await
        .assert_code("CONFLICT");
    app.gql(&second, OPEN, json!({"id": id})).await.data();
}

/// 64 staff users race for each of 100 conversations: exactly one wins each
/// time. On PostgreSQL the conditional UPDATE is what decides (READ
/// COMMITTED re-checks the WHERE clause on the row the winner wrote).
#[tokio::test]
async fn lock_contention_has_exactly_one_winner_on_postgres() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        println!(
            "lock_contention_has_exactly_one_winner_on_postgres: skipped, it needs PostgreSQL (set TEST_DATABASE_URL)"
        );
        return;
    }
    use domain::{Actor, DomainError};
    use entity::{Presence, Role, user};
    use sea_orm::{ActiveModelTrait, Set};

    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let now = app.now();
    let mut actors = vec![];
    for i in 0..64 {
        let u = user::ActiveModel {
            email: Set(format!("racer{i}@test.example")),
            name: Set(format!("Racer {i}")),
            password_hash: Set("not-a-login".into()),
            role: Set(Role::Editor),
            skills: Set(json!([])),
            max_concurrent: Set(3),
            presence: Set(Presence::Offline),
            is_active: Set(true),
            token_version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&app.domain.db)
        .await
        .unwrap();
        actors.push(Actor::user(u.id, Role::Editor));
    }
    for round in 0..100 {
        let id = app.seed_conversation(channel, None).await;
        let attempts = actors.iter().map(|a| app.domain.open_conversation(a, id));
        let results = futures_util::future::join_all(attempts).await;
        let winners: Vec<i64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|c| c.lock_holder_id))
            .collect();
        let refused = results
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Err(DomainError::LockHeld { .. } | DomainError::Conflict(_))
                )
            })
            .count();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(refused, 63, "round {round}");
        let held = app.conversation_row(id).await.lock_holder_id;
        assert_eq!(held, Some(winners[0]), "round {round}");
    }
}
