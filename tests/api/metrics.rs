//! Metrics through GraphQL on a crafted data set whose answers are worked
//! out by hand below (SQLite always, PostgreSQL with TEST_DATABASE_URL).
//!
//! Range: Monday 2026-11-02 00:00Z to Wednesday 2026-11-04 00:00Z (2 days).
//! Agents A and B. Conversations of the range (FR/resolved/assigned are
//! offsets in seconds from creation):
//!
//! | conv | created (UTC) | contact | FR   | resolved | assigned | who | csat | nps | other |
//! |------|---------------|---------|------|----------|----------|-----|------|-----|-------|
//! | c1   | 11-02 09:00   | k1      | 60   | 600      | 30       | A   | 5    | 10  | SLA, tag vip, converted 50 |
//! | c2   | 11-02 09:05   | k1      | 120  | 1200     | 60       | A   | 4    | 9   | SLA breach |
//! | c3   | 11-02 14:00   | k2      | 300  | 1800     | 100      | B   | 2    | 3   | SLA warning only, transferred A→B, tag vip |
//! | c4   | 11-03 10:00   | k3      | 600  | –        | 0        | B   | –    | 7   | escalated |
//! | c5   | 11-03 11:00   | k4      | –    | 200      | –        | –   | –    | –   | bot only |
//! | c6   | 11-03 23:00   | k2      | 1000 | 3600     | 0        | A   | 5    | –   | reopened, converted 100 |
//!
//! Topics: c1 c2 c6 size, c3 c4 delivery, c5 faq. Before the range: c0
//! (k3, delivery, 11-01 12:00, converted 30) and c00 (k5, 11-01 13:00) in the
//! previous period, and c-old (k4, faq, 10-20) outside both.

use chrono::{DateTime, Duration, Utc};
use entity::{
    AssignmentKind, ConversationStatus, DeliveryStatus, Direction, MessageType, Presence, Priority,
    SenderKind, SlaKind, SlaLevel, assignment, billing_ledger, contact, conversation,
    conversation_tag, message, presence_interval, sla_event, tag,
};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const FROM: &str = "2026-11-02T00:00:00Z";
const TO: &str = "2026-11-04T00:00:00Z";

#[derive(Default, Clone)]
struct Conv {
    created: &'static str,
    contact: usize,
    fr: Option<i64>,
    resolved: Option<i64>,
    assigned: Option<i64>,
    assignee: Option<i64>,
    csat: Option<i32>,
    nps: Option<i32>,
    topic: Option<&'static str>,
    sla: bool,
    transfers: i32,
    escalation: i32,
    reopens: i32,
    converted: Option<i64>,
}

/// (conversation index, offset, direction, sender kind, sender, body).
type Msg = (usize, i64, Direction, SenderKind, Option<i64>, &'static str);

pub(crate) struct Data {
    pub a: i64,
    pub channel: i64,
    pub b: i64,
    pub ids: Vec<i64>,
    pub vip: i64,
    pub analyst: String,
    agent: String,
    editor: String,
}

pub(crate) async fn seed(app: &TestApp) -> Data {
    let db = &app.domain.db;
    let (a, _) = app.staff("Alice", "AGENT").await;
    let (b, agent) = app.staff("Bob", "AGENT").await;
    let (_, analyst) = app.staff("Ana", "ANALYST").await;
    let (_, editor) = app.staff("Eddie", "EDITOR").await;
    let channel = app.seed_channel().await;
    let mut contacts = vec![];
    for i in 0..6 {
        let c = contact::ActiveModel {
            wa_id: Set(Some(format!("3930000000{i}"))),
            priority: Set(Priority::Normal),
            is_vip: Set(false),
            consent: Set(Default::default()),
            fields: Set(json!({})),
            created_at: Set(t("2026-10-01T00:00:00Z")),
            updated_at: Set(t("2026-10-01T00:00:00Z")),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        contacts.push(c.id);
    }
    let at = |created: &str, off: Option<i64>| off.map(|s| t(created) + Duration::seconds(s));
    let convs = [
        Conv {
            created: "2026-11-02T09:00:00Z",
            contact: 1,
            fr: Some(60),
            resolved: Some(600),
            assigned: Some(30),
            assignee: Some(a),
            csat: Some(5),
            nps: Some(10),
            topic: Some("size"),
            sla: true,
            converted: Some(50),
            ..Default::default()
        },
        Conv {
            created: "2026-11-02T09:05:00Z",
            contact: 1,
            fr: Some(120),
            resolved: Some(1200),
            assigned: Some(60),
            assignee: Some(a),
            csat: Some(4),
            nps: Some(9),
            topic: Some("size"),
            sla: true,
            ..Default::default()
        },
        Conv {
            created: "2026-11-02T14:00:00Z",
            contact: 2,
            fr: Some(300),
            resolved: Some(1800),
            assigned: Some(100),
            assignee: Some(b),
            csat: Some(2),
            nps: Some(3),
            topic: Some("delivery"),
            sla: true,
            transfers: 1,
            ..Default::default()
        },
        Conv {
            created: "2026-11-03T10:00:00Z",
            contact: 3,
            fr: Some(600),
            assigned: Some(0),
            assignee: Some(b),
            nps: Some(7),
            topic: Some("delivery"),
            escalation: 1,
            ..Default::default()
        },
        Conv {
            created: "2026-11-03T11:00:00Z",
            contact: 4,
            resolved: Some(200),
            topic: Some("faq"),
            ..Default::default()
        },
        Conv {
            created: "2026-11-03T23:00:00Z",
            contact: 2,
            fr: Some(1000),
            resolved: Some(3600),
            assigned: Some(0),
            assignee: Some(a),
            csat: Some(5),
            topic: Some("size"),
            reopens: 1,
            converted: Some(100),
            ..Default::default()
        },
        // Before the range.
        Conv {
            created: "2026-11-01T12:00:00Z",
            contact: 3,
            fr: Some(60),
            resolved: Some(600),
            topic: Some("delivery"),
            converted: Some(30),
            ..Default::default()
        },
        Conv {
            created: "2026-11-01T13:00:00Z",
            contact: 5,
            fr: Some(60),
            resolved: Some(600),
            topic: Some("other"),
            ..Default::default()
        },
        Conv {
            created: "2026-10-20T11:00:00Z",
            contact: 4,
            resolved: Some(60),
            topic: Some("faq"),
            ..Default::default()
        },
    ];
    let mut ids = vec![];
    for c in &convs {
        let row = conversation::ActiveModel {
            channel_id: Set(channel),
            contact_id: Set(contacts[c.contact]),
            status: Set(if c.resolved.is_some() {
                ConversationStatus::Resolved
            } else {
                ConversationStatus::Open
            }),
            priority: Set(if c.escalation > 0 {
                Priority::High
            } else {
                Priority::Normal
            }),
            topic: Set(c.topic.map(str::to_string)),
            assignee_id: Set(c.assignee),
            escalation_level: Set(c.escalation),
            transfer_count: Set(c.transfers),
            reopen_count: Set(c.reopens),
            first_response_due_at: Set(c.sla.then(|| t(c.created) + Duration::minutes(2))),
            resolution_due_at: Set(c.sla.then(|| t(c.created) + Duration::hours(1))),
            assigned_at: Set(at(c.created, c.assigned)),
            first_response_at: Set(at(c.created, c.fr)),
            resolved_at: Set(at(c.created, c.resolved)),
            csat: Set(c.csat),
            nps: Set(c.nps),
            converted_at: Set(c.converted.and(at(c.created, c.resolved))),
            conversion_amount_micros: Set(c.converted.map(|x| x * 1_000_000)),
            created_at: Set(t(c.created)),
            updated_at: Set(t(c.created)),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        ids.push(row.id);
    }
    // Messages: (conversation index, offset, direction, sender kind, sender, body).
    let msgs: [Msg; 13] = [
        (0, 0, Direction::Inbound, SenderKind::Customer, None, "Ciao"),
        (
            0,
            60,
            Direction::Outbound,
            SenderKind::Agent,
            Some(a),
            "Hello there",
        ),
        (
            0,
            300,
            Direction::Outbound,
            SenderKind::Agent,
            Some(a),
            "Size M fits",
        ),
        (
            1,
            0,
            Direction::Inbound,
            SenderKind::Customer,
            None,
            "And L?",
        ),
        (
            1,
            120,
            Direction::Outbound,
            SenderKind::Agent,
            Some(a),
            "Ok",
        ),
        (
            2,
            0,
            Direction::Inbound,
            SenderKind::Customer,
            None,
            "Where is it",
        ),
        (
            2,
            300,
            Direction::Outbound,
            SenderKind::Agent,
            Some(b),
            "We are checking",
        ),
        (
            3,
            0,
            Direction::Inbound,
            SenderKind::Customer,
            None,
            "Late!",
        ),
        (
            3,
            600,
            Direction::Outbound,
            SenderKind::Agent,
            Some(b),
            "Sorry",
        ),
        (
            4,
            0,
            Direction::Inbound,
            SenderKind::Customer,
            None,
            "Hours?",
        ),
        (4, 5, Direction::Outbound, SenderKind::Bot, None, "Auto"),
        (5, 0, Direction::Inbound, SenderKind::Customer, None, "Hi"),
        (
            5,
            1000,
            Direction::Outbound,
            SenderKind::Agent,
            Some(a),
            "Done",
        ),
    ];
    let mut message_ids = vec![];
    for (i, off, direction, kind, sender, body) in msgs {
        let m = message::ActiveModel {
            conversation_id: Set(ids[i]),
            channel_id: Set(channel),
            direction: Set(direction),
            sender_kind: Set(kind),
            sender_user_id: Set(sender),
            message_type: Set(MessageType::Text),
            body: Set(Some(body.into())),
            status: Set(DeliveryStatus::Delivered),
            created_at: Set(t(convs[i].created) + Duration::seconds(off)),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        message_ids.push(m.id);
    }
    // Cost: two ledger rows in the range (8,000 + 10,000 micro-USD).
    for (mid, total) in [(message_ids[1], 8_000i64), (message_ids[2], 10_000)] {
        billing_ledger::ActiveModel {
            message_id: Set(mid),
            channel_id: Set(channel),
            conversation_id: Set(ids[0]),
            period: Set("2026-11".into()),
            region: Set("europe".into()),
            free: Set(false),
            base_micros: Set(total),
            surcharge_micros: Set(0),
            total_micros: Set(total),
            created_at: Set(t("2026-11-02T09:01:00Z")),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
    }
    // SLA: c2 breached, c3 only warned.
    for (i, level) in [(1, SlaLevel::Breach), (2, SlaLevel::Warning)] {
        sla_event::ActiveModel {
            conversation_id: Set(ids[i]),
            kind: Set(SlaKind::FirstResponse),
            level: Set(level),
            target_at: Set(t(convs[i].created)),
            occurred_at: Set(t(convs[i].created)),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
    }
    // c3 went to A first, then A transferred it to B.
    for (kind, from, to) in [
        (AssignmentKind::Auto, None, Some(a)),
        (AssignmentKind::Transfer, Some(a), Some(b)),
    ] {
        assignment::ActiveModel {
            conversation_id: Set(ids[2]),
            kind: Set(kind),
            from_user_id: Set(from),
            to_user_id: Set(to),
            created_at: Set(t("2026-11-02T14:01:00Z")),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
    }
    let vip = tag::ActiveModel {
        name: Set("vip".into()),
        created_at: Set(t("2026-10-01T00:00:00Z")),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id;
    for i in [0, 2] {
        conversation_tag::ActiveModel {
            conversation_id: Set(ids[i]),
            tag_id: Set(vip),
        }
        .insert(db)
        .await
        .unwrap();
    }
    // Presence: A online 8 h on Monday and 2 h on Tuesday; B online from
    // Tuesday 09:00 with the interval still open, and away before that.
    for (user, status, start, end) in [
        (
            a,
            Presence::Online,
            "2026-11-02T08:00:00Z",
            Some("2026-11-02T16:00:00Z"),
        ),
        (
            a,
            Presence::Online,
            "2026-11-03T08:00:00Z",
            Some("2026-11-03T10:00:00Z"),
        ),
        (
            b,
            Presence::Away,
            "2026-11-03T07:00:00Z",
            Some("2026-11-03T09:00:00Z"),
        ),
        (b, Presence::Online, "2026-11-03T09:00:00Z", None),
    ] {
        presence_interval::ActiveModel {
            user_id: Set(user),
            status: Set(status),
            started_at: Set(t(start)),
            ended_at: Set(end.map(t)),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
    }
    Data {
        a,
        channel,
        b,
        ids,
        vip,
        analyst,
        agent,
        editor,
    }
}

pub(crate) async fn metrics(app: &TestApp, token: &str, range: Value, fields: &str) -> Value {
    let q = format!("query($r: MetricsRangeInput!){{ metrics(range:$r) {{ {fields} }} }}");
    app.gql(token, &q, json!({ "r": range })).await.data()["metrics"].clone()
}

fn range() -> Value {
    json!({"from": FROM, "to": TO})
}

fn close(v: &Value, expected: f64) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("expected {expected}, got {v}"));
    // Durations are reported to the millisecond.
    assert!(
        (got - expected).abs() < 1e-3,
        "expected {expected}, got {got}"
    );
}

pub(crate) const KPIS: &str = "conversations responded firstResponseMeanSeconds firstResponseMedianSeconds \
    firstResponseP90Seconds resolved resolutionRate resolutionMeanSeconds csatAnswers csatMean \
    csatSatisfied csatSatisfiedRate npsAnswers npsPromoters npsPassives npsDetractors nps \
    firstContactResolved firstContactResolutionRate slaTracked slaBreached slaCompliance \
    escalated escalationRate transferred transferRate automated automationRate everResolved \
    reopened reopenRate messagesIn messagesOut";

#[tokio::test]
async fn the_overview_matches_the_hand_computed_kpis() {
    let app = spawn_app().await;
    let d = seed(&app).await;
    let m = metrics(&app, &d.analyst, range(), &format!("overview {{ {KPIS} }}")).await;
    let k = &m["overview"];
    assert_eq!(k["conversations"], 6);
    assert_eq!(k["responded"], 5);
    // FRT 60, 120, 300, 600, 1000: mean 416, median 300, p90 600 + 0.6 × 400.
    close(&k["firstResponseMeanSeconds"], 416.0);
    close(&k["firstResponseMedianSeconds"], 300.0);
    close(&k["firstResponseP90Seconds"], 840.0);
    // Resolved c1 c2 c3 c5 c6: 600 + 1200 + 1800 + 200 + 3600 = 7400 / 5.
    assert_eq!(k["resolved"], 5);
    close(&k["resolutionRate"], 5.0 / 6.0);
    close(&k["resolutionMeanSeconds"], 1480.0);
    // CSAT 5, 4, 2, 5.
    assert_eq!(k["csatAnswers"], 4);
    close(&k["csatMean"], 4.0);
    assert_eq!(k["csatSatisfied"], 3);
    close(&k["csatSatisfiedRate"], 0.75);
    // NPS 10, 9, 3, 7: (2 − 1) / 4.
    assert_eq!(k["npsAnswers"], 4);
    assert_eq!(k["npsPromoters"], 2);
    assert_eq!(k["npsPassives"], 1);
    assert_eq!(k["npsDetractors"], 1);
    close(&k["nps"], 25.0);
    // FCR: c1 c2 c5 of 5 resolved (c3 transferred, c6 reopened).
    assert_eq!(k["firstContactResolved"], 3);
    close(&k["firstContactResolutionRate"], 0.6);
    // SLA: c1 c2 c3 tracked, c2 breached (c3 only warned).
    assert_eq!(k["slaTracked"], 3);
    assert_eq!(k["slaBreached"], 1);
    close(&k["slaCompliance"], 2.0 / 3.0);
    assert_eq!(k["escalated"], 1);
    close(&k["escalationRate"], 1.0 / 6.0);
    assert_eq!(k["transferred"], 1);
    close(&k["transferRate"], 1.0 / 6.0);
    // Only c5 was resolved without an agent message.
    assert_eq!(k["automated"], 1);
    close(&k["automationRate"], 0.2);
    assert_eq!(k["everResolved"], 5);
    assert_eq!(k["reopened"], 1);
    close(&k["reopenRate"], 0.2);
    assert_eq!(k["messagesIn"], 6);
    assert_eq!(k["messagesOut"], 7);
}

#[tokio::test]
async fn series_buckets_follow_the_time_zone_and_dimensions_split_rows() {
    let app = spawn_app().await;
    let d = seed(&app).await;
    // UTC days: 3 + 3. In Rome (UTC+1) c6 (23:00Z) falls on Wednesday.
    let utc = metrics(
        &app,
        &d.analyst,
        range(),
        "series { bucket bucketStart kpis { conversations messagesIn } }",
    )
    .await;
    let days: Vec<(String, i64)> = utc["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["bucket"].as_str().unwrap().to_string(),
                r["kpis"]["conversations"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-11-02T00:00".into(), 3),
            ("2026-11-03T00:00".into(), 3)
        ]
    );
    let rome = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO, "timeZone": "Europe/Rome"}),
        "series { bucket bucketStart kpis { conversations } }",
    )
    .await;
    let rows = rome["series"].as_array().unwrap();
    let got: Vec<(&str, DateTime<Utc>, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["bucket"].as_str().unwrap(),
                t(r["bucketStart"].as_str().unwrap()),
                r["kpis"]["conversations"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-11-02T00:00", t("2026-11-01T23:00:00Z"), 3),
            ("2026-11-03T00:00", t("2026-11-02T23:00:00Z"), 2),
            ("2026-11-04T00:00", t("2026-11-03T23:00:00Z"), 1),
        ]
    );
    // Hourly in UTC: 09:00 holds c1 and c2.
    let hourly = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO, "granularity": "HOUR"}),
        "series { bucket kpis { conversations } }",
    )
    .await;
    let nine = hourly["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["bucket"] == "2026-11-02T09:00")
        .unwrap();
    assert_eq!(nine["kpis"]["conversations"], 2);
    // Weekly: one ISO week from Monday.
    let weekly = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO, "granularity": "WEEK"}),
        "series { bucket kpis { conversations } }",
    )
    .await;
    assert_eq!(
        weekly["series"],
        json!([{"bucket": "2026-11-02T00:00", "kpis": {"conversations": 6}}])
    );

    // By agent: A has c1 c2 c6 (FRT 60, 120, 1000), B c3 c4, nobody c5.
    let by_agent = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO, "dimension": "AGENT"}),
        "byDimension { key label kpis { conversations firstResponseMedianSeconds messagesOut } }",
    )
    .await;
    let rows = by_agent["byDimension"].as_array().unwrap();
    let row = |key: Value| rows.iter().find(|r| r["key"] == key).unwrap().clone();
    let a = row(json!(d.a.to_string()));
    assert_eq!(a["label"], "Alice");
    assert_eq!(a["kpis"]["conversations"], 3);
    close(&a["kpis"]["firstResponseMedianSeconds"], 120.0);
    assert_eq!(a["kpis"]["messagesOut"], 4);
    assert_eq!(row(json!(d.b.to_string()))["kpis"]["conversations"], 2);
    assert_eq!(row(Value::Null)["kpis"]["conversations"], 1);
    assert_eq!(rows.len(), 3);

    // By tag: only c1 and c3 are tagged.
    let by_tag = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO, "dimension": "TAG"}),
        "byDimension { key label kpis { conversations csatMean } }",
    )
    .await;
    assert_eq!(
        by_tag["byDimension"],
        json!([{"key": d.vip.to_string(), "label": "vip", "kpis": {"conversations": 2, "csatMean": 3.5}}])
    );

    // A filter narrows everything: topic size is c1 c2 c6.
    let size = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO, "filters": {"topic": "size"}}),
        "overview { conversations resolved messagesIn }",
    )
    .await;
    assert_eq!(
        size["overview"],
        json!({"conversations": 3, "resolved": 3, "messagesIn": 3})
    );
    let high = metrics(&app, &d.analyst, json!({"from": FROM, "to": TO, "dimension": "PRIORITY", "filters": {"tagId": d.vip.to_string()}}), "byDimension { key kpis { conversations } }").await;
    assert_eq!(
        high["byDimension"],
        json!([{"key": "normal", "kpis": {"conversations": 2}}])
    );
}

#[tokio::test]
async fn agent_kpis_flags_and_the_weekly_ranking() {
    let app = spawn_app().await;
    let d = seed(&app).await;
    let m = metrics(
        &app,
        &d.analyst,
        range(),
        "agents { agentId name assigned resolved resolutionRate resolutionRateFlag responseMeanSeconds \
         handled transferredOut transferRate transferRateFlag ratingAnswers ratingMean ratingAlert \
         onlineSeconds onlineTargetSeconds onlineMeetsTarget handlingSeconds utilisation \
         utilisationInTarget agentCharacters effectiveInteractionRatio }",
    )
    .await;
    let agents = m["agents"].as_array().unwrap();
    let get = |id: i64| {
        agents
            .iter()
            .find(|r| r["agentId"].as_str() == Some(id.to_string().as_str()))
            .unwrap()
            .clone()
    };
    let a = get(d.a);
    assert_eq!(a["name"], "Alice");
    assert_eq!(a["assigned"], 3);
    assert_eq!(a["resolved"], 3);
    close(&a["resolutionRate"], 1.0);
    assert_eq!(a["resolutionRateFlag"], false);
    // From assignment: 30, 60 and 1000 s.
    close(&a["responseMeanSeconds"], 1090.0 / 3.0);
    // Handled c1 c2 c3 c6, transferred c3 away: 25 % > 15 %.
    assert_eq!(a["handled"], 4);
    assert_eq!(a["transferredOut"], 1);
    close(&a["transferRate"], 0.25);
    assert_eq!(a["transferRateFlag"], true);
    assert_eq!(a["ratingAnswers"], 3);
    close(&a["ratingMean"], 14.0 / 3.0);
    assert_eq!(a["ratingAlert"], false);
    // 8 h + 2 h online against 2 × 6.5 h.
    close(&a["onlineSeconds"], 36_000.0);
    close(&a["onlineTargetSeconds"], 46_800.0);
    assert_eq!(a["onlineMeetsTarget"], false);
    // c1 [09:00:30, 09:10] ∪ c2 [09:06, 09:25] = 1,470 s; c6 [23:00, 24:00] = 3,600 s.
    close(&a["handlingSeconds"], 5_070.0);
    close(&a["utilisation"], 5_070.0 / 36_000.0);
    assert_eq!(a["utilisationInTarget"], false);
    // "Hello there" + "Size M fits" + "Ok" + "Done" = 28 characters, 3 resolved.
    assert_eq!(a["agentCharacters"], 28);
    close(&a["effectiveInteractionRatio"], 300.0 / 28.0);

    let b = get(d.b);
    assert_eq!(b["assigned"], 2);
    assert_eq!(b["resolved"], 1);
    close(&b["resolutionRate"], 0.5);
    assert_eq!(b["resolutionRateFlag"], true);
    close(&b["responseMeanSeconds"], 400.0);
    assert_eq!(b["handled"], 2);
    assert_eq!(b["transferredOut"], 0);
    assert_eq!(b["transferRateFlag"], false);
    close(&b["ratingMean"], 2.0);
    assert_eq!(b["ratingAlert"], true);
    // Online from Tuesday 09:00 to the end of the range (the away time does not count).
    close(&b["onlineSeconds"], 54_000.0);
    // c3 [14:01:40, 14:30] = 1,700 s; c4 open from Tuesday 10:00 = 50,400 s.
    close(&b["handlingSeconds"], 52_100.0);
    close(&b["utilisation"], 52_100.0 / 54_000.0);
    assert_eq!(b["agentCharacters"], 20);
    close(&b["effectiveInteractionRatio"], 5.0);

    // The week ending Wednesday 00:00 holds the same data; the week before is empty.
    let r = metrics(
        &app,
        &d.analyst,
        range(),
        "agentRanking { weekStart agents { rank previousRank agent { agentId resolved } } resolvedSpread resolutionRateSpread }",
    )
    .await;
    let ranking = &r["agentRanking"];
    assert_eq!(
        t(ranking["weekStart"].as_str().unwrap()),
        t("2026-10-28T00:00:00Z")
    );
    assert_eq!(
        ranking["agents"],
        json!([
            {"rank": 1, "previousRank": null, "agent": {"agentId": d.a.to_string(), "resolved": 3}},
            {"rank": 2, "previousRank": null, "agent": {"agentId": d.b.to_string(), "resolved": 1}},
        ])
    );
    assert_eq!(ranking["resolvedSpread"], 2);
    close(&ranking["resolutionRateSpread"], 0.5);

    // The agent filter keeps one row.
    let only = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO, "filters": {"agentId": d.b.to_string()}}),
        "agents { agentId handled }",
    )
    .await;
    assert_eq!(
        only["agents"],
        json!([{"agentId": d.b.to_string(), "handled": 2}])
    );
}

#[tokio::test]
async fn funnel_time_of_day_waiting_repeat_and_cost() {
    let app = spawn_app().await;
    let d = seed(&app).await;
    let m = metrics(
        &app,
        &d.analyst,
        range(),
        "funnel { previousFrom layers { stage count previousCount rate stepRate change alert } \
           convertedAmountMicros previousConvertedAmountMicros } \
         timeOfDay { byHour { hour conversations } byWeekday { weekday conversations } \
           peakHours { hour conversations } handleMeanSeconds staffing { hour arrivalsPerHour agents } } \
         waitingTime { bucket conversations converted conversionRate } \
         repeatContacts { topic conversations repeats rate flagged } \
         cost { totals { messages totalMicros } }",
    )
    .await;
    // Funnel: 6 → 5 → 5 → 2 now, 2 → 2 → 2 → 1 before.
    let f = &m["funnel"];
    assert_eq!(
        t(f["previousFrom"].as_str().unwrap()),
        t("2026-10-31T00:00:00Z")
    );
    let layers = f["layers"].as_array().unwrap();
    let counts: Vec<(i64, i64)> = layers
        .iter()
        .map(|l| {
            (
                l["count"].as_i64().unwrap(),
                l["previousCount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, vec![(6, 2), (5, 2), (5, 2), (2, 1)]);
    // Opened +200 %; first response 5/6 against 2/2 (−16.7 %): alert;
    // resolved 5/5 against 2/2: steady; converted 2/5 against 1/2 (−20 %): alert.
    close(&layers[0]["change"], 2.0);
    close(&layers[1]["change"], 5.0 / 6.0 - 1.0);
    close(&layers[3]["change"], 0.4 / 0.5 - 1.0);
    let alerts: Vec<bool> = layers
        .iter()
        .map(|l| l["alert"].as_bool().unwrap())
        .collect();
    assert_eq!(alerts, vec![false, true, false, true]);
    close(&layers[3]["rate"], 2.0 / 6.0);
    close(&layers[3]["stepRate"], 0.4);
    assert_eq!(f["convertedAmountMicros"], 150_000_000);
    assert_eq!(f["previousConvertedAmountMicros"], 30_000_000);

    // Time of day (UTC): 09 ×2, 10, 11, 14, 23; Monday 3, Tuesday 3.
    let tod = &m["timeOfDay"];
    let by_hour: Vec<i64> = tod["byHour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["conversations"].as_i64().unwrap())
        .collect();
    let mut expected = vec![0i64; 24];
    for (h, n) in [(9, 2), (10, 1), (11, 1), (14, 1), (23, 1)] {
        expected[h] = n;
    }
    assert_eq!(by_hour, expected);
    let weekdays: Vec<i64> = tod["byWeekday"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["conversations"].as_i64().unwrap())
        .collect();
    assert_eq!(weekdays, vec![3, 3, 0, 0, 0, 0, 0]);
    // The 7 days before Wednesday add c0 (12:00) and c00 (13:00): 09 leads, then the earliest ties.
    assert_eq!(
        tod["peakHours"],
        json!([{"hour": 9, "conversations": 2}, {"hour": 10, "conversations": 1}, {"hour": 11, "conversations": 1}])
    );
    // Handle time of c1 c2 c3 c6: 570 + 1140 + 1700 + 3600 = 7010 / 4.
    close(&tod["handleMeanSeconds"], 1752.5);
    // 09:00: 1 arrival/h × 1752.5 s = 0.487 erlang: one agent makes the
    // customer wait ~1,662 s on average, two ~110 s (target 150 s).
    let nine = &tod["staffing"][9];
    close(&nine["arrivalsPerHour"], 1.0);
    assert_eq!(nine["agents"], 2);
    assert_eq!(tod["staffing"][12]["agents"], 0);

    // Waits: c1 60, c2 120, c5 200 (no response: resolved) | c3 300, c4 600 | c6 1000.
    assert_eq!(
        m["waitingTime"],
        json!([
            {"bucket": "UNDER_FIVE_MINUTES", "conversations": 3, "converted": 1, "conversionRate": 1.0 / 3.0},
            {"bucket": "FIVE_TO_FIFTEEN_MINUTES", "conversations": 2, "converted": 0, "conversionRate": 0.0},
            {"bucket": "OVER_FIFTEEN_MINUTES", "conversations": 1, "converted": 1, "conversionRate": 1.0},
        ])
    );

    // Repeats: c2 (k1 size after c1), c4 (k3 delivery after c0); c5's faq
    // predecessor is 14 days old; c6 (k2) had delivery, not size.
    let rep = m["repeatContacts"].as_array().unwrap();
    let find = |topic: Value| rep.iter().find(|r| r["topic"] == topic).unwrap().clone();
    let total = &rep[0];
    assert_eq!(total["topic"], Value::Null);
    assert_eq!(
        (total["conversations"].as_i64(), total["repeats"].as_i64()),
        (Some(6), Some(2))
    );
    assert_eq!(total["flagged"], true);
    assert_eq!(find(json!("size"))["repeats"], 1);
    close(&find(json!("delivery"))["rate"], 0.5);
    assert_eq!(find(json!("faq"))["repeats"], 0);
    assert_eq!(find(json!("faq"))["flagged"], false);

    assert_eq!(
        m["cost"]["totals"],
        json!({"messages": 2, "totalMicros": 18_000})
    );

    // Marking a conversation converted moves the funnel and is audited.
    let c4 = d.ids[3].to_string();
    let r = app
        .gql(
            &d.editor,
            "mutation($id:ID!){ markConverted(conversationId:$id, amount: 12.5, convertedAt:\"2026-11-03T12:00:00Z\"){ conversationId convertedAt amountMicros } }",
            json!({"id": c4}),
        )
        .await;
    assert_eq!(r.data()["markConverted"]["amountMicros"], 12_500_000);
    let f = metrics(
        &app,
        &d.analyst,
        range(),
        "funnel { layers { count } convertedAmountMicros }",
    )
    .await;
    assert_eq!(f["funnel"]["layers"][3]["count"], 3);
    assert_eq!(f["funnel"]["convertedAmountMicros"], 162_500_000);
    let audit = app
        .gql(
            &app.admin_token,
            "{ auditLog { edges { node { action entityId } } } }",
            json!({}),
        )
        .await;
    let actions = audit.data()["auditLog"]["edges"].to_string();
    assert!(actions.contains("conversation.converted"), "{actions}");
}

#[tokio::test]
async fn agents_may_not_read_metrics_nor_mark_conversions() {
    let app = spawn_app().await;
    let d = seed(&app).await;
    let q = "query($r: MetricsRangeInput!){ metrics(range:$r) { overview { conversations } } }";
    app.gql(&d.agent, q, json!({"r": range()}))
        .await
        .assert_code("FORBIDDEN");
    app.gql(
        &d.agent,
        "mutation($id:ID!){ markConverted(conversationId:$id){ conversationId } }",
        json!({"id": d.ids[0].to_string()}),
    )
    .await
    .assert_code("FORBIDDEN");
    app.gql(
        &d.analyst,
        "mutation($id:ID!){ markConverted(conversationId:$id){ conversationId } }",
        json!({"id": d.ids[0].to_string()}),
    )
    .await
    .assert_code("FORBIDDEN");
    // A read-only API token reads them.
    let secret = app
        .gql(
            &app.admin_token,
            "mutation { createApiToken(name:\"BI\") { secret } }",
            json!({}),
        )
        .await
        .data()["createApiToken"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.gql(&secret, q, json!({"r": range()})).await;
    assert_eq!(r.data()["metrics"]["overview"]["conversations"], 6);
    // Bad input names the field.
    let r = app
        .gql(&d.analyst, q, json!({"r": {"from": TO, "to": FROM}}))
        .await;
    r.assert_code("BAD_USER_INPUT");
    let r = app
        .gql(
            &d.analyst,
            q,
            json!({"r": {"from": FROM, "to": TO, "timeZone": "Mars/Olympus"}}),
        )
        .await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "timeZone");
}

#[tokio::test]
async fn day_buckets_and_hours_follow_a_dst_change() {
    // Rome leaves summer time at 2026-10-25 01:00Z (03:00 CEST → 02:00 CET).
    let app = spawn_app().await;
    let (_, analyst) = app.staff("Ana", "ANALYST").await;
    let channel = app.seed_channel().await;
    // Local: 10-25 00:30 CEST, 10-25 23:30 CET, 10-26 00:30 CET.
    for created in [
        "2026-10-24T22:30:00Z",
        "2026-10-25T22:30:00Z",
        "2026-10-25T23:30:00Z",
    ] {
        let id = app.seed_conversation(channel, None).await;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        conversation::Entity::update_many()
            .col_expr(conversation::Column::CreatedAt, Expr::value(t(created)))
            .filter(conversation::Column::Id.eq(id))
            .exec(&app.domain.db)
            .await
            .unwrap();
    }
    let m = metrics(
        &app,
        &analyst,
        json!({"from": "2026-10-24T00:00:00Z", "to": "2026-10-27T00:00:00Z", "timeZone": "Europe/Rome"}),
        "series { bucket bucketStart kpis { conversations } } timeOfDay { byHour { hour conversations } }",
    )
    .await;
    let got: Vec<(&str, DateTime<Utc>, i64)> = m["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["bucket"].as_str().unwrap(),
                t(r["bucketStart"].as_str().unwrap()),
                r["kpis"]["conversations"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-10-25T00:00", t("2026-10-24T22:00:00Z"), 2),
            ("2026-10-26T00:00", t("2026-10-25T23:00:00Z"), 1),
        ]
    );
    let hours = &m["timeOfDay"]["byHour"];
    assert_eq!(hours[0]["conversations"], 2);
    assert_eq!(hours[23]["conversations"], 1);
}
