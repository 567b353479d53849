//! Manual assignment, claims from department queues, transfers (counted, with
//! history), unassign, resolve and reopen, priority and topic; with locks,
//! capacity, audit and live events.

use std::time::Duration as StdDuration;

use domain::events::{EventPayload, QueueChange};
use entity::{ConversationStatus, Priority, audit_log};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{Gql, TestApp, spawn_app_with};

/// Routing stays out of the way (the default in tests): these tests place
/// conversations themselves.
async fn app() -> TestApp {
    spawn_app_with(|_| {}).await
}

const ASSIGN: &str =
    "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id assignee { name } } }";
const CLAIM: &str = "mutation($c:ID!){ claim(conversationId:$c){ id assignee { name } } }";
const TRANSFER: &str = "mutation($c:ID!,$a:ID,$d:ID,$r:String){ transfer(conversationId:$c, toAgentId:$a, toDepartmentId:$d, reason:$r){ id transferCount assignee { name } department { name } lock { expiresAt } } }";
const RESOLVE: &str =
    "mutation($c:ID!){ resolve(conversationId:$c){ status resolvedAt assignee { name } } }";
const REOPEN: &str = "mutation($c:ID!){ reopen(conversationId:$c){ status reopenCount resolvedAt assignee { name } } }";
const OPEN: &str = "mutation($id:ID!){ openConversation(id:$id){ id } }";

async fn run(app: &TestApp, token: &str, query: &str, vars: Value) -> Gql {
    app.gql(token, query, vars).await
}

async fn audit_actions(app: &TestApp, conversation: i64) -> Vec<String> {
    audit_log::Entity::find()
        .filter(audit_log::Column::EntityType.eq("conversation"))
        .filter(audit_log::Column::EntityId.eq(conversation.to_string()))
        .all(&app.domain.db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect()
}

#[tokio::test]
async fn transfers_are_counted_and_kept_in_the_history() {
    let app = app().await;
    let channel = app.seed_channel().await;
    let returns = app.department("Returns", "SMART").await;
    let logistics = app.department("Logistics", "SMART").await;
    let (_, editor) = app.staff("Elisa", "EDITOR").await;
    let (anna, anna_t) = app.agent("Anna", &[], &[returns], 3).await;
    let (bea, _) = app.agent("Bea", &[], &[logistics], 3).await;
    let id = app
        .seed_queued(channel, Some(returns), Priority::Normal, None)
        .await;
    let c = id.to_string();
    run(
        &app,
        &editor,
        ASSIGN,
        json!({"c": c, "a": anna.to_string()}),
    )
    .await
    .data();
    // Anna hands it to Logistics: back in that queue, counted.
    let r = run(
        &app,
        &anna_t,
        TRANSFER,
        json!({"c": c, "d": logistics.to_string(), "r": "parcel lost in transit"}),
    )
    .await;
    let t = &r.data()["transfer"];
    assert_eq!(t["transferCount"], 1);
    assert!(t["assignee"].is_null());
    assert_eq!(t["department"]["name"], "Logistics");
    // Anna no longer sees it.
    run(&app, &anna_t, RESOLVE, json!({"c": c}))
        .await
        .assert_code("FORBIDDEN");
    // The editor sends it to Bea.
    let r = run(
        &app,
        &editor,
        TRANSFER,
        json!({"c": c, "a": bea.to_string()}),
    )
    .await;
    assert_eq!(r.data()["transfer"]["transferCount"], 2);
    assert_eq!(r.data()["transfer"]["assignee"]["name"], "Bea");
    let history = run(
        &app,
        &editor,
        "query($c:ID!){ assignmentHistory(conversationId:$c){ kind reason fromAgent { name } toAgent { name } fromDepartment { name } toDepartment { name } actor { name } } }",
        json!({"c": c}),
    )
    .await;
    let rows = history.data()["assignmentHistory"]
        .as_array()
        .unwrap()
        .clone();
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["MANUAL", "TRANSFER", "TRANSFER"]);
    assert_eq!(rows[1]["reason"], "parcel lost in transit");
    assert_eq!(rows[1]["fromAgent"]["name"], "Anna");
    assert!(rows[1]["toAgent"].is_null());
    assert_eq!(rows[1]["fromDepartment"]["name"], "Returns");
    assert_eq!(rows[1]["toDepartment"]["name"], "Logistics");
    assert_eq!(rows[1]["actor"]["name"], "Anna");
    assert_eq!(rows[2]["toAgent"]["name"], "Bea");
    assert_eq!(
        audit_actions(&app, id).await,
        vec![
            "conversation.assign",
            "conversation.transfer",
            "conversation.transfer"
        ]
    );
    // Transferring where it already is, or nowhere, is bad input.
    run(
        &app,
        &editor,
        TRANSFER,
        json!({"c": c, "a": bea.to_string()}),
    )
    .await
    .assert_code("BAD_USER_INPUT");
    let r = run(&app, &editor, TRANSFER, json!({"c": c})).await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "toAgentId");
}

#[tokio::test]
async fn an_agent_sees_and_claims_only_its_departments_queues() {
    let app = app().await;
    let channel = app.seed_channel().await;
    let returns = app.department("Returns", "SMART").await;
    let sales = app.department("Sales", "SMART").await;
    let (_, anna_t) = app.agent("Anna", &[], &[returns], 3).await;
    let (_, carlo_t) = app.agent("Carlo", &[], &[returns], 3).await;
    let mine = app
        .seed_queued(channel, Some(returns), Priority::Normal, None)
        .await;
    let theirs = app
        .seed_queued(channel, Some(sales), Priority::Normal, None)
        .await;
    let nowhere = app.seed_queued(channel, None, Priority::Normal, None).await;
    let queue = |token: String, dep: Option<i64>| {
        let app = &app;
        async move {
            app.gql(
                &token,
                "query($d:ID){ queue(departmentId:$d){ edges { node { id } } } }",
                json!({"d": dep.map(|d| d.to_string())}),
            )
            .await
        }
    };
    let ids = |r: &Gql| -> Vec<i64> {
        r.data()["queue"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(ids(&queue(anna_t.clone(), None).await), vec![mine]);
    assert_eq!(ids(&queue(anna_t.clone(), Some(returns)).await), vec![mine]);
    queue(anna_t.clone(), Some(sales))
        .await
        .assert_code("FORBIDDEN");
    let all = ids(&queue(app.admin_token.clone(), None).await);
    assert_eq!(all, vec![mine, theirs, nowhere]);

    run(&app, &anna_t, CLAIM, json!({"c": theirs.to_string()}))
        .await
        .assert_code("FORBIDDEN");
    run(&app, &anna_t, CLAIM, json!({"c": nowhere.to_string()}))
        .await
        .assert_code("FORBIDDEN");
    let r = run(&app, &anna_t, CLAIM, json!({"c": mine.to_string()})).await;
    assert_eq!(r.data()["claim"]["assignee"]["name"], "Anna");
    // Now hers: she can read it; Carlo is too late.
    app.gql(
        &anna_t,
        "query($id:ID!){ conversation(id:$id){ id } }",
        json!({"id": mine.to_string()}),
    )
    .await
    .data();
    run(&app, &carlo_t, CLAIM, json!({"c": mine.to_string()}))
        .await
        .assert_code("CONFLICT");
    assert!(ids(&queue(carlo_t, None).await).is_empty());
    let history = app.domain.db.clone();
    let claims = entity::assignment::Entity::find()
        .filter(entity::assignment::Column::ConversationId.eq(mine))
        .all(&history)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].kind, entity::AssignmentKind::Claim);
}

#[tokio::test]
async fn manual_assignment_and_claims_respect_capacity() {
    let app = app().await;
    let channel = app.seed_channel().await;
    let returns = app.department("Returns", "SMART").await;
    let (_, editor) = app.staff("Elisa", "EDITOR").await;
    let (anna, anna_t) = app.agent("Anna", &[], &[returns], 1).await;
    app.seed_conversation(channel, Some(anna)).await;
    let next = app
        .seed_queued(channel, Some(returns), Priority::Normal, None)
        .await;
    let r = run(
        &app,
        &editor,
        ASSIGN,
        json!({"c": next.to_string(), "a": anna.to_string()}),
    )
    .await;
    r.assert_code("CONFLICT");
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("capacity (1 of 1"), "{message}");
    run(&app, &anna_t, CLAIM, json!({"c": next.to_string()}))
        .await
        .assert_code("CONFLICT");
    // Analysts cannot be given conversations.
    let (analyst, _) = app.staff("Ugo", "ANALYST").await;
    let r = run(
        &app,
        &editor,
        ASSIGN,
        json!({"c": next.to_string(), "a": analyst.to_string()}),
    )
    .await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "agentId");
    assert_eq!(app.conversation_row(next).await.assignee_id, None);
}

#[tokio::test]
async fn resolve_frees_capacity_and_reopen_is_counted() {
    let app = app().await;
    let channel = app.seed_channel().await;
    let (anna, anna_t) = app.agent("Anna", &[], &[], 1).await;
    let first = app.seed_conversation(channel, Some(anna)).await.to_string();
    let r = run(&app, &anna_t, RESOLVE, json!({"c": first})).await;
    assert_eq!(r.data()["resolve"]["status"], "RESOLVED");
    assert!(r.data()["resolve"]["resolvedAt"].is_string());
    run(&app, &anna_t, RESOLVE, json!({"c": first}))
        .await
        .assert_code("CONFLICT");
    // Room for one again: she reopens it and keeps it.
    let r = run(&app, &anna_t, REOPEN, json!({"c": first})).await;
    let reopened = &r.data()["reopen"];
    assert_eq!(reopened["status"], "OPEN");
    assert_eq!(reopened["reopenCount"], 1);
    assert!(reopened["resolvedAt"].is_null());
    assert_eq!(reopened["assignee"]["name"], "Anna");
    // Resolved again, then she takes another one; reopening the first now
    // would put her over capacity, so it goes back to the queue.
    run(&app, &anna_t, RESOLVE, json!({"c": first}))
        .await
        .data();
    app.seed_conversation(channel, Some(anna)).await;
    let r = run(&app, &app.admin_token, REOPEN, json!({"c": first})).await;
    assert_eq!(r.data()["reopen"]["reopenCount"], 2);
    assert!(r.data()["reopen"]["assignee"].is_null());
    let row = app.conversation_row(first.parse().unwrap()).await;
    assert_eq!(row.status, ConversationStatus::Open);
    assert!(row.queued_at.is_some());
    assert_eq!(
        audit_actions(&app, row.id).await,
        vec![
            "conversation.resolve",
            "conversation.reopen",
            "conversation.resolve",
            "conversation.reopen"
        ]
    );
}

#[tokio::test]
async fn a_held_lock_refuses_others_and_a_handoff_releases_it() {
    let app = app().await;
    let channel = app.seed_channel().await;
    let (_, marco) = app.staff("Marco", "EDITOR").await;
    let (anna, anna_t) = app.agent("Anna", &[], &[], 3).await;
    let (bea, bea_t) = app.agent("Bea", &[], &[], 3).await;
    let id = app.seed_conversation(channel, Some(anna)).await.to_string();
    run(&app, &marco, OPEN, json!({"id": id})).await.data();
    // Marco holds the lock: Anna cannot resolve, transfer or re-prioritise.
    run(&app, &anna_t, RESOLVE, json!({"c": id}))
        .await
        .assert_code("CONFLICT");
    let r = run(
        &app,
        &anna_t,
        "mutation($c:ID!){ setPriority(conversationId:$c, priority:HIGH){ priority } }",
        json!({"c": id}),
    )
    .await;
    r.assert_code("CONFLICT");
    assert_eq!(r.body["errors"][0]["extensions"]["holderName"], "Marco");
    // The holder's change counts as activity; handing it on frees the lock.
    app.clock.advance(chrono::Duration::minutes(2));
    run(
        &app,
        &marco,
        "mutation($c:ID!){ setTopic(conversationId:$c, topic:\"  Damaged Parcel \"){ topic } }",
        json!({"c": id}),
    )
    .await
    .data();
    assert_eq!(
        app.conversation_row(id.parse().unwrap())
            .await
            .lock_last_activity_at,
        Some(app.now())
    );
    let r = run(
        &app,
        &marco,
        TRANSFER,
        json!({"c": id, "a": bea.to_string()}),
    )
    .await;
    assert!(r.data()["transfer"]["lock"].is_null());
    run(&app, &bea_t, OPEN, json!({"id": id})).await.data();
    let row = app.conversation_row(id.parse().unwrap()).await;
    assert_eq!(row.topic.as_deref(), Some("damaged parcel"));
    assert_eq!(row.assignee_id, Some(bea));
    assert_eq!(row.lock_holder_id, Some(bea));
}

#[tokio::test]
async fn assignment_changes_are_published_after_commit() {
    let app = app().await;
    let channel = app.seed_channel().await;
    let returns = app.department("Returns", "SMART").await;
    let (_, anna_t) = app.agent("Anna", &[], &[returns], 3).await;
    let first = app
        .seed_queued(channel, Some(returns), Priority::Normal, None)
        .await;
    app.seed_queued(channel, Some(returns), Priority::Normal, None)
        .await;
    let mut events = app.events.local().subscribe();
    run(&app, &anna_t, CLAIM, json!({"c": first.to_string()}))
        .await
        .data();
    run(
        &app,
        &anna_t,
        "mutation($c:ID!){ unassign(conversationId:$c){ id } }",
        json!({"c": first.to_string()}),
    )
    .await
    .data();
    let mut seen = vec![];
    while seen.len() < 4 {
        let e = tokio::time::timeout(StdDuration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("bus open");
        match e.payload() {
            EventPayload::QueueChanged {
                department_id,
                conversation_id,
                change,
                queue_length,
            } if *conversation_id == first => {
                assert_eq!(*department_id, Some(returns));
                seen.push(format!("queue {change:?} {queue_length}"));
            }
            EventPayload::ConversationUpdated { scope, change, .. }
                if scope.conversation_id == first =>
            {
                seen.push(format!("conversation {change}"));
            }
            _ => {}
        }
    }
    assert_eq!(
        seen,
        vec![
            format!("queue {:?} 1", QueueChange::Assigned),
            "conversation assigned".to_string(),
            format!("queue {:?} 2", QueueChange::Entered),
            "conversation unassigned".to_string(),
        ]
    );
    let unassigned = entity::assignment::Entity::find()
        .filter(entity::assignment::Column::ConversationId.eq(first))
        .filter(entity::assignment::Column::Kind.eq(entity::AssignmentKind::Unassign))
        .count(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(unassigned, 1);
}
