//! Hourly rollups of the reports that had none (`domain::metrics::rollup`).
//!
//! - `metrics_rollup` gains `handle_n` / `handle_sum`: the cohort's
//!   resolved, assigned conversations and their handle time (whole
//!   milliseconds from `assigned_at`, or `created_at`, to `resolved_at`),
//!   for the staffing suggestion of the time-of-day analysis;
//! - `metrics_rollup_wait`: per (hour of creation, dimension kind, key) the
//!   conversations and conversions per waiting-time bucket (bucket 3: no
//!   response and not resolved, i.e. still waiting);
//! - `metrics_rollup_repeat`: per (hour of creation, dimension kind, key,
//!   topic) the conversations with a topic and the repeat contacts;
//! - `metrics_rollup_cost`: per (hour of the ledger row, channel, billing
//!   period) the billing ledger's counts and sums;
//! - `metrics_rollup_busy`: per (hour, agent) the milliseconds of that hour
//!   in which the agent had at least one assigned, unresolved conversation.
//!
//! Triggers mark dirty, in `metrics_rollup_dirty`, the hours these depend
//! on beyond the hour of creation: the hours a conversation's handling span
//! gained or lost (`assignee_id`, `assigned_at`, `resolved_at`; an open span
//! runs until now), the hours of the same contact's later conversations on
//! the same topic within 7 days (repeat contacts), the hour of a ledger row;
//! and `converted_at` / `contact_id` changes now mark the conversation's
//! hour too. Every hour is rolled up again after this migration.

use sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261202_000006_create_metrics_rollups::{CONVERSATION_COLUMNS, changed, sqlite_mark};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (table, key columns, counters); every table is read by (dim, hour) when
/// it has a dimension, by hour otherwise.
const TABLES: [(&str, &[&str], &[&str]); 4] = [
    (
        "metrics_rollup_wait",
        &["hour", "dim", "dkey", "bucket"],
        &["conversations", "converted"],
    ),
    (
        "metrics_rollup_repeat",
        &["hour", "dim", "dkey", "topic"],
        &["conversations", "repeats"],
    ),
    (
        "metrics_rollup_cost",
        &["hour", "channel_id", "period"],
        &[
            "messages",
            "free",
            "base_micros",
            "surcharge_micros",
            "total_micros",
        ],
    ),
    ("metrics_rollup_busy", &["hour", "agent_id"], &["busy_ms"]),
];

/// Conversation columns whose change marks the conversation's hour.
pub(crate) fn conversation_columns() -> Vec<&'static str> {
    let mut cols = CONVERSATION_COLUMNS.to_vec();
    cols.extend(["converted_at", "contact_id"]);
    cols
}

/// Columns of a handling span or a repeat-contact match.
pub(crate) const SPAN_COLUMNS: [&str; 6] = [
    "assignee_id",
    "assigned_at",
    "resolved_at",
    "contact_id",
    "topic",
    "created_at",
];

pub(crate) fn postgres_up() -> Vec<String> {
    let pg = DbBackend::Postgres;
    vec![
        "CREATE FUNCTION metrics_hour(ts timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
           SELECT CAST(FLOOR(EXTRACT(EPOCH FROM ts) / 3600) AS bigint)
         $$"
        .to_string(),
        // Hours h0..=h1, up to the next hour (later ones are not rolled up yet).
        "CREATE FUNCTION metrics_mark_hours(h0 bigint, h1 bigint) RETURNS void LANGUAGE plpgsql AS $$
         DECLARE t bigint; top bigint;
         BEGIN
           IF h0 IS NULL OR h1 IS NULL THEN RETURN; END IF;
           t := CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS bigint);
           top := LEAST(h1, metrics_hour(now()) + 1);
           INSERT INTO metrics_rollup_dirty (hour, marked_at)
             SELECT g, t FROM generate_series(h0, top) g
             WHERE NOT EXISTS (SELECT 1 FROM metrics_rollup_dirty d
                               WHERE d.hour = g AND d.marked_at > t - 60);
         END $$"
            .to_string(),
        // The hours of the same contact's conversations on the same topic
        // created in the 7 days after `ts` (their repeat status depends on it).
        "CREATE FUNCTION metrics_mark_repeats(k bigint, tp text, ts timestamptz) RETURNS void
         LANGUAGE plpgsql AS $$
         DECLARE t bigint;
         BEGIN
           IF k IS NULL OR tp IS NULL OR ts IS NULL THEN RETURN; END IF;
           t := CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS bigint);
           INSERT INTO metrics_rollup_dirty (hour, marked_at)
             SELECT DISTINCT x.h, t FROM (SELECT metrics_hour(c.created_at) AS h FROM conversations c
               WHERE c.contact_id = k AND c.topic = tp AND c.created_at >= ts
               AND c.created_at <= ts + INTERVAL '7 days') x
             WHERE NOT EXISTS (SELECT 1 FROM metrics_rollup_dirty d
                               WHERE d.hour = x.h AND d.marked_at > t - 60);
         END $$"
            .to_string(),
        // A handling span is [assigned_at, resolved_at or now) of the assignee.
        "CREATE FUNCTION metrics_report_conversation() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE open_end CONSTANT bigint := 9000000000000;
         BEGIN
           IF TG_OP = 'UPDATE' AND NEW.assignee_id IS NOT NULL
              AND NEW.assignee_id = OLD.assignee_id
              AND NEW.assigned_at IS NOT NULL AND OLD.assigned_at IS NOT NULL THEN
             IF NEW.assigned_at IS DISTINCT FROM OLD.assigned_at THEN
               PERFORM metrics_mark_hours(
                 LEAST(metrics_hour(OLD.assigned_at), metrics_hour(NEW.assigned_at)),
                 GREATEST(metrics_hour(OLD.assigned_at), metrics_hour(NEW.assigned_at)));
             END IF;
             IF NEW.resolved_at IS DISTINCT FROM OLD.resolved_at THEN
               PERFORM metrics_mark_hours(
                 LEAST(COALESCE(metrics_hour(OLD.resolved_at), open_end),
                       COALESCE(metrics_hour(NEW.resolved_at), open_end)),
                 GREATEST(COALESCE(metrics_hour(OLD.resolved_at), open_end),
                          COALESCE(metrics_hour(NEW.resolved_at), open_end)));
             END IF;
           ELSE
             IF TG_OP <> 'INSERT' AND OLD.assignee_id IS NOT NULL THEN
               PERFORM metrics_mark_hours(metrics_hour(OLD.assigned_at),
                 COALESCE(metrics_hour(OLD.resolved_at), open_end));
             END IF;
             IF TG_OP <> 'DELETE' AND NEW.assignee_id IS NOT NULL THEN
               PERFORM metrics_mark_hours(metrics_hour(NEW.assigned_at),
                 COALESCE(metrics_hour(NEW.resolved_at), open_end));
             END IF;
           END IF;
           IF TG_OP <> 'INSERT' THEN
             PERFORM metrics_mark_repeats(OLD.contact_id, OLD.topic, OLD.created_at);
           END IF;
           IF TG_OP <> 'DELETE' THEN
             PERFORM metrics_mark_repeats(NEW.contact_id, NEW.topic, NEW.created_at);
           END IF;
           RETURN NULL;
         END $$"
            .to_string(),
        "CREATE FUNCTION metrics_dirty_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF TG_OP <> 'INSERT' THEN PERFORM metrics_mark_hour(OLD.created_at); END IF;
           IF TG_OP <> 'DELETE' THEN PERFORM metrics_mark_hour(NEW.created_at); END IF;
           RETURN NULL;
         END $$"
            .to_string(),
        "CREATE TRIGGER metrics_report_conversations_write AFTER INSERT OR DELETE ON conversations \
         FOR EACH ROW EXECUTE FUNCTION metrics_report_conversation()"
            .to_string(),
        format!(
            "CREATE TRIGGER metrics_report_conversations_update AFTER UPDATE ON conversations \
             FOR EACH ROW WHEN ({}) EXECUTE FUNCTION metrics_report_conversation()",
            changed(&SPAN_COLUMNS, pg)
        ),
        "CREATE TRIGGER metrics_dirty_billing_ledger_write AFTER INSERT OR UPDATE OR DELETE \
         ON billing_ledger FOR EACH ROW EXECUTE FUNCTION metrics_dirty_ledger()"
            .to_string(),
        "DROP TRIGGER metrics_dirty_conversations_update ON conversations".to_string(),
        format!(
            "CREATE TRIGGER metrics_dirty_conversations_update AFTER UPDATE ON conversations \
             FOR EACH ROW WHEN ({}) EXECUTE FUNCTION metrics_dirty_conversation()",
            changed(&conversation_columns(), pg)
        ),
    ]
}

/// SQLite: the hour number of a timestamp expression.
fn sqlite_hour(ts: &str) -> String {
    format!("(CAST(strftime('%s', {ts}) AS INTEGER) / 3600)")
}

/// SQLite: one statement marking hours `lo..=hi` (up to the next hour) when
/// `cond` holds. Triggers cannot hold a WITH clause: the hour numbers come
/// from `json_each` over an array of `hi - lo + 1` zeros.
fn sqlite_mark_hours(cond: &str, lo: &str, hi: &str) -> String {
    let now = "CAST(strftime('%s', 'now') AS INTEGER)";
    format!(
        "INSERT INTO metrics_rollup_dirty (hour, marked_at) \
         SELECT x.lo + j.key, x.t FROM (SELECT {lo} AS lo, MIN({hi}, {now} / 3600 + 1) AS hi, \
         {now} AS t WHERE {cond}) x, \
         json_each('[' || substr(replace(hex(zeroblob(MAX(x.hi - x.lo + 1, 0))), '00', '0,'), \
         1, 2 * MAX(x.hi - x.lo + 1, 0) - 1) || ']') j \
         WHERE x.lo IS NOT NULL AND x.hi >= x.lo AND NOT EXISTS (SELECT 1 FROM \
         metrics_rollup_dirty d WHERE d.hour = x.lo + j.key AND d.marked_at > x.t - 60);"
    )
}

const OPEN_END: &str = "9000000000000";

/// The whole handling span of `row` when `cond` holds.
fn sqlite_span(row: &str, cond: &str) -> String {
    sqlite_mark_hours(
        &format!("{cond} AND {row}.assignee_id IS NOT NULL AND {row}.assigned_at IS NOT NULL"),
        &sqlite_hour(&format!("{row}.assigned_at")),
        &format!(
            "COALESCE({}, {OPEN_END})",
            sqlite_hour(&format!("{row}.resolved_at"))
        ),
    )
}

fn sqlite_repeats(row: &str) -> String {
    format!(
        "INSERT INTO metrics_rollup_dirty (hour, marked_at) \
         SELECT DISTINCT {h}, CAST(strftime('%s', 'now') AS INTEGER) FROM conversations c \
         WHERE {row}.contact_id IS NOT NULL AND {row}.topic IS NOT NULL \
         AND c.contact_id = {row}.contact_id AND c.topic = {row}.topic \
         AND julianday(c.created_at) >= julianday({row}.created_at) - 0.0001 \
         AND julianday(c.created_at) <= julianday({row}.created_at) + 7.0001 \
         AND NOT EXISTS (SELECT 1 FROM metrics_rollup_dirty d WHERE d.hour = {h} \
         AND d.marked_at > CAST(strftime('%s', 'now') AS INTEGER) - 60);",
        h = sqlite_hour("c.created_at"),
    )
}

fn sqlite_up() -> Vec<String> {
    let sq = DbBackend::Sqlite;
    let same = "NEW.assignee_id IS NOT NULL AND NEW.assignee_id IS OLD.assignee_id \
                AND NEW.assigned_at IS NOT NULL AND OLD.assigned_at IS NOT NULL";
    let (a_old, a_new) = (
        sqlite_hour("OLD.assigned_at"),
        sqlite_hour("NEW.assigned_at"),
    );
    let (e_old, e_new) = (
        format!("COALESCE({}, {OPEN_END})", sqlite_hour("OLD.resolved_at")),
        format!("COALESCE({}, {OPEN_END})", sqlite_hour("NEW.resolved_at")),
    );
    let update_body = [
        sqlite_mark_hours(
            &format!("{same} AND OLD.assigned_at IS NOT NEW.assigned_at"),
            &format!("MIN({a_old}, {a_new})"),
            &format!("MAX({a_old}, {a_new})"),
        ),
        sqlite_mark_hours(
            &format!("{same} AND OLD.resolved_at IS NOT NEW.resolved_at"),
            &format!("MIN({e_old}, {e_new})"),
            &format!("MAX({e_old}, {e_new})"),
        ),
        sqlite_span("OLD", &format!("NOT ({same})")),
        sqlite_span("NEW", &format!("NOT ({same})")),
        sqlite_repeats("OLD"),
        sqlite_repeats("NEW"),
    ]
    .join(" ");
    let ledger_update = format!(
        "{} {}",
        sqlite_mark("OLD.created_at"),
        sqlite_mark("NEW.created_at")
    );
    vec![
        format!(
            "CREATE TRIGGER metrics_report_conversations_insert AFTER INSERT ON conversations \
             FOR EACH ROW BEGIN {} {} END",
            sqlite_span("NEW", "1 = 1"),
            sqlite_repeats("NEW")
        ),
        format!(
            "CREATE TRIGGER metrics_report_conversations_delete AFTER DELETE ON conversations \
             FOR EACH ROW BEGIN {} {} END",
            sqlite_span("OLD", "1 = 1"),
            sqlite_repeats("OLD")
        ),
        format!(
            "CREATE TRIGGER metrics_report_conversations_update AFTER UPDATE ON conversations \
             FOR EACH ROW WHEN {} BEGIN {update_body} END",
            changed(&SPAN_COLUMNS, sq)
        ),
        format!(
            "CREATE TRIGGER metrics_dirty_billing_ledger_insert AFTER INSERT ON billing_ledger \
             FOR EACH ROW BEGIN {} END",
            sqlite_mark("NEW.created_at")
        ),
        format!(
            "CREATE TRIGGER metrics_dirty_billing_ledger_delete AFTER DELETE ON billing_ledger \
             FOR EACH ROW BEGIN {} END",
            sqlite_mark("OLD.created_at")
        ),
        format!(
            "CREATE TRIGGER metrics_dirty_billing_ledger_update AFTER UPDATE ON billing_ledger \
             FOR EACH ROW BEGIN {ledger_update} END"
        ),
        "DROP TRIGGER metrics_dirty_conversations_update".to_string(),
        format!(
            "CREATE TRIGGER metrics_dirty_conversations_update AFTER UPDATE ON conversations \
             FOR EACH ROW WHEN {} BEGIN {} {} END",
            changed(&conversation_columns(), sq),
            sqlite_mark("OLD.created_at"),
            sqlite_mark("NEW.created_at")
        ),
    ]
}

/// The conversations update trigger as the previous migration made it.
fn restore_conversation_update(backend: DbBackend) -> Vec<String> {
    match backend {
        DbBackend::Postgres => vec![
            "DROP TRIGGER IF EXISTS metrics_dirty_conversations_update ON conversations".into(),
            format!(
                "CREATE TRIGGER metrics_dirty_conversations_update AFTER UPDATE ON conversations \
                 FOR EACH ROW WHEN ({}) EXECUTE FUNCTION metrics_dirty_conversation()",
                changed(&CONVERSATION_COLUMNS, backend)
            ),
        ],
        _ => vec![
            "DROP TRIGGER IF EXISTS metrics_dirty_conversations_update".into(),
            format!(
                "CREATE TRIGGER metrics_dirty_conversations_update AFTER UPDATE ON conversations \
                 FOR EACH ROW WHEN {} BEGIN {} {} END",
                changed(&CONVERSATION_COLUMNS, backend),
                sqlite_mark("OLD.created_at"),
                sqlite_mark("NEW.created_at")
            ),
        ],
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in ["handle_n", "handle_sum"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("metrics_rollup"))
                        .add_column(big_integer(Alias::new(col)).default(0))
                        .to_owned(),
                )
                .await?;
        }
        for (table, keys, counters) in TABLES {
            let mut t = Table::create();
            t.table(Alias::new(table));
            for k in keys {
                match *k {
                    "dim" => t.col(string_len(Alias::new("dim"), 16)),
                    "dkey" | "topic" => t.col(text_null(Alias::new(*k))),
                    "period" => t.col(string_len(Alias::new("period"), 7)),
                    other => t.col(big_integer(Alias::new(other))),
                };
            }
            for c in counters {
                t.col(big_integer(Alias::new(*c)).default(0));
            }
            manager.create_table(t.to_owned()).await?;
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
        // Every hour is rolled up again, with the new tables.
        db.execute_unprepared("DELETE FROM metrics_rollup_hours")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        let mut statements = vec![];
        match backend {
            DbBackend::Postgres => {
                for (name, table) in [
                    ("metrics_report_conversations_write", "conversations"),
                    ("metrics_report_conversations_update", "conversations"),
                    ("metrics_dirty_billing_ledger_write", "billing_ledger"),
                ] {
                    statements.push(format!("DROP TRIGGER IF EXISTS {name} ON {table}"));
                }
                for f in [
                    "metrics_dirty_ledger()",
                    "metrics_report_conversation()",
                    "metrics_mark_repeats(bigint, text, timestamptz)",
                    "metrics_mark_hours(bigint, bigint)",
                    "metrics_hour(timestamptz)",
                ] {
                    statements.push(format!("DROP FUNCTION IF EXISTS {f}"));
                }
            }
            _ => {
                for name in [
                    "metrics_report_conversations_insert",
                    "metrics_report_conversations_delete",
                    "metrics_report_conversations_update",
                    "metrics_dirty_billing_ledger_insert",
                    "metrics_dirty_billing_ledger_delete",
                    "metrics_dirty_billing_ledger_update",
                ] {
                    statements.push(format!("DROP TRIGGER IF EXISTS {name}"));
                }
            }
        }
        statements.extend(restore_conversation_update(backend));
        for sql in statements {
            db.execute_unprepared(&sql).await?;
        }
        for (table, _, _) in TABLES {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        for col in ["handle_n", "handle_sum"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("metrics_rollup"))
                        .drop_column(Alias::new(col))
                        .to_owned(),
                )
                .await?;
        }
        db.execute_unprepared("DELETE FROM metrics_rollup_hours")
            .await?;
        Ok(())
    }
}
