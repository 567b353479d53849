//! Data governance: the retention policy on the manual clock, and one
//! contact's export and erasure with nothing left behind.

use chrono::Duration;
use entity::{
    ConversationStatus, DeliveryStatus, Direction, MessageType, SenderKind, audit_log, contact,
    conversation, message, note, survey,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app};

/// A message stored as ingest or the outbox would have stored it.
pub async fn seed_message(
    app: &TestApp,
    conversation: i64,
    channel: i64,
    text: &str,
    inbound: bool,
) -> i64 {
    message::ActiveModel {
        conversation_id: Set(conversation),
        channel_id: Set(channel),
        direction: Set(if inbound {
            Direction::Inbound
        } else {
            Direction::Outbound
        }),
        sender_kind: Set(if inbound {
            SenderKind::Customer
        } else {
            SenderKind::Agent
        }),
        message_type: Set(MessageType::Text),
        body: Set(Some(text.to_string())),
        status: Set(if inbound {
            DeliveryStatus::Received
        } else {
            DeliveryStatus::Sent
        }),
        created_at: Set(app.now()),
        ..Default::default()
    }
    .insert(&app.domain.db)
    .await
    .expect("message")
    .id
}

async fn resolve_at(app: &TestApp, id: i64) {
    conversation::Entity::update_many()
        .col_expr(
            conversation::Column::Status,
            Expr::value(ConversationStatus::Resolved),
        )
        .col_expr(conversation::Column::ResolvedAt, Expr::value(app.now()))
        .filter(conversation::Column::Id.eq(id))
        .exec(&app.domain.db)
        .await
        .unwrap();
}

async fn count_messages(app: &TestApp, conversation: i64) -> u64 {
    message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation))
        .count(&app.domain.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn retention_archives_or_purges_only_conversations_closed_long_enough() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let old = app.seed_conversation(channel, None).await;
    let purged = app.seed_conversation(channel, None).await;
    seed_message(&app, purged, channel, "to be purged", true).await;
    resolve_at(&app, old).await;
    resolve_at(&app, purged).await;
    app.clock.advance(Duration::days(20));
    let recent = app.seed_conversation(channel, None).await;
    resolve_at(&app, recent).await;
    let open = app.seed_conversation(channel, None).await;
    app.clock.advance(Duration::days(15));
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // `purged` is past 30 days too: purge it first, by the domain call the worker makes.
    let n = app
        .domain
        .apply_retention(
            &domain::Actor::system(),
            30,
            domain::retention::RetentionAction::Purge,
        )
        .await
        .unwrap();
    assert_eq!(n, 2, "both conversations resolved 35 days ago");
    assert!(
        conversation::Entity::find_by_id(purged)
            .one(&app.domain.db)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(count_messages(&app, purged).await, 0);
    assert!(
        conversation::Entity::find_by_id(recent)
            .one(&app.domain.db)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        conversation::Entity::find_by_id(open)
            .one(&app.domain.db)
            .await
            .unwrap()
            .is_some()
    );

    // Archive, through the admin mutation: 10 days catches `recent` (15 days ago) only.
    let r = app
        .gql(
            &admin,
            "mutation { applyRetention(olderThanDays:10, mode:ARCHIVE) }",
            json!({}),
        )
        .await;
    assert_eq!(r.data()["applyRetention"], 1);
    assert!(app.conversation_row(recent).await.archived_at.is_some());
    assert!(app.conversation_row(open).await.archived_at.is_none());
    let listed = app
        .gql(
            &admin,
            "{ conversations(first: 50) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let ids: Vec<String> = listed.data()["conversations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !ids.contains(&recent.to_string()),
        "archived conversations leave the lists"
    );
    assert!(ids.contains(&open.to_string()));
    // Archiving twice does nothing more.
    let r = app
        .gql(
            &admin,
            "mutation { applyRetention(olderThanDays:10, mode:ARCHIVE) }",
            json!({}),
        )
        .await;
    assert_eq!(r.data()["applyRetention"], 0);
    let r = app
        .gql(
            &admin,
            "mutation { applyRetention(olderThanDays:0, mode:PURGE) }",
            json!({}),
        )
        .await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "olderThanDays");
    let audit = app
        .gql(
            &admin,
            "{ auditLog(filter:{action:\"retention.apply\"}){ edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        audit.data()["auditLog"]["edges"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn export_then_erase_a_contact_leaves_nothing_behind() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let conv = app.seed_conversation(channel, None).await;
    let other = app.seed_conversation(channel, None).await;
    let contact_id = app.conversation_row(conv).await.contact_id;
    let wa_id = contact::Entity::find_by_id(contact_id)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap()
        .wa_id
        .unwrap();
    seed_message(&app, conv, channel, "My address is Via Segreta 7", true).await;
    seed_message(&app, other, channel, "someone else's words", true).await;
    app.gql(
        &app.admin_token,
        "mutation($id:ID!){ updateContact(id:$id, input:{name:\"Zelda Secret\", externalId:\"CRM-Z\", fields:{taxCode:\"ZLDSCR\"}}){ id } }",
        json!({"id": contact_id.to_string()}),
    )
    .await
    .data();
    app.gql(
        &app.admin_token,
        "mutation($id:ID!){ addNote(conversationId:$id, body:\"Zelda paid cash\"){ id } }",
        json!({"id": conv.to_string()}),
    )
    .await
    .data();
    survey::ActiveModel {
        conversation_id: Set(conv),
        contact_id: Set(contact_id),
        kind: Set(entity::SurveyKind::Csat),
        round: Set(1),
        status: Set(entity::SurveyStatus::Answered),
        score: Set(Some(5)),
        raw_answer: Set(Some("5 thanks Zelda".into())),
        sent_at: Set(app.now()),
        answered_at: Set(Some(app.now())),
        expires_at: Set(app.now() + Duration::days(1)),
        ..Default::default()
    }
    .insert(&app.domain.db)
    .await
    .unwrap();

    // Export everything: it is all there, and the export is audited without the data.
    let r = app
        .gql(
            &app.admin_token,
            "mutation($id:ID!){ exportContactData(contactId:$id) }",
            json!({"id": contact_id.to_string()}),
        )
        .await;
    let doc = r.data()["exportContactData"].clone();
    assert_eq!(doc["contact"]["name"], "Zelda Secret");
    assert_eq!(
        doc["conversations"][0]["messages"][0]["body"],
        "My address is Via Segreta 7"
    );
    assert_eq!(
        doc["conversations"][0]["notes"][0]["body"],
        "Zelda paid cash"
    );
    assert_eq!(doc["surveys"][0]["raw_answer"], "5 thanks Zelda");
    assert!(!doc["auditLog"].as_array().unwrap().is_empty());

    let r = app
        .gql(&app.admin_token, "mutation($id:ID!){ eraseContact(contactId:$id){ conversations messages notes surveys auditRows } }", json!({"id": contact_id.to_string()}))
        .await;
    let report = &r.data()["eraseContact"];
    assert_eq!(report["messages"], 1);
    assert_eq!(report["notes"], 1);
    assert_eq!(report["surveys"], 1);
    assert!(report["auditRows"].as_i64().unwrap() >= 2, "{report}");

    // Nothing left: messages, notes, surveys gone; the contact anonymised.
    assert_eq!(count_messages(&app, conv).await, 0);
    assert_eq!(
        count_messages(&app, other).await,
        1,
        "other customers are untouched"
    );
    assert_eq!(
        note::Entity::find()
            .filter(note::Column::ConversationId.eq(conv))
            .count(&app.domain.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        survey::Entity::find()
            .filter(survey::Column::ContactId.eq(contact_id))
            .count(&app.domain.db)
            .await
            .unwrap(),
        0
    );
    let c = contact::Entity::find_by_id(contact_id)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    assert!(c.erased_at.is_some());
    assert_eq!(
        (c.wa_id, c.name, c.external_id, c.profile_name),
        (None, None, None, None)
    );
    assert_eq!(c.fields, json!({}));
    // No audit row, not even the erasure's, holds the erased data.
    for row in audit_log::Entity::find().all(&app.domain.db).await.unwrap() {
        let text = format!("{:?} {:?}", row.before, row.after);
        for secret in ["Zelda", "Via Segreta", "ZLDSCR", "CRM-Z", wa_id.as_str()] {
            assert!(
                !text.contains(secret),
                "audit row {} ({}) still holds {secret}: {text}",
                row.id,
                row.action
            );
        }
    }
    let erase = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("contact.erase"))
        .one(&app.domain.db)
        .await
        .unwrap()
        .expect("the erasure is audited");
    assert_eq!(erase.entity_id, Some(contact_id.to_string()));
    assert!(
        audit_log::Entity::find()
            .filter(audit_log::Column::Action.eq("contact.export"))
            .count(&app.domain.db)
            .await
            .unwrap()
            == 1
    );
    // The contact disappears from lists; its conversation stays, anonymous, for reports.
    assert!(
        conversation::Entity::find_by_id(conv)
            .one(&app.domain.db)
            .await
            .unwrap()
            .is_some()
    );
}
