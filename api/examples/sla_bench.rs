//! SLA sweep benchmark on PostgreSQL (see docs/bench-sla.md).
//!
//! Seeds 100,000 open conversations into an empty database (93,000 answered
//! in the last 6 hours, 2,000 unanswered from the last 10 minutes, 5,000
//! unanswered and already breached hours ago, 10 % high priority) with the
//! due times and next checks their clocks store, prints the plan of the
//! sweep's query (EXPLAIN ANALYZE), then times five consecutive sweeps with
//! the real clock.
//!
//! ```text
//! cargo run -p api --example sla_bench -- postgres://postgres@127.0.0.1:5432/sla_bench
//! ```

use std::sync::Arc;
use std::time::Instant;

use api::Config;
use chrono::Utc;
use domain::events::NoEvents;
use domain::sla::worker::due_page;
use domain::{Clock, SystemClock};
use entity::conversation;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    QueryTrait, Statement,
};

const SEED: &[&str] = &[
    "INSERT INTO channels (name, phone_number_id, region, is_active, created_at, updated_at) \
     VALUES ('Bench', 'bench-sla', 'europe', true, now(), now())",
    "INSERT INTO contacts (wa_id, priority, is_vip, consent, fields, created_at, updated_at) \
     SELECT 'bench' || g, 'normal', false, 'unknown', '{}', now(), now() \
     FROM generate_series(1, 100000) g",
    "INSERT INTO conversations (channel_id, contact_id, status, priority, escalation_level, \
       transfer_count, reopen_count, created_at, updated_at, queued_at, last_message_at, \
       last_inbound_at, first_response_at, first_response_due_at, resolution_due_at, \
       important_wait_due_at, sla_next_at) \
     SELECT (SELECT id FROM channels WHERE phone_number_id = 'bench-sla'), c.id, 'open', \
       CASE WHEN c.g % 10 = 0 THEN 'high' ELSE 'normal' END, \
       CASE WHEN c.g > 95000 THEN 1 ELSE 0 END, 0, 0, \
       t.created, t.created, t.created, t.created, t.created, \
       CASE WHEN c.g <= 93000 THEN t.created + interval '2 minutes' END, \
       t.created + interval '10 minutes', t.created + interval '24 hours', \
       CASE WHEN c.g > 93000 THEN t.created + interval '5 minutes' END, \
       CASE WHEN c.g > 93000 AND c.g <= 95000 THEN LEAST(t.created + interval '8 minutes', \
         CASE WHEN c.g % 10 = 0 THEN t.created + interval '5 minutes' END) \
         ELSE t.created + interval '1152 minutes' END \
     FROM (SELECT id, row_number() OVER (ORDER BY id) AS g FROM contacts \
           WHERE wa_id LIKE 'bench%') c \
     CROSS JOIN LATERAL (SELECT CASE \
       WHEN c.g <= 93000 THEN now() - (c.g % 21600) * interval '1 second' \
       WHEN c.g <= 95000 THEN now() - ((c.g - 93000) % 600) * interval '1 second' \
       ELSE now() - interval '12 hours' - (c.g % 3600) * interval '1 second' END AS created) t",
    "INSERT INTO sla_events (conversation_id, kind, level, target_at, occurred_at, late_secs) \
     SELECT c.id, v.k, v.l, c.first_response_due_at, c.first_response_due_at, 0 \
     FROM conversations c, (VALUES ('first_response', 'warning'), \
       ('first_response', 'escalation'), ('first_response', 'breach')) v(k, l) \
     WHERE c.first_response_at IS NULL AND c.created_at < now() - interval '1 hour'",
    "INSERT INTO sla_events (conversation_id, kind, level, target_at, occurred_at) \
     SELECT id, 'important_wait', 'alert', created_at, created_at + interval '5 minutes' \
     FROM conversations WHERE first_response_at IS NULL AND priority = 'high' \
       AND created_at < now() - interval '1 hour'",
    "ANALYZE",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/sla_bench".into());
    let config = Config {
        database_url: url,
        jwt_secret: Some("sla-bench-secret-that-is-long-enough".into()),
        ..Config::default()
    };
    let (domain, _) =
        api::startup::open_domain(&config, Arc::new(SystemClock), Arc::new(NoEvents)).await?;
    let db = &domain.db;
    anyhow::ensure!(
        db.get_database_backend() == DbBackend::Postgres,
        "this benchmark needs PostgreSQL"
    );
    if conversation::Entity::find().count(db).await? == 0 {
        let t = Instant::now();
        for sql in SEED {
            db.execute_unprepared(sql).await?;
        }
        println!("seeded in {:.1} s", t.elapsed().as_secs_f64());
    }
    let open = conversation::Entity::find()
        .filter(conversation::Column::Status.eq(entity::ConversationStatus::Open))
        .count(db)
        .await?;
    println!("open conversations: {open}");

    let sql = due_page(SystemClock.now(), None)
        .select_only()
        .column(conversation::Column::Id)
        .column(conversation::Column::SlaNextAt)
        .build(DbBackend::Postgres)
        .to_string();
    println!("\n-- due for a check\n{sql};");
    let plan = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"),
        ))
        .await?;
    for row in plan {
        let line: String = row.try_get("", "QUERY PLAN")?;
        println!("{line}");
    }

    println!();
    for n in 1..=5 {
        let t = Instant::now();
        let report = domain.run_sla_sweep().await?;
        println!(
            "sweep {n}: {:.0} ms at {} ({report:?})",
            t.elapsed().as_secs_f64() * 1000.0,
            Utc::now().format("%H:%M:%S")
        );
    }
    Ok(())
}
