//! Hourly rollups of the dashboard metrics (`domain::metrics::rollup`).
//!
//! Hours are whole UTC hours numbered from the epoch (`floor(epoch / 3600)`).
//! - `metrics_rollup_hours`: the hours that have been rolled up (and when);
//! - `metrics_rollup_dirty`: hours whose data changed since; written by the
//!   triggers below on every change of conversations, messages, SLA events,
//!   assignments and conversation tags, whatever code path makes it. A row
//!   is skipped when the same hour already has one marked in the last 60
//!   seconds (`marked_at`, epoch seconds of the writing transaction);
//! - `metrics_rollup`: the core KPIs' counts and sums per (hour of creation,
//!   dimension kind, dimension key);
//! - `metrics_rollup_frt`: first-response-time histogram (exact milliseconds);
//! - `metrics_rollup_volume`: the cohort's messages per hour they were sent;
//! - `metrics_rollup_handlers`: per agent, conversations handled and
//!   transferred away;
//! - `metrics_rollup_chars`: per agent, characters sent in the hour.

use sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The counters of `metrics_rollup`, in the order the domain writes them.
const CORE: [&str; 21] = [
    "conversations",
    "responded",
    "frt_sum",
    "resolved",
    "res_sum",
    "csat_answers",
    "csat_sum",
    "csat_satisfied",
    "nps_answers",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
    "fcr",
    "sla_tracked",
    "sla_breached",
    "escalated",
    "transferred",
    "automated",
    "ever_resolved",
    "reopened",
    "speed_sum",
];

/// (table, counters after the key columns, key columns).
const TABLES: [(&str, &[&str], &[&str]); 5] = [
    ("metrics_rollup", &CORE, &["hour", "dim", "dkey"]),
    (
        "metrics_rollup_frt",
        &["frt_ms", "n"],
        &["hour", "dim", "dkey"],
    ),
    (
        "metrics_rollup_volume",
        &["msg_hour", "messages_in", "messages_out"],
        &["hour", "dim", "dkey"],
    ),
    (
        "metrics_rollup_handlers",
        &["agent_id", "handled", "transferred"],
        &["hour"],
    ),
    ("metrics_rollup_chars", &["agent_id", "chars"], &["hour"]),
];

/// Conversation columns a metric reads: an update of any other column
/// (locks, status timestamps of messages…) leaves the rollups valid.
pub(crate) const CONVERSATION_COLUMNS: [&str; 16] = [
    "created_at",
    "channel_id",
    "department_id",
    "assignee_id",
    "assigned_at",
    "topic",
    "priority",
    "first_response_at",
    "resolved_at",
    "csat",
    "nps",
    "reopen_count",
    "transfer_count",
    "escalation_level",
    "first_response_due_at",
    "resolution_due_at",
];
pub(crate) const MESSAGE_COLUMNS: [&str; 6] = [
    "conversation_id",
    "created_at",
    "direction",
    "sender_kind",
    "sender_user_id",
    "body",
];
/// Tables whose rows belong to a conversation and feed a metric.
pub(crate) const BY_CONVERSATION: [&str; 3] = ["sla_events", "assignments", "conversation_tags"];

pub(crate) fn changed(cols: &[&str], backend: DbBackend) -> String {
    let op = match backend {
        DbBackend::Postgres => "IS DISTINCT FROM",
        _ => "IS NOT",
    };
    cols.iter()
        .map(|c| format!("OLD.{c} {op} NEW.{c}"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

pub(crate) fn postgres_up() -> Vec<String> {
    let mut out = vec![
        "CREATE FUNCTION metrics_mark_hour(ts timestamptz) RETURNS void LANGUAGE plpgsql AS $$
         DECLARE h bigint; t bigint;
         BEGIN
           IF ts IS NULL THEN RETURN; END IF;
           h := CAST(FLOOR(EXTRACT(EPOCH FROM ts) / 3600) AS bigint);
           t := CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS bigint);
           IF NOT EXISTS (SELECT 1 FROM metrics_rollup_dirty
                          WHERE hour = h AND marked_at > t - 60) THEN
             INSERT INTO metrics_rollup_dirty (hour, marked_at) VALUES (h, t);
           END IF;
         END $$"
            .to_string(),
        "CREATE FUNCTION metrics_mark_conversation(cid bigint) RETURNS void LANGUAGE plpgsql AS $$
         BEGIN
           PERFORM metrics_mark_hour((SELECT created_at FROM conversations WHERE id = cid));
         END $$"
            .to_string(),
        "CREATE FUNCTION metrics_dirty_conversation() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF TG_OP <> 'INSERT' THEN PERFORM metrics_mark_hour(OLD.created_at); END IF;
           IF TG_OP = 'INSERT' THEN PERFORM metrics_mark_hour(NEW.created_at);
           ELSIF TG_OP = 'UPDATE' AND NEW.created_at IS DISTINCT FROM OLD.created_at THEN
             PERFORM metrics_mark_hour(NEW.created_at);
           END IF;
           RETURN NULL;
         END $$"
            .to_string(),
        "CREATE FUNCTION metrics_dirty_message() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF TG_OP <> 'INSERT' THEN
             PERFORM metrics_mark_conversation(OLD.conversation_id);
             PERFORM metrics_mark_hour(OLD.created_at);
           END IF;
           IF TG_OP <> 'DELETE' THEN
             PERFORM metrics_mark_conversation(NEW.conversation_id);
             PERFORM metrics_mark_hour(NEW.created_at);
           END IF;
           RETURN NULL;
         END $$"
            .to_string(),
        "CREATE FUNCTION metrics_dirty_by_conversation() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF TG_OP <> 'INSERT' THEN PERFORM metrics_mark_conversation(OLD.conversation_id); END IF;
           IF TG_OP <> 'DELETE' THEN PERFORM metrics_mark_conversation(NEW.conversation_id); END IF;
           RETURN NULL;
         END $$"
            .to_string(),
    ];
    let pg = DbBackend::Postgres;
    for (table, func, cols) in [
        (
            "conversations",
            "metrics_dirty_conversation",
            &CONVERSATION_COLUMNS[..],
        ),
        ("messages", "metrics_dirty_message", &MESSAGE_COLUMNS[..]),
    ] {
        out.push(format!(
            "CREATE TRIGGER metrics_dirty_{table}_write AFTER INSERT OR DELETE ON {table} \
             FOR EACH ROW EXECUTE FUNCTION {func}()"
        ));
        out.push(format!(
            "CREATE TRIGGER metrics_dirty_{table}_update AFTER UPDATE ON {table} \
             FOR EACH ROW WHEN ({}) EXECUTE FUNCTION {func}()",
            changed(cols, pg)
        ));
    }
    for table in BY_CONVERSATION {
        out.push(format!(
            "CREATE TRIGGER metrics_dirty_{table}_write AFTER INSERT OR UPDATE OR DELETE ON {table} \
             FOR EACH ROW EXECUTE FUNCTION metrics_dirty_by_conversation()"
        ));
    }
    out
}

/// One SQLite statement marking the hour of the timestamp expression `ts`.
pub(crate) fn sqlite_mark(ts: &str) -> String {
    format!(
        "INSERT INTO metrics_rollup_dirty (hour, marked_at) \
         SELECT x.h, x.t FROM (SELECT CAST(strftime('%s', {ts}) AS INTEGER) / 3600 AS h, \
         CAST(strftime('%s', 'now') AS INTEGER) AS t) x \
         WHERE x.h IS NOT NULL AND NOT EXISTS (SELECT 1 FROM metrics_rollup_dirty d \
         WHERE d.hour = x.h AND d.marked_at > x.t - 60);"
    )
}

fn sqlite_conversation(row: &str) -> String {
    sqlite_mark(&format!(
        "(SELECT cc.created_at FROM conversations cc WHERE cc.id = {row}.conversation_id)"
    ))
}

fn sqlite_up() -> Vec<String> {
    let sq = DbBackend::Sqlite;
    let mut out = vec![];
    let mut trigger = |name: String, event: String, body: String| {
        // `UPDATE ON t WHEN …`: the condition goes after FOR EACH ROW.
        let (on, when) = match event.split_once(" WHEN ") {
            Some((on, when)) => (on.to_string(), format!(" WHEN {when}")),
            None => (event, String::new()),
        };
        out.push(format!(
            "CREATE TRIGGER {name} AFTER {on} FOR EACH ROW{when} BEGIN {body} END"
        ));
    };
    trigger(
        "metrics_dirty_conversations_insert".into(),
        "INSERT ON conversations".into(),
        sqlite_mark("NEW.created_at"),
    );
    trigger(
        "metrics_dirty_conversations_delete".into(),
        "DELETE ON conversations".into(),
        sqlite_mark("OLD.created_at"),
    );
    trigger(
        "metrics_dirty_conversations_update".into(),
        format!(
            "UPDATE ON conversations WHEN {}",
            changed(&CONVERSATION_COLUMNS, sq)
        ),
        format!(
            "{} {}",
            sqlite_mark("OLD.created_at"),
            sqlite_mark("NEW.created_at")
        ),
    );
    let message = |row: &str| {
        format!(
            "{} {}",
            sqlite_conversation(row),
            sqlite_mark(&format!("{row}.created_at"))
        )
    };
    trigger(
        "metrics_dirty_messages_insert".into(),
        "INSERT ON messages".into(),
        message("NEW"),
    );
    trigger(
        "metrics_dirty_messages_delete".into(),
        "DELETE ON messages".into(),
        message("OLD"),
    );
    trigger(
        "metrics_dirty_messages_update".into(),
        format!("UPDATE ON messages WHEN {}", changed(&MESSAGE_COLUMNS, sq)),
        format!("{} {}", message("OLD"), message("NEW")),
    );
    for table in BY_CONVERSATION {
        trigger(
            format!("metrics_dirty_{table}_insert"),
            format!("INSERT ON {table}"),
            sqlite_conversation("NEW"),
        );
        trigger(
            format!("metrics_dirty_{table}_delete"),
            format!("DELETE ON {table}"),
            sqlite_conversation("OLD"),
        );
        trigger(
            format!("metrics_dirty_{table}_update"),
            format!("UPDATE ON {table}"),
            format!(
                "{} {}",
                sqlite_conversation("OLD"),
                sqlite_conversation("NEW")
            ),
        );
    }
    out
}

fn trigger_names(backend: DbBackend) -> Vec<(String, &'static str)> {
    let mut out = vec![];
    match backend {
        DbBackend::Postgres => {
            for table in ["conversations", "messages"] {
                out.push((format!("metrics_dirty_{table}_write"), table));
                out.push((format!("metrics_dirty_{table}_update"), table));
            }
            for table in BY_CONVERSATION {
                out.push((format!("metrics_dirty_{table}_write"), table));
            }
        }
        _ => {
            for table in ["conversations", "messages"]
                .into_iter()
                .chain(BY_CONVERSATION)
            {
                for op in ["insert", "delete", "update"] {
                    out.push((format!("metrics_dirty_{table}_{op}"), table));
                }
            }
        }
    }
    out
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("metrics_rollup_hours"))
                    .col(big_integer(Alias::new("hour")).primary_key())
                    .col(timestamp_with_time_zone(Alias::new("refreshed_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("metrics_rollup_dirty"))
                    .col(big_pk_auto(Alias::new("id")))
                    .col(big_integer(Alias::new("hour")))
                    .col(big_integer(Alias::new("marked_at")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_metrics_rollup_dirty_hour_marked_at")
                    .table(Alias::new("metrics_rollup_dirty"))
                    .col(Alias::new("hour"))
                    .col(Alias::new("marked_at"))
                    .to_owned(),
            )
            .await?;
        for (table, counters, keys) in TABLES {
            let mut t = Table::create();
            t.table(Alias::new(table));
            for k in keys {
                match *k {
                    "dim" => t.col(string_len(Alias::new("dim"), 16)),
                    "dkey" => t.col(text_null(Alias::new("dkey"))),
                    other => t.col(big_integer(Alias::new(other))),
                };
            }
            for c in counters {
                if *c == "agent_id" {
                    t.col(big_integer(Alias::new(*c)));
                } else {
                    t.col(big_integer(Alias::new(*c)).default(0));
                }
            }
            manager.create_table(t.to_owned()).await?;
            // Read by (dimension kind, hour range); written by hour.
            let cols: &[&str] = if keys.contains(&"dim") {
                &["dim", "hour"]
            } else {
                &["hour"]
            };
            let mut index = Index::create();
            index
                .name(format!("idx_{table}_{}", cols.join("_")))
                .table(Alias::new(table));
            for c in cols {
                index.col(Alias::new(*c));
            }
            manager.create_index(index.to_owned()).await?;
        }
        let db = manager.get_connection();
        let statements = match manager.get_database_backend() {
            DbBackend::Postgres => postgres_up(),
            _ => sqlite_up(),
        };
        for sql in statements {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        for (name, table) in trigger_names(backend) {
            let sql = match backend {
                DbBackend::Postgres => format!("DROP TRIGGER IF EXISTS {name} ON {table}"),
                _ => format!("DROP TRIGGER IF EXISTS {name}"),
            };
            db.execute_unprepared(&sql).await?;
        }
        if backend == DbBackend::Postgres {
            for f in [
                "metrics_dirty_by_conversation()",
                "metrics_dirty_message()",
                "metrics_dirty_conversation()",
                "metrics_mark_conversation(bigint)",
                "metrics_mark_hour(timestamptz)",
            ] {
                db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS {f}"))
                    .await?;
            }
        }
        for table in TABLES
            .iter()
            .map(|(t, _, _)| *t)
            .chain(["metrics_rollup_dirty", "metrics_rollup_hours"])
        {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
