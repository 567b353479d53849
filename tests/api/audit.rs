//! Every change leaves an audit row: who, what, before/after, when.

use chrono::Timelike;
use entity::audit_log;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_department_update_is_audited_with_before_and_after() {
    let app = spawn_app().await;
    let (editor_id, editor) = app.staff("Eve", "EDITOR").await;
    let created = app
        .gql(&app.admin_token, "mutation { createDepartment(input:{name:\"Billing\", keywords:[\"facture\"]}) { id } }", json!({}))
        .await;
    let id = created.data()["createDepartment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(
        &app.admin_token,
        "mutation($id:ID!){ updateDepartment(id:$id, input:{keywords:[\"facture\",\"fattura\"]}){ id } }",
        json!({"id": id}),
    )
    .await
    .data();

    let r = app
        .gql(
            &editor,
            "query($id:String!){ auditLog(filter:{entityType:\"department\", entityId:$id}) { edges { node { action actorKind actor { email } before after createdAt } } } }",
            json!({"id": id}),
        )
        .await;
    let edges = r.data()["auditLog"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 2, "{edges:?}");
    let update = &edges[0]["node"];
    assert_eq!(update["action"], "department.update");
    assert_eq!(update["actorKind"], "USER");
    assert_eq!(update["actor"]["email"], "admin@test.example");
    assert_eq!(update["before"]["keywords"], json!(["facture"]));
    assert_eq!(update["after"]["keywords"], json!(["facture", "fattura"]));
    assert_eq!(edges[1]["node"]["action"], "department.create");
    let _ = editor_id;
}

#[tokio::test]
async fn a_note_and_a_lock_are_audited_to_the_second_and_a_refused_change_is_not() {
    let app = spawn_app().await;
    let (agent_id, agent) = app.staff("Ugo", "AGENT").await;
    let channel = app.seed_channel().await;
    let conversation = app.seed_conversation(channel, Some(agent_id)).await;
    app.gql(
        &agent,
        "mutation($id:ID!){ openConversation(id:$id){ id } }",
        json!({"id": conversation.to_string()}),
    )
    .await
    .data();
    let long = "x".repeat(301);
    app.gql(
        &agent,
        "mutation($id:ID!,$b:String!){ addNote(conversationId:$id, body:$b){ id } }",
        json!({"id": conversation.to_string(), "b": long}),
    )
    .await
    .assert_code("BAD_USER_INPUT");
    app.gql(&agent, "mutation($id:ID!){ addNote(conversationId:$id, body:\"10:42 | size | asked for photo\"){ id } }", json!({"id": conversation.to_string()}))
        .await
        .data();

    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::ActorId.eq(agent_id))
        .all(&app.domain.db)
        .await
        .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, vec!["conversation.lock", "note.create"]);
    let note = &rows[1];
    assert_eq!(
        note.after.as_ref().unwrap()["body"],
        "10:42 | size | asked for photo"
    );
    assert_eq!(
        note.created_at.with_nanosecond(0).unwrap().timestamp(),
        app.now().timestamp()
    );
}

#[tokio::test]
async fn agents_cannot_read_the_audit_log() {
    let app = spawn_app().await;
    let (_, agent) = app.staff("Zoe", "AGENT").await;
    app.gql(&agent, "{ auditLog { edges { cursor } } }", json!({}))
        .await
        .assert_code("FORBIDDEN");
}
