//! The retention worker's loop: started on the manual clock with a short
//! period, it purges what the clock has aged past the policy on its own,
//! and its task ends when told to stop.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use api::metrics::Metrics;
use api::workers::{RetentionSchedule, spawn_retention};
use chrono::Duration;
use domain::retention::RetentionAction;
use entity::{ConversationStatus, conversation};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::sync::watch;

use crate::helpers::{TestApp, spawn_app};

const PERIOD: StdDuration = StdDuration::from_millis(20);

async fn resolved_conversation(app: &TestApp, channel: i64) -> i64 {
    let id = app.seed_conversation(channel, None).await;
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
    id
}

async fn exists(app: &TestApp, id: i64) -> bool {
    conversation::Entity::find_by_id(id)
        .one(&app.domain.db)
        .await
        .unwrap()
        .is_some()
}

fn ticks(metrics: &Metrics, app: &TestApp) -> impl std::future::Future<Output = u64> {
    let (domain, events) = (app.domain.clone(), app.events.clone());
    async move {
        let text = metrics.render(&domain, &events).await;
        text.lines()
            .find_map(|l| l.strip_prefix("helpdesk_worker_ticks_total{worker=\"retention\"} "))
            .map(|n| n.parse().unwrap())
            .unwrap_or(0)
    }
}

/// Waits (at most 10 s of real time) until `done` holds.
async fn eventually<F, Fut>(what: &str, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(PERIOD).await;
    }
}

#[tokio::test]
async fn the_retention_worker_purges_on_its_own_schedule_and_stops_on_shutdown() {
    let app = spawn_app().await;
    let channel = app.seed_channel().await;
    let old = resolved_conversation(&app, channel).await;
    let open = app.seed_conversation(channel, None).await;

    let metrics = Arc::new(Metrics::default());
    let (stop, stopped) = watch::channel(false);
    let schedule = RetentionSchedule {
        days: Some(30),
        action: RetentionAction::Purge,
        every: PERIOD,
    };
    let worker = spawn_retention(app.domain.clone(), schedule, metrics.clone(), stopped)
        .expect("a policy is configured");

    // Several runs go by while `old` is younger than 30 days: it stays.
    eventually("three runs", || async { ticks(&metrics, &app).await >= 3 }).await;
    assert!(exists(&app, old).await, "resolved just now");

    // Aged past the policy by the clock alone: the next run purges it.
    app.clock.advance(Duration::days(31));
    eventually("the old conversation is purged", || async {
        !exists(&app, old).await
    })
    .await;
    assert!(exists(&app, open).await, "open conversations are kept");

    // Shutdown: the task ends, and nothing is purged after it.
    stop.send(true).unwrap();
    tokio::time::timeout(StdDuration::from_secs(5), worker)
        .await
        .expect("the worker stops within 5 s of shutdown")
        .expect("the worker task did not panic");
    let runs = ticks(&metrics, &app).await;
    let later = resolved_conversation(&app, channel).await;
    app.clock.advance(Duration::days(31));
    tokio::time::sleep(PERIOD * 5).await;
    assert!(exists(&app, later).await, "no run after shutdown");
    assert_eq!(ticks(&metrics, &app).await, runs);
}
