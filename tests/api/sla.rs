//! SLA management with an injected clock: due times in business time,
//! pause and resume, warnings and both kinds of escalation exactly once (also
//! with two instances on one database), the 5-minute alert for important
//! conversations, breaches and notices, reports on a known data set.

use std::path::PathBuf;

use chrono::{DateTime, Duration, TimeZone, Utc};
use entity::{
    AssignmentKind, ConversationStatus, SenderKind, SlaKind, SlaLevel, assignment, audit_log,
    conversation, message, outbox, sla_event,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with, spawn_instance,
};
use crate::subscriptions::{TRANSPORT, next_data, quiet, session, subscribe};

const NUMBER_ID: &str = "106540352249999";

async fn desk_on(app: TestApp) -> TestApp {
    app.gql(
        &app.admin_token,
        "mutation($n:String!){ createChannel(input:{name:\"Shop\", phoneNumberId:$n, accessToken:\"t\"}) { id } }",
        json!({"n": NUMBER_ID}),
    )
    .await
    .data();
    app
}

async fn desk() -> TestApp {
    desk_on(spawn_app().await).await
}

/// The customer `wa_id` writes now; returns the conversation.
async fn customer_writes(app: &TestApp, wa_id: &str, body: &str) -> i64 {
    let id = format!("wamid.{}", uuid::Uuid::new_v4().simple());
    let delivery = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": NUMBER_ID},
        "contacts": [{"profile": {"name": "Cliente"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": id, "timestamp": app.now().timestamp().to_string(),
            "type": "text", "text": {"body": body}}],
    }}]}]});
    let resp = app
        .client
        .post(format!("{}/webhooks/whatsapp", app.address))
        .json(&delivery)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let m = message::Entity::find()
        .filter(message::Column::WaMessageId.eq(id))
        .one(&app.domain.db)
        .await
        .unwrap()
        .expect("stored");
    m.conversation_id
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_str().expect("id").parse().expect("numeric id")
}

async fn create_policy(app: &TestApp, input: Value) -> i64 {
    let r = app
        .gql(
            &app.admin_token,
            "mutation($i: SlaPolicyInput!){ createSlaPolicy(input:$i){ id } }",
            json!({ "i": input }),
        )
        .await;
    id_of(&r.data()["createSlaPolicy"])
}

async fn rome_office(app: &TestApp, holidays: Value) -> i64 {
    let day = |d: &str| json!({"day": d, "open": "09:00", "close": "18:00"});
    let r = app
        .gql(
            &app.admin_token,
            "mutation($i: BusinessHoursInput!){ createBusinessHours(input:$i){ id timeZone schedule { day open close } holidays { date } } }",
            json!({"i": {"name": "Rome office", "timeZone": "Europe/Rome",
                "schedule": [day("MONDAY"), day("TUESDAY"), day("WEDNESDAY"), day("THURSDAY"), day("FRIDAY")],
                "holidays": holidays}}),
        )
        .await;
    let bh = &r.data()["createBusinessHours"];
    assert_eq!(bh["timeZone"], "Europe/Rome");
    assert_eq!(bh["schedule"].as_array().unwrap().len(), 5);
    id_of(bh)
}

const SLA: &str = "query($id:ID!){ conversation(id:$id){ priority sla { policyName firstResponseDueAt resolutionDueAt firstResponseTargetSeconds firstResponseRemainingSeconds paused warning breached firstResponseMet events { kind level lateSeconds } } } }";

/// An admin token valid at the test clock's time (access tokens last 15 minutes).
async fn admin(app: &TestApp) -> String {
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
}

async fn sla_of(app: &TestApp, conversation: i64) -> Value {
    let r = app
        .gql(
            &admin(app).await,
            SLA,
            json!({"id": conversation.to_string()}),
        )
        .await;
    r.data()["conversation"]["sla"].clone()
}

fn at(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

async fn events_of(app: &TestApp, conversation: i64) -> Vec<(SlaKind, SlaLevel)> {
    let mut rows: Vec<(SlaKind, SlaLevel)> = sla_event::Entity::find()
        .filter(sla_event::Column::ConversationId.eq(conversation))
        .all(&app.domain.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.level))
        .collect();
    rows.sort_by_key(|(k, l)| (format!("{k:?}"), format!("{l:?}")));
    rows
}

async fn notices_of(app: &TestApp, conversation: i64) -> Vec<String> {
    let rows = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation))
        .filter(message::Column::SenderKind.eq(SenderKind::System))
        .all(&app.domain.db)
        .await
        .unwrap();
    for m in &rows {
        let queued = outbox::Entity::find()
            .filter(outbox::Column::MessageId.eq(m.id))
            .count(&app.domain.db)
            .await
            .unwrap();
        assert_eq!(queued, 1, "every notice goes through the outbox");
    }
    rows.into_iter().filter_map(|m| m.body).collect()
}

#[tokio::test]
async fn a_message_on_friday_night_is_due_on_monday_morning_in_business_time() {
    let app = desk().await;
    let hours = rome_office(&app, json!([])).await;
    create_policy(
        &app,
        json!({"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 3600,
            "businessHoursId": hours.to_string(), "isDefault": true}),
    )
    .await;
    // Friday 2026-11-27 21:55 in Rome (UTC+1).
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 27, 20, 55, 0).unwrap());
    let c = customer_writes(&app, "393330000001", "Ciao, il mio ordine?").await;
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["policyName"], "Standard");
    // Monday 09:10 and 10:00 Rome time.
    assert_eq!(
        at(&sla["firstResponseDueAt"]),
        Utc.with_ymd_and_hms(2026, 11, 30, 8, 10, 0).unwrap()
    );
    assert_eq!(
        at(&sla["resolutionDueAt"]),
        Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
    );
    // Over the weekend no business time passes.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap());
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["firstResponseRemainingSeconds"], 600);
    assert_eq!(sla["warning"], false);
    let report = app.domain.run_sla_sweep().await.unwrap();
    assert_eq!(report.warnings + report.breaches, 0);
    // The acknowledgement can state the target.
    let row = app.conversation_row(c).await;
    assert_eq!(
        app.domain
            .first_response_target_minutes(&row)
            .await
            .unwrap(),
        10
    );
    // In the language detected from the customer's Italian message.
    assert_eq!(row.language.as_deref(), Some("it"));
    assert_eq!(
        app.domain.first_response_target_text(&row).await.unwrap(),
        "Ti risponderemo entro 10 minuti."
    );
}

#[tokio::test]
async fn a_holiday_moves_the_due_time_to_the_next_working_day() {
    let app = desk().await;
    let hours = rome_office(&app, json!([{"date": "2026-12-08", "name": "Immacolata"}])).await;
    create_policy(
        &app,
        json!({"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 3600,
            "businessHoursId": hours.to_string()}),
    )
    .await;
    // Monday 2026-12-07 17:55 Rome; Tuesday is a holiday.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 7, 16, 55, 0).unwrap());
    let c = customer_writes(&app, "393330000002", "Buonasera").await;
    let sla = sla_of(&app, c).await;
    assert_eq!(
        at(&sla["firstResponseDueAt"]),
        Utc.with_ymd_and_hms(2026, 12, 9, 8, 5, 0).unwrap()
    );
}

#[tokio::test]
async fn waiting_on_the_customer_pauses_the_clock_and_their_reply_resumes_it() {
    let app = desk().await;
    let start = app.now();
    let c = customer_writes(&app, "393330000003", "Ho un problema").await;
    let sla = sla_of(&app, c).await;
    // Built-in defaults: 10 minutes around the clock.
    assert_eq!(sla["firstResponseTargetSeconds"], 600);
    let first_due = at(&sla["firstResponseDueAt"]);
    assert_eq!(first_due, start + Duration::minutes(10));

    app.clock.advance(Duration::minutes(4));
    app.gql(
        &app.admin_token,
        "mutation($id:ID!){ setWaitingOnCustomer(conversationId:$id, waiting:true){ status } }",
        json!({"id": c.to_string()}),
    )
    .await
    .data();
    assert_eq!(
        app.conversation_row(c).await.status,
        ConversationStatus::Pending
    );
    app.clock.advance(Duration::minutes(30));
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["paused"], true);
    assert_eq!(sla["firstResponseRemainingSeconds"], 360);
    let report = app.domain.run_sla_sweep().await.unwrap();
    assert_eq!(report.warnings + report.breaches, 0, "{report:?}");

    // The customer answers: 6 minutes left, from now.
    customer_writes(&app, "393330000003", "Ecco il numero d'ordine").await;
    let resumed = app.now();
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["paused"], false);
    assert_eq!(
        at(&sla["firstResponseDueAt"]),
        resumed + Duration::minutes(6)
    );
    assert_eq!(
        app.conversation_row(c).await.status,
        ConversationStatus::Open
    );
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("conversation.waiting"))
        .count(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn at_80_percent_a_warning_and_a_hierarchical_escalation_happen_exactly_once() {
    let app = desk().await;
    let (manager, _) = app.staff("Manuela", "EDITOR").await;
    create_policy(
        &app,
        json!({"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 86400,
            "escalationKind": "HIERARCHICAL", "escalateToUserId": manager.to_string()}),
    )
    .await;
    let mut ws = session(&app, TRANSPORT, &app.admin_token).await;
    subscribe(
        &mut ws,
        TRANSPORT,
        "1",
        "subscription { slaAlert { conversationId kind level cycle } }",
        json!({}),
    )
    .await;
    let c = customer_writes(&app, "393330000004", "Serve aiuto").await;
    app.clock
        .advance(Duration::minutes(7) + Duration::seconds(59));
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().warnings, 0);

    app.clock.advance(Duration::seconds(1));
    // Two sweeps at once (two workers): one warning, one escalation.
    let (a, b) = tokio::join!(app.domain.run_sla_sweep(), app.domain.run_sla_sweep());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.warnings + b.warnings, 1, "{a:?} {b:?}");
    assert_eq!(a.escalations + b.escalations, 1, "{a:?} {b:?}");
    assert_eq!(
        events_of(&app, c).await,
        vec![
            (SlaKind::FirstResponse, SlaLevel::Escalation),
            (SlaKind::FirstResponse, SlaLevel::Warning)
        ]
    );
    let row = app.conversation_row(c).await;
    assert_eq!(row.assignee_id, Some(manager));
    assert_eq!(row.escalation_level, 1);
    let history = assignment::Entity::find()
        .filter(assignment::Column::ConversationId.eq(c))
        .filter(assignment::Column::Kind.eq(AssignmentKind::Escalation))
        .count(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(history, 1);
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("sla.escalate"))
        .count(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(audited, 1);

    let mut levels = vec![];
    for _ in 0..2 {
        let data = next_data(&mut ws).await;
        assert_eq!(data["slaAlert"]["conversationId"], c.to_string());
        assert_eq!(data["slaAlert"]["kind"], "first_response");
        assert_eq!(data["slaAlert"]["cycle"], 0);
        levels.push(data["slaAlert"]["level"].as_str().unwrap().to_string());
    }
    levels.sort();
    assert_eq!(levels, ["escalation", "warning"]);

    // Later sweeps do not repeat them.
    app.clock.advance(Duration::seconds(30));
    let again = app.domain.run_sla_sweep().await.unwrap();
    assert_eq!(again.warnings + again.escalations, 0);
    assert_eq!(app.conversation_row(c).await.escalation_level, 1);
    quiet(&mut ws, std::time::Duration::from_millis(300)).await;
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["warning"], true);
    assert_eq!(sla["breached"], false);
    assert_eq!(sla["firstResponseRemainingSeconds"], 90);
}

#[tokio::test]
async fn billing_unanswered_for_20_minutes_is_transferred_and_the_customer_told_in_italian() {
    let app = desk().await;
    let billing = app.department("Billing", "SMART").await;
    // 25 minutes, escalation at 80 %: after 20 minutes.
    create_policy(
        &app,
        json!({"name": "Billing questions", "firstResponseSeconds": 1500, "resolutionSeconds": 86400,
            "escalationKind": "FUNCTIONAL", "escalateToDepartmentId": billing.to_string()}),
    )
    .await;
    let c = customer_writes(&app, "393330000005", "Buongiorno, ho una domanda").await;
    conversation::Entity::update_many()
        .col_expr(conversation::Column::Language, Expr::value("it"))
        .filter(conversation::Column::Id.eq(c))
        .exec(&app.domain.db)
        .await
        .unwrap();
    app.clock.advance(Duration::minutes(19));
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().escalations, 0);
    app.clock.advance(Duration::minutes(1));
    let report = app.domain.run_sla_sweep().await.unwrap();
    assert_eq!(report.escalations, 1, "{report:?}");
    let row = app.conversation_row(c).await;
    assert_eq!(row.department_id, Some(billing));
    assert_eq!(row.assignee_id, None);
    assert_eq!(row.escalation_level, 1);
    assert_eq!(
        notices_of(&app, c).await,
        vec!["La tua domanda è stata trasferita al nostro team Billing.".to_string()]
    );
    // Once only.
    app.clock.advance(Duration::minutes(1));
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().escalations, 0);
    assert_eq!(notices_of(&app, c).await.len(), 1);
}

#[tokio::test]
async fn an_important_conversation_waiting_over_5_minutes_raises_one_alert() {
    let app = desk().await;
    create_policy(
        &app,
        json!({"name": "VIP", "priority": "HIGH", "firstResponseSeconds": 900, "resolutionSeconds": 86400}),
    )
    .await;
    let c = customer_writes(&app, "393330000006", "Sono un cliente VIP").await;
    // Built-in defaults until the priority changes.
    assert_eq!(sla_of(&app, c).await["firstResponseTargetSeconds"], 600);
    app.clock.advance(Duration::minutes(1));
    app.gql(
        &app.admin_token,
        "mutation($c:ID!){ setPriority(conversationId:$c, priority:HIGH){ id } }",
        json!({"c": c.to_string()}),
    )
    .await
    .data();
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["policyName"], "VIP");
    // One minute used, fourteen left of the VIP policy's 15.
    assert_eq!(sla["firstResponseRemainingSeconds"], 14 * 60);

    app.clock
        .advance(Duration::minutes(3) + Duration::seconds(59));
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().alerts, 0);
    app.clock.advance(Duration::seconds(1));
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().alerts, 1);
    app.clock.advance(Duration::minutes(1));
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().alerts, 0);
    assert_eq!(
        events_of(&app, c).await,
        vec![(SlaKind::ImportantWait, SlaLevel::Alert)]
    );
    // A normal conversation waiting as long raises none.
    let normal = customer_writes(&app, "393330000007", "Domanda").await;
    app.clock.advance(Duration::minutes(6));
    app.domain.run_sla_sweep().await.unwrap();
    assert!(
        !events_of(&app, normal)
            .await
            .contains(&(SlaKind::ImportantWait, SlaLevel::Alert))
    );
}

#[tokio::test]
async fn a_breach_is_recorded_with_how_late_and_the_customer_is_told() {
    let app = desk().await;
    create_policy(
        &app,
        json!({"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 86400,
            "notifyCustomerOnBreach": true}),
    )
    .await;
    let c = customer_writes(&app, "393330000008", "Hello?").await;
    app.clock.advance(Duration::minutes(12));
    let report = app.domain.run_sla_sweep().await.unwrap();
    assert_eq!(
        (report.warnings, report.escalations, report.breaches),
        (1, 1, 1)
    );
    let breach = sla_event::Entity::find()
        .filter(sla_event::Column::ConversationId.eq(c))
        .filter(sla_event::Column::Level.eq(SlaLevel::Breach))
        .one(&app.domain.db)
        .await
        .unwrap()
        .expect("breach row");
    assert_eq!(breach.late_secs, Some(120));
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["breached"], true);
    assert_eq!(sla["firstResponseRemainingSeconds"], -120);
    assert_eq!(
        notices_of(&app, c).await,
        vec!["We are sorry for the wait: an agent will reply as soon as possible.".to_string()]
    );
    app.clock.advance(Duration::minutes(5));
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().breaches, 0);
    assert_eq!(notices_of(&app, c).await.len(), 1);

    // The at-risk list shows it first, with how late it is.
    let other = customer_writes(&app, "393330000009", "Hi").await;
    app.clock.advance(Duration::minutes(9));
    let r = app
        .gql(
            &admin(&app).await,
            "{ slaAtRisk { conversation { id } kind remainingSeconds breached } }",
            json!({}),
        )
        .await;
    let list = r.data()["slaAtRisk"].as_array().unwrap().clone();
    let firsts: Vec<(String, i64)> = list
        .iter()
        .filter(|x| x["kind"] == "FIRST_RESPONSE")
        .map(|x| {
            (
                x["conversation"]["id"].as_str().unwrap().to_string(),
                x["remainingSeconds"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        firsts,
        vec![(c.to_string(), -16 * 60), (other.to_string(), 60)]
    );
}

#[tokio::test]
async fn an_agents_reply_stops_the_first_response_clock() {
    let app = desk().await;
    let c = customer_writes(&app, "393330000010", "Ciao").await;
    app.clock.advance(Duration::minutes(3));
    app.gql(
        &app.admin_token,
        "mutation($id:ID!){ sendMessage(input:{conversationId:$id, text:\"Eccomi\"}){ id } }",
        json!({"id": c.to_string()}),
    )
    .await
    .data();
    app.clock.advance(Duration::minutes(20));
    let report = app.domain.run_sla_sweep().await.unwrap();
    assert_eq!(report.warnings + report.breaches, 0, "{report:?}");
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["firstResponseMet"], true);
    assert_eq!(sla["breached"], false);
}

/// Removes a SQLite database file at the end of a test.
struct TempDb(Option<PathBuf>);

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

#[tokio::test]
async fn two_instances_on_one_database_escalate_and_breach_exactly_once() {
    let sqlite = std::env::var("TEST_DATABASE_URL")
        .is_err()
        .then(|| std::env::temp_dir().join(format!("hd-sla-{}.db", uuid::Uuid::new_v4())));
    let _cleanup = TempDb(sqlite.clone());
    let a = spawn_app_with(|c| {
        if let Some(path) = &sqlite {
            c.database_url = format!("sqlite://{}?mode=rwc", path.display());
        }
    })
    .await;
    let b = spawn_instance(&a, |_| {}).await;
    let a = desk_on(a).await;
    let billing = a.department("Billing", "SMART").await;
    create_policy(
        &a,
        json!({"name": "Billing", "firstResponseSeconds": 600, "resolutionSeconds": 86400,
            "escalationKind": "FUNCTIONAL", "escalateToDepartmentId": billing.to_string(),
            "notifyCustomerOnBreach": true}),
    )
    .await;
    let mut conversations = vec![];
    for i in 0..8 {
        conversations.push(customer_writes(&a, &format!("39333100{i:04}"), "Buongiorno").await);
    }
    a.clock.advance(Duration::minutes(11));
    let (ra, rb) = tokio::join!(a.domain.run_sla_sweep(), b.domain.run_sla_sweep());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.escalations + rb.escalations, 8, "{ra:?} {rb:?}");
    assert_eq!(ra.breaches + rb.breaches, 8, "{ra:?} {rb:?}");
    assert_eq!(ra.warnings + rb.warnings, 8, "{ra:?} {rb:?}");
    for c in conversations {
        assert_eq!(
            events_of(&a, c).await,
            vec![
                (SlaKind::FirstResponse, SlaLevel::Breach),
                (SlaKind::FirstResponse, SlaLevel::Escalation),
                (SlaKind::FirstResponse, SlaLevel::Warning)
            ]
        );
        let row = a.conversation_row(c).await;
        assert_eq!(row.escalation_level, 1);
        assert_eq!(row.department_id, Some(billing));
        // One transfer notice and one breach notice, never twice.
        assert_eq!(notices_of(&a, c).await.len(), 2);
    }
}

#[tokio::test]
async fn policy_and_business_hours_input_is_checked_and_names_the_field() {
    let app = desk().await;
    let bad = |input: Value| {
        let app = &app;
        async move {
            let r = app
                .gql(
                    &app.admin_token,
                    "mutation($i: SlaPolicyInput!){ createSlaPolicy(input:$i){ id } }",
                    json!({ "i": input }),
                )
                .await;
            r.assert_code("BAD_USER_INPUT");
            r.body["errors"][0]["extensions"]["field"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let base = json!({"name": "P", "firstResponseSeconds": 600, "resolutionSeconds": 3600});
    let with = |k: &str, v: Value| {
        let mut i = base.clone();
        i[k] = v;
        i
    };
    assert_eq!(
        bad(with("firstResponseSeconds", json!(0))).await,
        "firstResponseSeconds"
    );
    assert_eq!(
        bad(with("resolutionSeconds", json!(-1))).await,
        "resolutionSeconds"
    );
    assert_eq!(bad(with("warnPercent", json!(100))).await, "warnPercent");
    assert_eq!(bad(with("warnPercent", json!(0))).await, "warnPercent");
    assert_eq!(
        bad(with("escalationKind", json!("FUNCTIONAL"))).await,
        "escalateToDepartmentId"
    );
    assert_eq!(
        bad(with(
            "topicTolerances",
            json!([{"topic": "logistics", "seconds": 0}])
        ))
        .await,
        "topicTolerances"
    );
    assert_eq!(
        bad(with("businessHoursId", json!("999"))).await,
        "businessHoursId"
    );

    let r = app
        .gql(
            &app.admin_token,
            "mutation($i: BusinessHoursInput!){ createBusinessHours(input:$i){ id } }",
            json!({"i": {"name": "X", "timeZone": "Europe/Atlantis", "schedule": [{"day": "MONDAY", "open": "09:00", "close": "18:00"}]}}),
        )
        .await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "timeZone");
    let r = app
        .gql(
            &app.admin_token,
            "mutation($i: BusinessHoursInput!){ createBusinessHours(input:$i){ id } }",
            json!({"i": {"name": "X", "timeZone": "Europe/Rome", "schedule": [{"day": "MONDAY", "open": "18:00", "close": "09:00"}]}}),
        )
        .await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "schedule");

    // A valid one is audited; an Editor may not change policies.
    let id = create_policy(&app, base.clone()).await;
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("sla_policy.create"))
        .filter(audit_log::Column::EntityId.eq(id.to_string()))
        .count(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(audited, 1);
    let (_, editor) = app.staff("Edo", "EDITOR").await;
    app.gql(
        &editor,
        "mutation($i: SlaPolicyInput!){ createSlaPolicy(input:$i){ id } }",
        json!({ "i": base }),
    )
    .await
    .assert_code("FORBIDDEN");
}

/// Seeds a conversation with its clocks as given, relative to `t0`.
#[allow(clippy::too_many_arguments)]
async fn seeded(
    app: &TestApp,
    channel: i64,
    policy: Option<i64>,
    agent: Option<i64>,
    created: DateTime<Utc>,
    first_response_after: Option<i64>,
    resolved_after: Option<i64>,
    escalated: bool,
) -> i64 {
    let id = app.seed_conversation(channel, agent).await;
    let minutes = |m: i64| created + Duration::minutes(m);
    let status = if resolved_after.is_some() {
        ConversationStatus::Resolved
    } else {
        ConversationStatus::Open
    };
    conversation::Entity::update_many()
        .col_expr(conversation::Column::SlaPolicyId, Expr::value(policy))
        .col_expr(conversation::Column::CreatedAt, Expr::value(created))
        .col_expr(conversation::Column::Status, Expr::value(status))
        .col_expr(
            conversation::Column::FirstResponseDueAt,
            Expr::value(minutes(10)),
        )
        .col_expr(
            conversation::Column::FirstResponseAt,
            Expr::value(first_response_after.map(minutes)),
        )
        .col_expr(
            conversation::Column::ResolutionDueAt,
            Expr::value(minutes(60)),
        )
        .col_expr(
            conversation::Column::ResolvedAt,
            Expr::value(resolved_after.map(minutes)),
        )
        .col_expr(
            conversation::Column::EscalationLevel,
            Expr::value(i32::from(escalated)),
        )
        .filter(conversation::Column::Id.eq(id))
        .exec(&app.domain.db)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn compliance_and_escalation_rates_match_a_known_data_set() {
    let app = spawn_app().await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap());
    let channel = app.seed_channel().await;
    let (anna, _) = app.staff("Anna", "AGENT").await;
    let (bruno, _) = app.staff("Bruno", "AGENT").await;
    let a = create_policy(
        &app,
        json!({"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 3600}),
    )
    .await;
    let b = create_policy(
        &app,
        json!({"name": "VIP", "priority": "HIGH", "firstResponseSeconds": 600, "resolutionSeconds": 3600}),
    )
    .await;
    // November: policy A, 10 conversations by Anna. First response: 8 in time,
    // 2 late. Resolution: 6 in time, 2 late, 2 still open past due. One escalated.
    let nov = |d: u32| Utc.with_ymd_and_hms(2026, 11, d, 10, 0, 0).unwrap();
    for i in 0..10 {
        let fr = if i < 8 { Some(5) } else { Some(15) };
        let res = match i {
            0..=5 => Some(30),
            6 | 7 => Some(90),
            _ => None,
        };
        seeded(
            &app,
            channel,
            Some(a),
            Some(anna),
            nov(2 + i as u32),
            fr,
            res,
            i == 9,
        )
        .await;
    }
    // Policy B, Bruno: 3 answered in time and resolved in time, 1 still
    // running (created a minute ago: nothing decided yet). Two escalated.
    for i in 0..3 {
        seeded(
            &app,
            channel,
            Some(b),
            Some(bruno),
            nov(20 + i),
            Some(2),
            Some(20),
            i < 2,
        )
        .await;
    }
    let running = app.now() - Duration::minutes(1);
    seeded(
        &app,
        channel,
        Some(b),
        Some(bruno),
        running,
        None,
        None,
        false,
    )
    .await;
    // October: policy A, 4 conversations, all first responses in time, resolutions in time.
    for i in 0..4 {
        let oct = Utc.with_ymd_and_hms(2026, 10, 5 + i, 10, 0, 0).unwrap();
        seeded(
            &app,
            channel,
            Some(a),
            Some(anna),
            oct,
            Some(5),
            Some(30),
            false,
        )
        .await;
    }

    let q = "query($f:DateTime!,$t:DateTime!,$g:SlaGroupBy){ slaReport(from:$f, to:$t, groupBy:$g){ key conversations firstResponseDecided firstResponseMet firstResponseCompliance resolutionDecided resolutionMet complianceRate meetsComplianceTarget escalated escalationRate escalationWithinLimit } }";
    let (_, analyst) = app.staff("Ana", "ANALYST").await;
    let r = app
        .gql(
            &analyst,
            q,
            json!({"f": "2026-11-01T00:00:00Z", "t": "2026-12-01T00:00:00Z", "g": "POLICY"}),
        )
        .await;
    let rows = r.data()["slaReport"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let ra = rows
        .iter()
        .find(|r| r["key"] == json!(a.to_string()))
        .unwrap();
    assert_eq!(ra["conversations"], 10);
    assert_eq!(ra["firstResponseDecided"], 10);
    assert_eq!(ra["firstResponseMet"], 8);
    assert_eq!(ra["firstResponseCompliance"], 0.8);
    assert_eq!(ra["resolutionDecided"], 10);
    assert_eq!(ra["resolutionMet"], 6);
    assert_eq!(ra["complianceRate"], 0.7);
    assert_eq!(ra["meetsComplianceTarget"], false);
    assert_eq!(ra["escalationRate"], 0.1);
    assert_eq!(ra["escalationWithinLimit"], true);
    let rb = rows
        .iter()
        .find(|r| r["key"] == json!(b.to_string()))
        .unwrap();
    assert_eq!(rb["conversations"], 3);
    assert_eq!(rb["firstResponseCompliance"], 1.0);
    assert_eq!(rb["meetsComplianceTarget"], true);
    assert_eq!(rb["escalated"], 2);
    let rate = rb["escalationRate"].as_f64().unwrap();
    assert!((rate - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(rb["escalationWithinLimit"], false);

    // December so far: the running one, nothing decided.
    let r = app
        .gql(
            &analyst,
            q,
            json!({"f": "2026-12-01T00:00:00Z", "t": "2027-01-01T00:00:00Z", "g": "AGENT"}),
        )
        .await;
    let rows = r.data()["slaReport"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key"], bruno.to_string());
    assert_eq!(rows[0]["firstResponseDecided"], 0);
    assert_eq!(rows[0]["complianceRate"], Value::Null);

    // All of it, not grouped.
    let r = app
        .gql(
            &analyst,
            q,
            json!({"f": "2026-10-01T00:00:00Z", "t": "2027-01-01T00:00:00Z"}),
        )
        .await;
    let all = &r.data()["slaReport"][0];
    assert_eq!(all["key"], Value::Null);
    assert_eq!(all["conversations"], 18);
    assert_eq!(all["firstResponseDecided"], 17);
    assert_eq!(all["firstResponseMet"], 15);

    // The quarterly review: Q4 2026 per policy, month by month.
    let r = app
        .gql(
            &analyst,
            "{ slaQuarterlyReview(year:2026, quarter:4){ overall { conversations } policies { policyName months { month report { firstResponseCompliance conversations } } quarter { firstResponseCompliance } } } }",
            json!({}),
        )
        .await;
    let review = &r.data()["slaQuarterlyReview"];
    assert_eq!(review["overall"]["conversations"], 18);
    let standard = review["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policyName"] == "Standard")
        .unwrap();
    let months: Vec<(String, Value)> = standard["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["month"].as_str().unwrap().to_string(),
                m["report"]["firstResponseCompliance"].clone(),
            )
        })
        .collect();
    assert_eq!(
        months,
        vec![
            ("2026-10".to_string(), json!(1.0)),
            ("2026-11".to_string(), json!(0.8)),
            ("2026-12".to_string(), Value::Null),
        ]
    );
    let q = standard["quarter"]["firstResponseCompliance"]
        .as_f64()
        .unwrap();
    assert!((q - 12.0 / 14.0).abs() < 1e-9);

    // Agents do not read reports.
    let (_, agent) = app.staff("Agente", "AGENT").await;
    app.gql(
        &agent,
        "{ slaReport(from:\"2026-10-01T00:00:00Z\", to:\"2027-01-01T00:00:00Z\"){ conversations } }",
        json!({}),
    )
    .await
    .assert_code("FORBIDDEN");
}

#[tokio::test]
async fn an_agent_sees_the_sla_of_its_own_conversations_only() {
    let app = desk().await;
    let (agent, token) = app.staff("Agata", "AGENT").await;
    let mine = customer_writes(&app, "393330000020", "Ciao").await;
    let other = customer_writes(&app, "393330000021", "Ciao").await;
    app.gql(
        &app.admin_token,
        "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }",
        json!({"c": mine.to_string(), "a": agent.to_string()}),
    )
    .await
    .data();
    let q = "query($id:ID!){ slaState(conversationId:$id){ firstResponseDueAt } }";
    app.gql(&token, q, json!({"id": mine.to_string()}))
        .await
        .data();
    app.gql(&token, q, json!({"id": other.to_string()}))
        .await
        .assert_code("FORBIDDEN");
    app.clock.advance(Duration::minutes(9));
    let r = app
        .gql(&token, "{ slaAtRisk { conversation { id } } }", json!({}))
        .await;
    let ids: Vec<&str> = r.data()["slaAtRisk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["conversation"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.to_string()]);
}

#[tokio::test]
async fn an_agent_hears_sla_alerts_of_its_own_conversations_only() {
    let app = desk().await;
    let (agent, token) = app.staff("Aldo", "AGENT").await;
    let mine = customer_writes(&app, "393330000030", "Ciao").await;
    let other = customer_writes(&app, "393330000031", "Ciao").await;
    app.gql(
        &app.admin_token,
        "mutation($c:ID!,$a:ID!){ assign(conversationId:$c, agentId:$a){ id } }",
        json!({"c": mine.to_string(), "a": agent.to_string()}),
    )
    .await
    .data();
    let mut ws = session(&app, TRANSPORT, &token).await;
    subscribe(
        &mut ws,
        TRANSPORT,
        "1",
        "subscription { slaAlert { conversationId level } }",
        json!({}),
    )
    .await;
    app.clock.advance(Duration::minutes(8));
    let report = app.domain.run_sla_sweep().await.unwrap();
    assert_eq!(report.warnings, 2);
    let mut seen = vec![];
    for _ in 0..2 {
        let data = next_data(&mut ws).await;
        seen.push(
            data["slaAlert"]["conversationId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(seen.iter().all(|c| *c == mine.to_string()), "{seen:?}");
    assert!(!seen.contains(&other.to_string()));
    quiet(&mut ws, std::time::Duration::from_millis(300)).await;
}

#[tokio::test]
async fn the_due_time_follows_the_end_of_summer_time_in_rome() {
    let app = desk().await;
    let hours = rome_office(&app, json!([])).await;
    create_policy(
        &app,
        json!({"name": "Standard", "firstResponseSeconds": 7200, "resolutionSeconds": 86400,
            "businessHoursId": hours.to_string()}),
    )
    .await;
    // Friday 2026-10-23 17:00 in Rome (UTC+2); summer time ends on Sunday.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 10, 23, 15, 0, 0).unwrap());
    let c = customer_writes(&app, "393330000040", "Salve").await;
    let sla = sla_of(&app, c).await;
    // One hour on Friday, one on Monday: 10:00 in Rome, now UTC+1.
    assert_eq!(
        at(&sla["firstResponseDueAt"]),
        Utc.with_ymd_and_hms(2026, 10, 26, 9, 0, 0).unwrap()
    );
}

#[tokio::test]
async fn a_topic_tolerance_replaces_the_first_response_target() {
    let app = desk().await;
    create_policy(
        &app,
        json!({"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 86400,
            "topicTolerances": [{"topic": "logistics", "seconds": 720}, {"topic": "price complaint", "seconds": 480}]}),
    )
    .await;
    let start = app.now();
    let c = customer_writes(&app, "393330000041", "Dov'è il mio pacco?").await;
    app.gql(
        &app.admin_token,
        "mutation($c:ID!){ setTopic(conversationId:$c, topic:\"Logistics\"){ id } }",
        json!({"c": c.to_string()}),
    )
    .await
    .data();
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["firstResponseTargetSeconds"], 720);
    assert_eq!(
        at(&sla["firstResponseDueAt"]),
        start + Duration::minutes(12)
    );
    // Warning at 80 % of 12 minutes.
    app.clock.advance(Duration::minutes(9));
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().warnings, 0);
    app.clock.advance(Duration::seconds(36));
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().warnings, 1);
}

#[tokio::test]
async fn reopening_starts_a_new_resolution_clock() {
    let app = desk().await;
    create_policy(
        &app,
        json!({"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 3600}),
    )
    .await;
    let c = customer_writes(&app, "393330000042", "Ciao").await;
    app.gql(
        &app.admin_token,
        "mutation($c:ID!){ resolve(conversationId:$c){ id } }",
        json!({"c": c.to_string()}),
    )
    .await
    .data();
    let sla = sla_of(&app, c).await;
    assert_eq!(sla["events"], json!([]));
    app.clock.advance(Duration::hours(3));
    let token = admin(&app).await;
    app.gql(
        &token,
        "mutation($c:ID!){ reopen(conversationId:$c){ id } }",
        json!({"c": c.to_string()}),
    )
    .await
    .data();
    let row = app.conversation_row(c).await;
    assert_eq!(row.resolution_due_at, Some(app.now() + Duration::hours(1)));
    // Resolved clocks are not swept; the reopened one runs again.
    app.clock.advance(Duration::minutes(50));
    let report = app.domain.run_sla_sweep().await.unwrap();
    assert!(
        events_of(&app, c)
            .await
            .contains(&(SlaKind::Resolution, SlaLevel::Warning)),
        "{report:?}"
    );
}

#[tokio::test]
async fn updating_business_hours_replaces_the_schedule_and_the_holidays() {
    let app = desk().await;
    let id = rome_office(&app, json!([{"date": "2026-12-08", "name": "Immacolata"}])).await;
    let r = app
        .gql(
            &app.admin_token,
            "mutation($id:ID!, $i: BusinessHoursInput!){ updateBusinessHours(id:$id, input:$i){ id } }",
            json!({"id": id.to_string(), "i": {"name": "Paris office", "timeZone": "Europe/Paris",
                "schedule": [{"day": "SATURDAY", "open": "10:00", "close": "12:30"}],
                "holidays": [{"date": "2026-12-25"}, {"date": "2026-12-26", "name": "Boxing Day"}]}}),
        )
        .await;
    r.data();
    let r = app
        .gql(
            &app.admin_token,
            "{ businessHours { id name timeZone schedule { day open close } holidays { date name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["businessHours"],
        json!([{"id": id.to_string(), "name": "Paris office", "timeZone": "Europe/Paris",
            "schedule": [{"day": "SATURDAY", "open": "10:00", "close": "12:30"}],
            "holidays": [{"date": "2026-12-25", "name": null}, {"date": "2026-12-26", "name": "Boxing Day"}]}])
    );
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("business_hours.update"))
        .count(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(audited, 1);
    let r = app
        .gql(
            &app.admin_token,
            "mutation($id:ID!, $i: BusinessHoursInput!){ updateBusinessHours(id:$id, input:$i){ id } }",
            json!({"id": id.to_string(), "i": {"name": "X", "timeZone": "Europe/Paris",
                "schedule": [{"day": "MONDAY", "open": "09:00", "close": "18:00"}],
                "holidays": [{"date": "2026-12-25"}, {"date": "2026-12-25"}]}}),
        )
        .await;
    r.assert_code("BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "holidays");
}

/// The resolution rows of a conversation as (cycle, level), sorted.
async fn resolution_rows(app: &TestApp, conversation: i64) -> Vec<(i32, String)> {
    let mut rows: Vec<(i32, String)> = sla_event::Entity::find()
        .filter(sla_event::Column::ConversationId.eq(conversation))
        .filter(sla_event::Column::Kind.eq(SlaKind::Resolution))
        .all(&app.domain.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.cycle, format!("{:?}", e.level)))
        .collect();
    rows.sort();
    rows
}

async fn resolve_and_reopen(app: &TestApp, c: i64) {
    let token = admin(app).await;
    for op in ["resolve", "reopen"] {
        app.gql(
            &token,
            &format!("mutation($c:ID!){{ {op}(conversationId:$c){{ id }} }}"),
            json!({"c": c.to_string()}),
        )
        .await
        .data();
    }
}

async fn escalations_audited(app: &TestApp, conversation: i64) -> u64 {
    audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("sla.escalate"))
        .filter(audit_log::Column::EntityId.eq(conversation.to_string()))
        .count(&app.domain.db)
        .await
        .unwrap()
}

fn each_cycle_once(cycles: i32) -> Vec<(i32, String)> {
    (0..cycles)
        .flat_map(|cycle| {
            ["Breach", "Escalation", "Warning"].map(|level| (cycle, level.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn a_reopened_conversation_can_breach_again_once_per_cycle() {
    let app = desk().await;
    create_policy(
        &app,
        json!({"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 3600}),
    )
    .await;
    let c = customer_writes(&app, "393330000050", "Ciao").await;
    app.gql(
        &app.admin_token,
        "mutation($id:ID!){ sendMessage(input:{conversationId:$id, text:\"Eccomi\"}){ id } }",
        json!({"id": c.to_string()}),
    )
    .await
    .data();
    for cycle in 1..=2 {
        app.clock.advance(Duration::minutes(61));
        let report = app.domain.run_sla_sweep().await.unwrap();
        assert_eq!(
            (report.warnings, report.escalations, report.breaches),
            (1, 1, 1),
            "cycle {cycle}: {report:?}"
        );
        let breach = sla_event::Entity::find()
            .filter(sla_event::Column::ConversationId.eq(c))
            .filter(sla_event::Column::Level.eq(SlaLevel::Breach))
            .filter(sla_event::Column::Cycle.eq(cycle - 1))
            .one(&app.domain.db)
            .await
            .unwrap()
            .expect("a breach row of this cycle");
        assert_eq!(breach.late_secs, Some(60));
        // Once per cycle.
        app.clock.advance(Duration::minutes(5));
        let again = app.domain.run_sla_sweep().await.unwrap();
        assert_eq!(again, Default::default(), "cycle {cycle}: {again:?}");
        assert_eq!(resolution_rows(&app, c).await, each_cycle_once(cycle));
        resolve_and_reopen(&app, c).await;
    }
    assert_eq!(app.conversation_row(c).await.escalation_level, 2);
    assert_eq!(escalations_audited(&app, c).await, 2);
    // The API lists every cycle's rows; the running third clock is not breached.
    let sla = app
        .gql(
            &admin(&app).await,
            "query($id:ID!){ conversation(id:$id){ sla { breached warning events { kind level cycle } } } }",
            json!({"id": c.to_string()}),
        )
        .await
        .data()["conversation"]["sla"]
        .clone();
    assert_eq!(
        (&sla["breached"], &sla["warning"]),
        (&json!(false), &json!(false))
    );
    let mut listed: Vec<(i32, String)> = sla["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "RESOLUTION")
        .map(|e| {
            let level = e["level"].as_str().unwrap();
            (
                e["cycle"].as_i64().unwrap() as i32,
                level[..1].to_string() + &level[1..].to_lowercase(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(listed, each_cycle_once(2));
    // The first-response clock was met once and is not swept again.
    assert!(
        !events_of(&app, c)
            .await
            .iter()
            .any(|(k, _)| *k == SlaKind::FirstResponse)
    );
}

#[tokio::test]
async fn two_instances_record_each_cycle_of_a_reopened_conversation_once() {
    let sqlite = std::env::var("TEST_DATABASE_URL")
        .is_err()
        .then(|| std::env::temp_dir().join(format!("hd-sla-{}.db", uuid::Uuid::new_v4())));
    let _cleanup = TempDb(sqlite.clone());
    let a = spawn_app_with(|c| {
        if let Some(path) = &sqlite {
            c.database_url = format!("sqlite://{}?mode=rwc", path.display());
        }
    })
    .await;
    let b = spawn_instance(&a, |_| {}).await;
    let a = desk_on(a).await;
    create_policy(
        &a,
        json!({"name": "Standard", "firstResponseSeconds": 86400, "resolutionSeconds": 3600}),
    )
    .await;
    let mut conversations = vec![];
    for i in 0..6 {
        conversations.push(customer_writes(&a, &format!("39333200{i:04}"), "Buongiorno").await);
    }
    for cycle in 1..=2 {
        a.clock.advance(Duration::minutes(61));
        let (ra, rb) = tokio::join!(a.domain.run_sla_sweep(), b.domain.run_sla_sweep());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.warnings + rb.warnings, 6, "cycle {cycle}: {ra:?} {rb:?}");
        assert_eq!(ra.escalations + rb.escalations, 6, "{ra:?} {rb:?}");
        assert_eq!(ra.breaches + rb.breaches, 6, "{ra:?} {rb:?}");
        let (ra, rb) = tokio::join!(a.domain.run_sla_sweep(), b.domain.run_sla_sweep());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.warnings + rb.warnings + ra.breaches + rb.breaches, 0);
        for &c in &conversations {
            assert_eq!(resolution_rows(&a, c).await, each_cycle_once(cycle));
            assert_eq!(a.conversation_row(c).await.escalation_level, cycle);
            assert_eq!(escalations_audited(&a, c).await, cycle as u64);
            resolve_and_reopen(&a, c).await;
        }
    }
}

#[tokio::test]
async fn the_important_wait_counts_business_time_and_pauses() {
    let app = desk().await;
    let hours = rome_office(&app, json!([])).await;
    create_policy(
        &app,
        json!({"name": "Office", "firstResponseSeconds": 3600, "resolutionSeconds": 86400,
            "businessHoursId": hours.to_string(), "isDefault": true}),
    )
    .await;
    let set_high = |c: i64| {
        let app = &app;
        async move {
            app.gql(
                &admin(app).await,
                "mutation($c:ID!){ setPriority(conversationId:$c, priority:HIGH){ id } }",
                json!({"c": c.to_string()}),
            )
            .await
            .data();
        }
    };
    let alerts = || async { app.domain.run_sla_sweep().await.unwrap().alerts };
    // Friday 2026-11-27 17:58 in Rome: two minutes of business time today.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 27, 16, 58, 0).unwrap());
    let c = customer_writes(&app, "393330000060", "Sono un cliente VIP").await;
    set_high(c).await;
    // Monday 09:03 Rome.
    let monday = Utc.with_ymd_and_hms(2026, 11, 30, 8, 3, 0).unwrap();
    assert_eq!(
        app.conversation_row(c).await.important_wait_due_at,
        Some(monday)
    );
    // Friday night, hours of wall time later: the office is closed.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 27, 21, 0, 0).unwrap());
    assert_eq!(alerts().await, 0);
    app.clock.set(monday - Duration::seconds(1));
    assert_eq!(alerts().await, 0);
    app.clock.set(monday);
    assert_eq!(alerts().await, 1);
    app.clock.advance(Duration::minutes(1));
    assert_eq!(alerts().await, 0);

    // Waiting on the customer pauses it: 2 minutes used, 3 left on resume.
    let c = customer_writes(&app, "393330000061", "Urgente").await;
    set_high(c).await;
    app.clock.advance(Duration::minutes(2));
    app.gql(
        &admin(&app).await,
        "mutation($id:ID!){ setWaitingOnCustomer(conversationId:$id, waiting:true){ status } }",
        json!({"id": c.to_string()}),
    )
    .await
    .data();
    app.clock.advance(Duration::minutes(30));
    assert_eq!(alerts().await, 0);
    customer_writes(&app, "393330000061", "Ecco").await;
    let resumed = app.now();
    assert_eq!(
        app.conversation_row(c).await.important_wait_due_at,
        Some(resumed + Duration::minutes(3))
    );
    app.clock
        .advance(Duration::minutes(3) - Duration::seconds(1));
    assert_eq!(alerts().await, 0);
    app.clock.advance(Duration::seconds(1));
    assert_eq!(alerts().await, 1);
    assert!(
        events_of(&app, c)
            .await
            .contains(&(SlaKind::ImportantWait, SlaLevel::Alert))
    );
}

#[tokio::test]
async fn a_sweep_reads_only_the_conversations_due_and_a_policy_edit_rechecks_its_own() {
    let app = desk().await;
    let input = |warn: i32| {
        json!({"name": "Standard", "firstResponseSeconds": 600, "resolutionSeconds": 86400,
            "warnPercent": warn})
    };
    let policy = create_policy(&app, input(80)).await;
    let c = customer_writes(&app, "393330000070", "Ciao").await;
    customer_writes(&app, "393330000071", "Ciao").await;
    // Stored when the clock started: the warning at 80 % of 10 minutes.
    assert_eq!(
        app.conversation_row(c).await.sla_next_at,
        Some(app.now() + Duration::minutes(8))
    );
    app.clock.advance(Duration::minutes(5));
    let report = app.domain.run_sla_sweep().await.unwrap();
    assert_eq!(report, Default::default(), "nothing is due yet: {report:?}");
    // At 50 % the warning is already due: the edit moves the next checks.
    app.gql(
        &admin(&app).await,
        "mutation($id:ID!, $i: SlaPolicyInput!){ updateSlaPolicy(id:$id, input:$i){ id } }",
        json!({"id": policy.to_string(), "i": input(50)}),
    )
    .await
    .data();
    let report = app.domain.run_sla_sweep().await.unwrap();
    assert_eq!(
        (report.examined, report.warnings, report.escalations),
        (2, 2, 2),
        "{report:?}"
    );
    // Next: the breach at 10 minutes.
    assert_eq!(
        app.conversation_row(c).await.sla_next_at,
        Some(app.now() + Duration::minutes(5))
    );
    assert_eq!(app.domain.run_sla_sweep().await.unwrap().examined, 0);
}
