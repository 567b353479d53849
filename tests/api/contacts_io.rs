//! Contact import (CSV and JSON, row by row) and export (contacts by
//! segment, conversations with messages for a period).

use chrono::Duration;
use entity::{ConsentState, contact, contact_tag};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::retention::seed_message;

async fn import(app: &TestApp, format: &str, data: &str) -> Value {
    let r = app
        .gql(
            &app.admin_token,
            "mutation($f:ExportFormat!,$d:String!){ importContacts(format:$f, data:$d){ created updated errors { line field reason } } }",
            json!({"f": format, "d": data}),
        )
        .await;
    r.data()["importContacts"].clone()
}

async fn by_wa(app: &TestApp, wa: &str) -> Option<contact::Model> {
    contact::Entity::find()
        .filter(contact::Column::WaId.eq(wa))
        .one(&app.domain.db)
        .await
        .unwrap()
}

async fn tag(app: &TestApp, name: &str) -> i64 {
    app.gql(
        &app.admin_token,
        "mutation($n:String!){ createTag(name:$n){ id } }",
        json!({"n": name}),
    )
    .await
    .data()["createTag"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn error_lines(report: &Value) -> Vec<(i64, Option<String>)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap(),
                e["field"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_csv_import_keeps_good_rows_and_reports_bad_ones_by_line() {
    let app = spawn_app().await;
    let vip = tag(&app, "VIP").await;
    let now = app.now();
    // Existing contacts: one matched by waId, one whose externalId a bad row reuses.
    let existing = contact::ActiveModel {
        wa_id: Set(Some("393330000001".into())),
        name: Set(Some("Old name".into())),
        priority: Set(entity::Priority::Normal),
        is_vip: Set(false),
        consent: Set(ConsentState::Unknown),
        fields: Set(json!({"size": "M"})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.domain.db)
    .await
    .unwrap();
    let crm = contact::ActiveModel {
        wa_id: Set(Some("393330000002".into())),
        external_id: Set(Some("CRM-2".into())),
        priority: Set(entity::Priority::Normal),
        is_vip: Set(false),
        consent: Set(ConsentState::Unknown),
        fields: Set(json!({})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.domain.db)
    .await
    .unwrap();

    let csv = "waId,name,consent,tags,externalId,priority\r\n\
393331111111,\"Rossi, Mario\",opted_in,VIP,CRM-1,high\r\n\
not-a-number,Bad Number,,,,\r\n\
393330000001,New name,opted_out,,,\r\n\
393332222222,Maybe,maybe,,,\r\n\
393333333333,Unknown tag,,Gold,,\r\n\
393334444444,too,many,values,,,,\r\n\
393330000001,Steals a number,,VIP,CRM-2,\r\n\
393335555555,\"Line\nbreak\",,,,low\r\n";
    let report = import(&app, "CSV", csv).await;
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["updated"], 1, "{report}");
    assert_eq!(
        error_lines(&report),
        vec![
            (3, Some("waId".into())),
            (5, Some("consent".into())),
            (6, Some("tags".into())),
            (7, None),
            (8, Some("waId".into())),
        ],
        "{report}"
    );
    assert!(
        report["errors"][2]["reason"]
            .as_str()
            .unwrap()
            .contains("Gold")
    );

    let mario = by_wa(&app, "393331111111")
        .await
        .expect("good row imported");
    assert_eq!(mario.name.as_deref(), Some("Rossi, Mario"));
    assert_eq!(mario.consent, ConsentState::OptedIn);
    assert_eq!(mario.external_id.as_deref(), Some("CRM-1"));
    assert_eq!(mario.priority, entity::Priority::High);
    let tags = contact_tag::Entity::find()
        .filter(contact_tag::Column::ContactId.eq(mario.id))
        .all(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].tag_id, vip);
    let updated = by_wa(&app, "393330000001").await.unwrap();
    assert_eq!(updated.id, existing.id);
    assert_eq!(updated.name.as_deref(), Some("New name"));
    assert_eq!(updated.consent, ConsentState::OptedOut);
    assert_eq!(
        updated.fields,
        json!({"size": "M"}),
        "fields not in the file are kept"
    );
    assert_eq!(
        by_wa(&app, "393335555555").await.unwrap().name.as_deref(),
        Some("Line\nbreak")
    );
    for bad in ["393332222222", "393333333333", "393334444444"] {
        assert!(
            by_wa(&app, bad).await.is_none(),
            "{bad} must not be written"
        );
    }
    // The conflicting row wrote nothing: the CRM contact keeps its number and no tag.
    let crm_after = contact::Entity::find_by_id(crm.id)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(crm_after.wa_id.as_deref(), Some("393330000002"));
    assert_eq!(
        contact_tag::Entity::find()
            .filter(contact_tag::Column::ContactId.eq(crm.id))
            .count(&app.domain.db)
            .await
            .unwrap(),
        0
    );
    // Every written row is audited.
    let audit = app
        .gql(
            &app.admin_token,
            "{ auditLog(filter:{action:\"contact.import\"}){ edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        audit.data()["auditLog"]["edges"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn a_json_import_reports_rows_by_position() {
    let app = spawn_app().await;
    let data = json!([
        {"waId": "+39 333 777 8888", "name": "Anna", "isVip": true, "fields": {"city": "Milano"}},
        "not an object",
        {"waId": "393339999999", "priority": "enormous"},
        {"name": "nobody"},
    ])
    .to_string();
    let report = import(&app, "JSON", &data).await;
    assert_eq!(report["created"], 1);
    assert_eq!(
        error_lines(&report),
        vec![(2, None), (3, Some("priority".into())), (4, None)]
    );
    let anna = by_wa(&app, "393337778888").await.unwrap();
    assert!(anna.is_vip);
    assert_eq!(anna.fields, json!({"city": "Milano"}));
    let r = app
        .gql(
            &app.admin_token,
            "mutation { importContacts(format:JSON, data:\"{\") { created } }",
            json!({}),
        )
        .await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "data");
}

#[tokio::test]
async fn contacts_export_by_segment_and_conversations_by_period() {
    let app = spawn_app().await;
    tag(&app, "VIP").await;
    let csv = "waId,name,consent,tags\n393331000001,Alice,opted_in,VIP\n393331000002,Bob,opted_out,VIP\n393331000003,Carol,opted_in,\n";
    assert_eq!(import(&app, "CSV", csv).await["created"], 3);
    let vip_id = app
        .gql(&app.admin_token, "{ tags { id name } }", json!({}))
        .await
        .data()["tags"][0]["id"]
        .clone();
    let r = app
        .gql(
            &app.admin_token,
            "query($t:ID){ exportContacts(format:CSV, segment:{tagId:$t, consent:OPTED_IN}) }",
            json!({"t": vip_id}),
        )
        .await;
    let text = r.data()["exportContacts"].as_str().unwrap().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("id,waId,phone,name"));
    assert!(lines[1].contains("393331000001") && lines[1].contains("Alice"));
    let r = app
        .gql(
            &app.admin_token,
            "{ exportContacts(format:JSON, segment:{consent:OPTED_IN}) }",
            json!({}),
        )
        .await;
    let rows: Value = serde_json::from_str(r.data()["exportContacts"].as_str().unwrap()).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alice", "Carol"]);
    // The exported CSV imports again (round trip: updates, no errors).
    let all = app
        .gql(
            &app.admin_token,
            "{ exportContacts(format:CSV) }",
            json!({}),
        )
        .await;
    let again = import(&app, "CSV", all.data()["exportContacts"].as_str().unwrap()).await;
    assert_eq!(
        (
            again["updated"].as_i64(),
            again["errors"].as_array().map(Vec::len)
        ),
        (Some(3), Some(0)),
        "{again}"
    );

    // Conversations: one inside the period with two messages, one before it.
    let channel = app.seed_channel().await;
    let old = app.seed_conversation(channel, None).await;
    app.clock.advance(Duration::days(3));
    let from = app.now() - Duration::hours(1);
    let recent = app.seed_conversation(channel, None).await;
    seed_message(&app, recent, channel, "Where is my parcel?", true).await;
    seed_message(&app, recent, channel, "It ships today, \"promise\"", false).await;
    seed_message(&app, old, channel, "old question", true).await;
    let to = app.now() + Duration::hours(1);
    let admin = app
        .login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await;
    let r = app
        .gql(
            &admin,
            "query($f:DateTime!,$t:DateTime!){ exportConversations(format:JSON, from:$f, to:$t) }",
            json!({"f": from.to_rfc3339(), "t": to.to_rfc3339()}),
        )
        .await;
    let convs: Value =
        serde_json::from_str(r.data()["exportConversations"].as_str().unwrap()).unwrap();
    let convs = convs.as_array().unwrap();
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["conversationId"], recent.to_string());
    let texts: Vec<&str> = convs[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["Where is my parcel?", "It ships today, \"promise\""]
    );
    let r = app
        .gql(
            &admin,
            "query($f:DateTime!,$t:DateTime!){ exportConversations(format:CSV, from:$f, to:$t) }",
            json!({"f": from.to_rfc3339(), "t": to.to_rfc3339()}),
        )
        .await;
    let csv = r.data()["exportConversations"].as_str().unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("\"It ships today, \"\"promise\"\"\""), "{csv}");
    assert!(!csv.contains("old question"));
}
