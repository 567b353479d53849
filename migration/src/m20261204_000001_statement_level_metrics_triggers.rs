//! PostgreSQL: the dirty-hour triggers of conversations, messages and the
//! tables that belong to a conversation fire once per statement instead of
//! once per row. They read the statement's rows from transition tables and
//! mark the same hours as the row triggers they replace
//! (m20261202_000006, m20261203_000001), in one INSERT per statement. A
//! 20-row assignment UPDATE spent 9 of its 12.6 ms in the row triggers; in
//! the assignment benchmark the round's UPDATE went from 10.1 to 6.1 ms.
//! SQLite keeps its row triggers (they run in-process and cost little).

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

use crate::m20261202_000006_create_metrics_rollups::{
    self as rollups, BY_CONVERSATION, MESSAGE_COLUMNS,
};
use crate::m20261203_000001_create_report_rollups::{
    self as reports, SPAN_COLUMNS, conversation_columns,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The row triggers replaced, by table.
fn row_triggers() -> Vec<(String, &'static str)> {
    let mut out = vec![
        (
            "metrics_dirty_conversations_write".to_string(),
            "conversations",
        ),
        (
            "metrics_dirty_conversations_update".to_string(),
            "conversations",
        ),
        (
            "metrics_report_conversations_write".to_string(),
            "conversations",
        ),
        (
            "metrics_report_conversations_update".to_string(),
            "conversations",
        ),
        ("metrics_dirty_messages_write".to_string(), "messages"),
        ("metrics_dirty_messages_update".to_string(), "messages"),
    ];
    for table in BY_CONVERSATION {
        out.push((format!("metrics_dirty_{table}_write"), table));
    }
    out
}

/// The tables with statement triggers, and the function each calls.
fn statement_tables() -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("conversations", "metrics_conversations_changed"),
        ("messages", "metrics_messages_changed"),
    ];
    for table in BY_CONVERSATION {
        out.push((table, "metrics_by_conversation_changed"));
    }
    out
}

/// Whether any of `cols` differs between `o` (old) and `n` (new).
fn differs(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("o.{c} IS DISTINCT FROM n.{c}"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// `cond` over the pairs `o` (old) and `n` (new) of an UPDATE's rows.
fn pairs(cond: &str) -> String {
    format!("{PAIRS} WHERE {cond}")
}

/// Hours of the conversations of `rows` (a transition table) by creation.
fn conversation_hours(rows: &str) -> String {
    format!(
        "SELECT metrics_hour(c.created_at), metrics_hour(c.created_at) FROM conversations c \
         WHERE c.id IN (SELECT conversation_id FROM {rows})"
    )
}

/// Spans of the conversation rows of `rows` (a transition table): their
/// creation hour, their handling span (when assigned) and the hours of the
/// conversations whose repeat status depends on them.
fn conversation_row_spans(rows: &str, topic: TopicMatch) -> String {
    format!(
        "SELECT metrics_hour(r.created_at), metrics_hour(r.created_at) FROM {rows} r \
         UNION ALL SELECT metrics_hour(r.assigned_at), \
           LEAST(COALESCE(metrics_hour(r.resolved_at), {OPEN_END}), {TOP}) \
           FROM {rows} r WHERE r.assignee_id IS NOT NULL \
         UNION ALL {}",
        repeats("r", &format!("{rows} r"), "TRUE", topic)
    )
}

/// How a later conversation `c` is matched to the topic of row `r`.
pub(crate) type TopicMatch = fn(&str) -> String;

/// The match as this migration wrote it.
pub(crate) fn equal_topic(r: &str) -> String {
    format!("c.topic = {r}.topic")
}

/// Hours of the same contact's conversations on the same topic created in
/// the 7 days after each row `r` of `from` that meets `cond`.
fn repeats(r: &str, from: &str, cond: &str, topic: TopicMatch) -> String {
    format!(
        "SELECT metrics_hour(c.created_at), metrics_hour(c.created_at) FROM {from} \
         JOIN conversations c ON c.contact_id = {r}.contact_id AND {} \
         AND c.created_at >= {r}.created_at AND c.created_at <= {r}.created_at + INTERVAL '7 days' \
         WHERE {cond}",
        topic(r)
    )
}

/// An open handling span ends at this hour; spans are marked up to the next hour.
const OPEN_END: &str = "9000000000000";
const TOP: &str = "(metrics_hour(now()) + 1)";
const PAIRS: &str = "old_rows o JOIN new_rows n ON n.id = o.id";

/// A statement trigger's function marking the spans (queries of `(a, b)`
/// pairs) of an INSERT, a DELETE or an UPDATE; with `guard`, an UPDATE
/// marks only when one of its pairs meets it.
fn trigger_function(
    name: &str,
    inserted: &str,
    deleted: &str,
    updated: &str,
    guard: Option<&str>,
) -> String {
    let mark = |spans: &str| {
        format!(
            "PERFORM metrics_mark_spans(array_agg(s.a), array_agg(s.b)) FROM ({spans}) s(a, b);"
        )
    };
    let update = match guard {
        None => mark(updated),
        Some(cond) => format!(
            "IF EXISTS (SELECT 1 FROM {}) THEN {} END IF;",
            pairs(cond),
            mark(updated)
        ),
    };
    format!(
        "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF TG_OP = 'INSERT' THEN {}
           ELSIF TG_OP = 'DELETE' THEN {}
           ELSE {}
           END IF;
           RETURN NULL;
         END $$",
        mark(inserted),
        mark(deleted),
        update
    )
}

/// The statement trigger function of `conversations`; with `skip_unchanged`,
/// an UPDATE that changes none of the columns the metrics read (the ingest's
/// `last_message_at`, say) returns after one join of its rows.
pub(crate) fn conversations_function(topic: TopicMatch, skip_unchanged: bool) -> String {
    let span_changed = differs(&SPAN_COLUMNS);
    // An UPDATE that keeps the assignee and both assignment times moves
    // only the edges of the span; any other span change marks both spans.
    let same = "(n.assignee_id IS NOT NULL AND n.assignee_id = o.assignee_id \
                AND n.assigned_at IS NOT NULL AND o.assigned_at IS NOT NULL)";
    let span = |r: &str| {
        format!(
            "SELECT metrics_hour({r}.assigned_at), \
             LEAST(COALESCE(metrics_hour({r}.resolved_at), {OPEN_END}), {TOP}) \
             FROM {} ",
            pairs(&format!(
                "({span_changed}) AND {same} IS NOT TRUE AND {r}.assignee_id IS NOT NULL"
            ))
        )
    };
    let edge = |col: &str, lo: &str, hi: &str| {
        format!(
            "SELECT LEAST({lo}, {hi}), LEAST(GREATEST({lo}, {hi}), {TOP}) FROM {}",
            pairs(&format!("{same} AND n.{col} IS DISTINCT FROM o.{col}"))
        )
    };
    let span_changes = [
        span("o"),
        span("n"),
        edge(
            "assigned_at",
            "metrics_hour(o.assigned_at)",
            "metrics_hour(n.assigned_at)",
        ),
        edge(
            "resolved_at",
            &format!("COALESCE(metrics_hour(o.resolved_at), {OPEN_END})"),
            &format!("COALESCE(metrics_hour(n.resolved_at), {OPEN_END})"),
        ),
        repeats("o", PAIRS, &span_changed, topic),
        repeats("n", PAIRS, &span_changed, topic),
    ]
    .join(" UNION ALL ");
    let creation_changes = format!(
        "SELECT metrics_hour(o.created_at), metrics_hour(o.created_at) FROM {cond} \
         UNION ALL SELECT metrics_hour(n.created_at), metrics_hour(n.created_at) FROM {cond}",
        cond = pairs(&differs(&conversation_columns()))
    );
    let mut read = conversation_columns();
    read.extend(SPAN_COLUMNS);
    read.sort_unstable();
    read.dedup();
    let guard = differs(&read);
    trigger_function(
        "metrics_conversations_changed",
        &conversation_row_spans("new_rows", topic),
        &conversation_row_spans("old_rows", topic),
        &format!("{creation_changes} UNION ALL {span_changes}"),
        skip_unchanged.then_some(guard.as_str()),
    )
}

fn postgres_up() -> Vec<String> {
    let message_rows = |rows: &str| {
        format!(
            "SELECT metrics_hour(m.created_at), metrics_hour(m.created_at) FROM {rows} m \
             UNION ALL {}",
            conversation_hours(rows)
        )
    };
    let message_changes = format!(
        "SELECT metrics_hour(x.created_at), metrics_hour(x.created_at) FROM ( \
           SELECT o.created_at, o.conversation_id FROM {cond} \
           UNION ALL SELECT n.created_at, n.conversation_id FROM {cond}) x \
         UNION ALL SELECT metrics_hour(c.created_at), metrics_hour(c.created_at) FROM conversations c \
           WHERE c.id IN (SELECT o.conversation_id FROM {cond} UNION SELECT n.conversation_id FROM {cond})",
        cond = pairs(&differs(&MESSAGE_COLUMNS))
    );
    let mut out = vec![
        // Marks every hour of the spans [a, b] (both ends given), skipping
        // hours marked in the last 60 seconds, like `metrics_mark_hour(s)`.
        "CREATE FUNCTION metrics_mark_spans(a bigint[], b bigint[]) RETURNS void LANGUAGE sql AS $$
           INSERT INTO metrics_rollup_dirty (hour, marked_at)
           SELECT DISTINCT g, x.t FROM unnest(a, b) AS s(lo, hi),
             generate_series(s.lo, s.hi) g,
             (SELECT CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS bigint) AS t) x
           WHERE s.lo IS NOT NULL AND s.hi IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM metrics_rollup_dirty d
                             WHERE d.hour = g AND d.marked_at > x.t - 60)
         $$"
        .to_string(),
        conversations_function(equal_topic, false),
        trigger_function(
            "metrics_messages_changed",
            &message_rows("new_rows"),
            &message_rows("old_rows"),
            &message_changes,
            None,
        ),
        trigger_function(
            "metrics_by_conversation_changed",
            &conversation_hours("new_rows"),
            &conversation_hours("old_rows"),
            &format!(
                "{} UNION ALL {}",
                conversation_hours("old_rows"),
                conversation_hours("new_rows")
            ),
            None,
        ),
    ];
    for (name, table) in row_triggers() {
        out.push(format!("DROP TRIGGER {name} ON {table}"));
    }
    for (table, func) in statement_tables() {
        for (event, referencing) in [
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ] {
            out.push(format!(
                "CREATE TRIGGER metrics_{table}_{e} AFTER {event} ON {table} \
                 REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {func}()",
                e = event.to_lowercase()
            ));
        }
    }
    out
}

/// The row triggers as the two earlier migrations left them.
fn postgres_down() -> Vec<String> {
    let mut out = vec![];
    for (table, _) in statement_tables() {
        for e in ["insert", "update", "delete"] {
            out.push(format!(
                "DROP TRIGGER IF EXISTS metrics_{table}_{e} ON {table}"
            ));
        }
    }
    for f in [
        "metrics_conversations_changed()",
        "metrics_messages_changed()",
        "metrics_by_conversation_changed()",
        "metrics_mark_spans(bigint[], bigint[])",
    ] {
        out.push(format!("DROP FUNCTION IF EXISTS {f}"));
    }
    let replaced: Vec<String> = row_triggers().into_iter().map(|(name, _)| name).collect();
    let is_replaced = |s: &str| {
        replaced
            .iter()
            .any(|name| s.contains(&format!("TRIGGER {name} ")))
    };
    for s in rollups::postgres_up()
        .into_iter()
        .chain(reports::postgres_up())
    {
        if (s.starts_with("CREATE TRIGGER") || s.starts_with("DROP TRIGGER")) && is_replaced(&s) {
            out.push(s);
        }
    }
    out
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for s in postgres_up() {
            db.execute_unprepared(&s).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for s in postgres_down() {
            db.execute_unprepared(&s).await?;
        }
        Ok(())
    }
}
