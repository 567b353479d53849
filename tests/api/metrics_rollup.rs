//! Hourly rollups give the live definitions' results: every dashboard query
//! of the crafted data set of `metrics.rs` is answered live (nothing rolled
//! up), then from the rollups, and the answers must be equal; late changes
//! mark their hour, which is then answered live until refreshed; the worker
//! refreshes on its own, on the manual clock (SQLite always, PostgreSQL with
//! TEST_DATABASE_URL).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use api::metrics::Metrics;
use api::workers::spawn_rollups;
use chrono::{DateTime, Duration, Utc};
use domain::metrics::{Granularity, MetricsFilter, MetricsQuery};
use entity::{
    ConversationStatus, DeliveryStatus, Direction, MessageType, Priority, SenderKind, SlaKind,
    SlaLevel, billing_ledger, conversation, message, sla_event,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, Statement,
};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{TestApp, spawn_app};
use crate::metrics::{Data, KPIS, metrics, seed};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const FROM: &str = "2026-11-02T00:00:00Z";
const TO: &str = "2026-11-04T00:00:00Z";

const AGENT_FIELDS: &str = "agentId name assigned resolved responseMeanSeconds handled \
    transferredOut ratingAnswers ratingMean onlineSeconds handlingSeconds agentCharacters";

/// Every query the dashboard asks, with the ranges and options that take
/// the different paths (whole hours, partial hours, filters, time zones).
fn battery(d: &Data) -> Vec<(Value, String)> {
    let rows = format!("bucket bucketStart key label kpis {{ {KPIS} }}");
    let mut out = vec![];
    let range = |extra: Value| {
        let mut r = json!({"from": FROM, "to": TO});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    out.push((range(json!({})), format!("overview {{ {KPIS} }}")));
    for dim in ["AGENT", "DEPARTMENT", "CHANNEL", "TAG", "TOPIC", "PRIORITY"] {
        out.push((
            range(json!({"dimension": dim})),
            format!("byDimension {{ {rows} }}"),
        ));
    }
    for (granularity, tz) in [
        ("DAY", "UTC"),
        ("DAY", "Europe/Rome"),
        ("HOUR", "UTC"),
        ("WEEK", "Europe/Rome"),
        ("MONTH", "UTC"),
        ("DAY", "Asia/Kolkata"),
    ] {
        out.push((
            range(json!({"granularity": granularity, "timeZone": tz})),
            format!("series {{ {rows} }}"),
        ));
    }
    out.push((
        range(json!({"granularity": "HOUR", "dimension": "AGENT"})),
        format!("series {{ {rows} }}"),
    ));
    for filters in [
        json!({"topic": "size"}),
        json!({"agentId": d.a.to_string()}),
        json!({"tagId": d.vip.to_string()}),
        json!({"priority": "HIGH"}),
    ] {
        out.push((
            range(json!({"filters": filters})),
            format!("overview {{ {KPIS} }}"),
        ));
    }
    out.push((
        range(json!({"dimension": "PRIORITY", "filters": {"tagId": d.vip.to_string()}})),
        format!("byDimension {{ {rows} }}"),
    ));
    out.push((
        range(json!({"dimension": "AGENT", "filters": {"agentId": d.b.to_string()}})),
        format!("byDimension {{ {rows} }}"),
    ));
    // Partial hours at both ends: 09:02 cuts c1 and c2's hour.
    let edges = json!({"from": "2026-11-02T09:02:00Z", "to": "2026-11-03T23:30:00Z"});
    out.push((edges.clone(), format!("overview {{ {KPIS} }}")));
    let mut hourly = edges.clone();
    hourly["granularity"] = json!("HOUR");
    out.push((hourly, format!("series {{ {rows} }}")));
    out.push((range(json!({})), format!("agents {{ {AGENT_FIELDS} }}")));
    out.push((edges, format!("agents {{ {AGENT_FIELDS} }}")));
    out.push((
        range(json!({"filters": {"agentId": d.b.to_string()}})),
        format!("agents {{ {AGENT_FIELDS} }}"),
    ));
    out.push((
        range(json!({})),
        format!(
            "agentRanking {{ weekStart agents {{ rank previousRank previousResolved \
             agent {{ {AGENT_FIELDS} }} }} resolvedSpread resolutionRateSpread responseSpreadSeconds }}"
        ),
    ));
    // The reports: whole and partial hours, filters, zones.
    let reports = "timeOfDay { byHour { hour conversations } byWeekday { weekday conversations } \
         peakHours { hour conversations } handleMeanSeconds staffing { hour arrivalsPerHour agents } } \
         waitingTime { bucket conversations converted conversionRate } \
         repeatContacts { topic conversations repeats rate flagged } \
         cost { totals { messages free baseMicros surchargeMicros totalMicros } \
           periods { period start totals { messages totalMicros } } }";
    for r in [
        range(json!({})),
        range(json!({"timeZone": "Europe/Rome", "granularity": "MONTH"})),
        range(json!({"timeZone": "Asia/Kolkata"})),
        range(json!({"filters": {"topic": "size"}})),
        range(json!({"filters": {"agentId": d.b.to_string()}})),
        range(json!({"filters": {"tagId": d.vip.to_string()}})),
        range(json!({"filters": {"channelId": d.channel.to_string()}})),
        range(json!({"filters": {"topic": "size", "agentId": d.a.to_string()}})),
        json!({"from": "2026-11-02T09:02:00Z", "to": "2026-11-03T23:30:00Z"}),
    ] {
        out.push((r, reports.to_string()));
    }
    out
}

/// What the crafted data set lacks for the reports: a conversation still
/// waiting (no response, not resolved) and assigned, a repeat of its
/// contact's topic, with a message billed in another hour.
async fn seed_reports(app: &TestApp, d: &Data) {
    let db = &app.domain.db;
    let contact = scalar(
        app,
        &format!(
            "SELECT contact_id FROM conversations WHERE id = {}",
            d.ids[0]
        ),
    )
    .await;
    let c = conversation::ActiveModel {
        channel_id: Set(d.channel),
        contact_id: Set(contact),
        status: Set(ConversationStatus::Open),
        priority: Set(Priority::Normal),
        topic: Set(Some("size".into())),
        assignee_id: Set(Some(d.b)),
        assigned_at: Set(Some(t("2026-11-03T15:11:00Z"))),
        created_at: Set(t("2026-11-03T15:10:00Z")),
        updated_at: Set(t("2026-11-03T15:10:00Z")),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let m = message::ActiveModel {
        conversation_id: Set(c.id),
        channel_id: Set(d.channel),
        direction: Set(Direction::Outbound),
        sender_kind: Set(SenderKind::Bot),
        message_type: Set(MessageType::Text),
        body: Set(Some("We will be with you shortly".into())),
        status: Set(DeliveryStatus::Delivered),
        created_at: Set(t("2026-11-03T16:20:00Z")),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    billing_ledger::ActiveModel {
        message_id: Set(m.id),
        channel_id: Set(d.channel),
        conversation_id: Set(c.id),
        period: Set("2026-11".into()),
        region: Set("europe".into()),
        free: Set(true),
        base_micros: Set(0),
        surcharge_micros: Set(10_000),
        total_micros: Set(10_000),
        created_at: Set(t("2026-11-03T16:20:00Z")),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
}

async fn answers(app: &TestApp, d: &Data) -> Vec<Value> {
    let mut out = vec![];
    for (range, fields) in battery(d) {
        out.push(metrics(app, &d.analyst, range, &fields).await);
    }
    out
}

fn assert_same(got: &[Value], expected: &[Value], d: &Data) {
    for ((g, e), (range, fields)) in got.iter().zip(expected).zip(battery(d)) {
        assert_eq!(g, e, "range {range}, fields {fields}");
    }
    assert_eq!(got.len(), expected.len());
}

async fn exec(app: &TestApp, sql: &str) {
    app.domain.db.execute_unprepared(sql).await.unwrap();
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let db = &app.domain.db;
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<Option<i64>>(0).unwrap().unwrap_or(0)
}

/// Refreshes until nothing is left, consuming every mark (the database
/// stamps marks with its own time: the manual clock is moved past them).
async fn refresh_all(app: &TestApp) -> usize {
    app.clock.advance(Duration::minutes(1));
    let mut total = 0;
    loop {
        let n = app
            .domain
            .refresh_metrics_rollups(10_000, Duration::zero())
            .await
            .unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// Forgets every rollup: the next answers are the live definitions'.
async fn forget_rollups(app: &TestApp) {
    exec(app, "DELETE FROM metrics_rollup_hours").await;
}

/// Dirty marks of completed hours (an open handling span marks hours up to
/// the current one, which is never rolled up).
async fn completed_marks(app: &TestApp) -> i64 {
    let current = domain::metrics::rollup::hour_of(domain::Clock::now(app.clock.as_ref()));
    scalar(
        app,
        &format!("SELECT COUNT(*) FROM metrics_rollup_dirty WHERE hour < {current}"),
    )
    .await
}

async fn rolled_hours(app: &TestApp) -> i64 {
    let q = MetricsQuery::new(
        t(FROM),
        t(TO),
        Granularity::Day,
        "UTC",
        None,
        MetricsFilter::default(),
    )
    .unwrap();
    app.domain
        .metrics_plan(&q, None, &MetricsFilter::default(), false)
        .await
        .unwrap()
        .rolled_hours()
}

#[tokio::test]
async fn rolled_up_answers_equal_the_live_definitions() {
    let app = spawn_app().await;
    let d = seed(&app).await;
    seed_reports(&app, &d).await;
    assert_eq!(rolled_hours(&app).await, 0);
    let live = answers(&app, &d).await;

    // From the earliest conversation (10-20) to the hour before now.
    assert!(refresh_all(&app).await > 48);
    assert_eq!(completed_marks(&app).await, 0);
    assert_eq!(rolled_hours(&app).await, 48);
    let rolled = answers(&app, &d).await;
    assert_same(&rolled, &live, &d);

    // The rollups are what is read: a change to them shows.
    let nine = domain::metrics::rollup::hour_of(t("2026-11-02T09:00:00Z"));
    exec(
        &app,
        &format!(
            "UPDATE metrics_rollup SET conversations = conversations + 1000 \
             WHERE dim = '' AND hour = {nine}"
        ),
    )
    .await;
    let m = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO}),
        "overview { conversations }",
    )
    .await;
    assert_eq!(m["overview"]["conversations"], 1007);
    // So are the reports' rollups.
    for sql in [
        "UPDATE metrics_rollup_cost SET messages = messages + 1000",
        "UPDATE metrics_rollup_wait SET conversations = conversations + 1000 WHERE dim = ''",
        "UPDATE metrics_rollup_repeat SET repeats = repeats + 1000 WHERE dim = ''",
        "UPDATE metrics_rollup_busy SET busy_ms = busy_ms + 1000000",
    ] {
        let and = if sql.contains("WHERE") {
            "AND"
        } else {
            "WHERE"
        };
        exec(&app, &format!("{sql} {and} hour = {nine}")).await;
    }
    let m = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO}),
        "waitingTime { conversations } repeatContacts { repeats } \
         cost { totals { messages } } agents { handlingSeconds }",
    )
    .await;
    assert_eq!(m["cost"]["totals"]["messages"], 1003);
    let waiting: i64 = m["waitingTime"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["conversations"].as_i64().unwrap())
        .sum();
    assert_eq!(waiting, 1007);
    assert_eq!(m["repeatContacts"][0]["repeats"], 1003);
    let busy: f64 = m["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["handlingSeconds"].as_f64().unwrap())
        .sum();
    assert!(busy > 1000.0, "{busy}");

    // Two refreshes at once (two instances) leave one copy of each hour.
    forget_rollups(&app).await;
    app.clock.advance(Duration::minutes(1));
    let (x, y) = tokio::join!(
        app.domain.refresh_metrics_rollups(10_000, Duration::zero()),
        app.domain.refresh_metrics_rollups(10_000, Duration::zero()),
    );
    x.unwrap();
    y.unwrap();
    refresh_all(&app).await;
    assert_eq!(rolled_hours(&app).await, 48);
    assert_same(&answers(&app, &d).await, &live, &d);
}

#[tokio::test]
async fn late_changes_mark_their_hour_which_is_answered_live_until_refreshed() {
    let app = spawn_app().await;
    let d = seed(&app).await;
    seed_reports(&app, &d).await;
    refresh_all(&app).await;
    let before = answers(&app, &d).await;
    let db = &app.domain.db;

    // Days later: c4 answers the CSAT survey and is resolved, c1 is
    // reopened, c3 breaches its resolution SLA, an agent writes in c5.
    conversation::Entity::update_many()
        .col_expr(conversation::Column::Csat, Expr::value(3))
        .col_expr(
            conversation::Column::ResolvedAt,
            Expr::value(t("2026-11-06T10:00:00Z")),
        )
        .filter(conversation::Column::Id.eq(d.ids[3]))
        .exec(db)
        .await
        .unwrap();
    conversation::Entity::update_many()
        .col_expr(conversation::Column::ReopenCount, Expr::value(1))
        .filter(conversation::Column::Id.eq(d.ids[0]))
        .exec(db)
        .await
        .unwrap();
    sla_event::ActiveModel {
        conversation_id: Set(d.ids[2]),
        kind: Set(SlaKind::Resolution),
        level: Set(SlaLevel::Breach),
        target_at: Set(t("2026-11-02T15:00:00Z")),
        occurred_at: Set(t("2026-11-02T15:00:00Z")),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    message::ActiveModel {
        conversation_id: Set(d.ids[4]),
        channel_id: Set(scalar(
            &app,
            &format!(
                "SELECT channel_id FROM conversations WHERE id = {}",
                d.ids[4]
            ),
        )
        .await),
        direction: Set(Direction::Outbound),
        sender_kind: Set(SenderKind::Agent),
        sender_user_id: Set(Some(d.b)),
        message_type: Set(MessageType::Text),
        body: Set(Some("Here I am".into())),
        status: Set(DeliveryStatus::Delivered),
        created_at: Set(t("2026-11-03T11:00:30Z")),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    // c3 converts; the conversation before the range (11-01 12:00) turns
    // out to have been Alice's until 11-02 03:30, which moves her handling
    // time in the range's first hours; a contact 2 "size" conversation on
    // 11-01 makes c6 (11-03 23:00) a repeat; the 15:10 conversation's
    // message is billed again at 17:05.
    conversation::Entity::update_many()
        .col_expr(
            conversation::Column::ConvertedAt,
            Expr::value(t("2026-11-05T10:00:00Z")),
        )
        .filter(conversation::Column::Id.eq(d.ids[2]))
        .exec(db)
        .await
        .unwrap();
    conversation::Entity::update_many()
        .col_expr(conversation::Column::AssigneeId, Expr::value(d.a))
        .col_expr(
            conversation::Column::AssignedAt,
            Expr::value(t("2026-11-01T12:00:00Z")),
        )
        .col_expr(
            conversation::Column::ResolvedAt,
            Expr::value(t("2026-11-02T03:30:00Z")),
        )
        .filter(conversation::Column::Id.eq(d.ids[6]))
        .exec(db)
        .await
        .unwrap();
    let contact2 = scalar(
        &app,
        &format!(
            "SELECT contact_id FROM conversations WHERE id = {}",
            d.ids[2]
        ),
    )
    .await;
    conversation::ActiveModel {
        channel_id: Set(d.channel),
        contact_id: Set(contact2),
        status: Set(ConversationStatus::Resolved),
        priority: Set(Priority::Normal),
        topic: Set(Some("size".into())),
        resolved_at: Set(Some(t("2026-11-01T09:00:00Z"))),
        created_at: Set(t("2026-11-01T08:00:00Z")),
        updated_at: Set(t("2026-11-01T08:00:00Z")),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let (billed_message, billed_conversation) = {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT message_id, conversation_id FROM billing_ledger WHERE free = TRUE",
            ))
            .await
            .unwrap()
            .unwrap();
        (
            row.try_get_by_index::<i64>(0).unwrap(),
            row.try_get_by_index::<i64>(1).unwrap(),
        )
    };
    let m = message::ActiveModel {
        conversation_id: Set(billed_conversation),
        channel_id: Set(d.channel),
        direction: Set(Direction::Outbound),
        sender_kind: Set(SenderKind::Bot),
        message_type: Set(MessageType::Text),
        body: Set(Some("Still there?".into())),
        status: Set(DeliveryStatus::Delivered),
        created_at: Set(t("2026-11-03T17:05:00Z")),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_ne!(m.id, billed_message);
    billing_ledger::ActiveModel {
        message_id: Set(m.id),
        channel_id: Set(d.channel),
        conversation_id: Set(billed_conversation),
        period: Set("2026-11".into()),
        region: Set("europe".into()),
        free: Set(false),
        base_micros: Set(8_000),
        surcharge_micros: Set(0),
        total_micros: Set(8_000),
        created_at: Set(t("2026-11-03T17:05:00Z")),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    // A change nothing reads (the lock) marks nothing more.
    conversation::Entity::update_many()
        .col_expr(
            conversation::Column::LockExpiresAt,
            Expr::value(t("2026-11-20T10:00:00Z")),
        )
        .filter(conversation::Column::Id.eq(d.ids[5]))
        .exec(db)
        .await
        .unwrap();

    // c1 09:00 and c3 14:00 on 11-02, c4 10:00 and c5 11:00 on 11-03;
    // Alice's span 00:00–03:00 on 11-02; c6's repeat 23:00, the bill
    // (message and ledger) 17:00 and its conversation 15:00 on 11-03.
    let (h0, h1) = (
        domain::metrics::rollup::hour_of(t(FROM)),
        domain::metrics::rollup::hour_of(t(TO)),
    );
    assert_eq!(
        scalar(
            &app,
            &format!(
                "SELECT COUNT(DISTINCT hour) FROM metrics_rollup_dirty \
                 WHERE hour >= {h0} AND hour < {h1}"
            )
        )
        .await,
        11
    );
    assert_eq!(rolled_hours(&app).await, 37);
    let mixed = answers(&app, &d).await;
    assert_ne!(mixed[0], before[0], "the overview shows the changes");
    assert_eq!(mixed[0]["overview"]["csatAnswers"], 5);
    let reports = mixed.last().unwrap();
    assert_ne!(
        reports,
        before.last().unwrap(),
        "the reports show the changes"
    );
    assert_eq!(mixed[0]["overview"]["slaBreached"], 2);
    assert_eq!(mixed[0]["overview"]["reopened"], 2);
    assert_eq!(mixed[0]["overview"]["automated"], 0);

    forget_rollups(&app).await;
    let live = answers(&app, &d).await;
    assert_same(&mixed, &live, &d);

    refresh_all(&app).await;
    assert_eq!(rolled_hours(&app).await, 48);
    assert_same(&answers(&app, &d).await, &live, &d);
}

#[tokio::test]
async fn the_rollup_worker_refreshes_on_its_own_and_leaves_young_marks() {
    let app = spawn_app().await;
    let d = seed(&app).await;
    let metrics_ = Arc::new(Metrics::default());
    let (stop, stopped) = watch::channel(false);
    let handle = spawn_rollups(
        app.domain.clone(),
        StdDuration::from_millis(20),
        metrics_,
        stopped,
    );
    // The hours get rolled up, but the seed's marks are younger than the
    // settle time on the manual clock: the hours are still answered live.
    let (h0, h1) = (
        domain::metrics::rollup::hour_of(t(FROM)),
        domain::metrics::rollup::hour_of(t(TO)),
    );
    let in_range =
        format!("SELECT COUNT(*) FROM metrics_rollup_hours WHERE hour >= {h0} AND hour < {h1}");
    eventually("hours rolled up", || async {
        scalar(&app, &in_range).await == 48
    })
    .await;
    assert!(completed_marks(&app).await > 0);
    assert!(rolled_hours(&app).await < 48);

    app.clock.advance(Duration::minutes(6));
    eventually("marks consumed", || async {
        completed_marks(&app).await == 0
    })
    .await;
    eventually("the range served by rollups", || async {
        rolled_hours(&app).await == 48
    })
    .await;
    let overview = metrics(
        &app,
        &d.analyst,
        json!({"from": FROM, "to": TO}),
        "overview { conversations messagesIn }",
    )
    .await;
    assert_eq!(
        overview["overview"],
        json!({"conversations": 6, "messagesIn": 6})
    );

    stop.send(true).unwrap();
    tokio::time::timeout(StdDuration::from_secs(10), handle)
        .await
        .expect("the worker stops")
        .unwrap();
}

/// Waits (at most 30 s of real time) until `done` holds.
async fn eventually<F, Fut>(what: &str, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(30);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}
