//! PostgreSQL: three fixes to what the metrics triggers cost per statement.
//!
//! - `metrics_hour` is inlined again. Its body took `EXTRACT(EPOCH FROM
//!   timestamptz)`, which PostgreSQL marks stable, inside a function declared
//!   immutable, so the planner refused to inline it and ran it as a nested
//!   SQL statement per call (the INSERT trigger of a 40-row batch spent
//!   4.9 ms in it; inlined, 0.9 ms). Epoch seconds are now the difference to
//!   the epoch, an immutable interval: same values, including before 1970.
//! - The repeat-contact lookup of the conversations trigger compares topics
//!   with `IS NOT DISTINCT FROM` (and a non-null topic, as `=` did), which no
//!   index serves, so only the contact drives the lookup. PL/pgSQL caches the
//!   trigger's plan per connection; planned while the table was small, it
//!   used the single-column topic index and read every conversation of the
//!   topic for each new row: 25–45 ms for a 60-row INSERT.
//! - An UPDATE of conversations that changes no column the metrics read
//!   (the ingest's `status`, `last_message_at`, `last_inbound_at`) stops
//!   after one join of its rows instead of running every branch: 2 ms →
//!   0.2 ms for 30 rows.
//!
//! SQLite is unchanged.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

use crate::m20261204_000001_statement_level_metrics_triggers::{
    TopicMatch, conversations_function, equal_topic,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

const HOUR_BEFORE: &str = "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM ts) / 3600) AS bigint)";
const HOUR_INLINED: &str = "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM (ts - TIMESTAMPTZ '1970-01-01 00:00:00+00')) / 3600) AS bigint)";

/// A later conversation on the same topic, found through its contact only.
fn contact_then_topic(r: &str) -> String {
    format!("c.topic IS NOT DISTINCT FROM {r}.topic AND {r}.topic IS NOT NULL")
}

fn statements(hour: &str, topic: TopicMatch, skip_unchanged: bool) -> Vec<String> {
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION metrics_hour(ts timestamptz) RETURNS bigint \
             LANGUAGE sql IMMUTABLE AS $$ {hour} $$"
        ),
        conversations_function(topic, skip_unchanged).replacen(
            "CREATE FUNCTION",
            "CREATE OR REPLACE FUNCTION",
            1,
        ),
    ]
}

async fn run(manager: &SchemaManager<'_>, sql: Vec<String>) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for s in sql {
        db.execute_unprepared(&s).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, statements(HOUR_INLINED, contact_then_topic, true)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, statements(HOUR_BEFORE, equal_topic, false)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_topic_comparison_and_the_update_guard_change() {
        let [_, before] = &statements(HOUR_BEFORE, equal_topic, false)[..] else {
            panic!("two statements")
        };
        let [_, after] = &statements(HOUR_INLINED, contact_then_topic, false)[..] else {
            panic!("two statements")
        };
        assert!(before.starts_with("CREATE OR REPLACE FUNCTION metrics_conversations_changed()"));
        assert!(!after.contains("c.topic = "));
        let restored = ["r", "o", "n"].iter().fold(after.clone(), |sql, r| {
            sql.replace(&contact_then_topic(r), &equal_topic(r))
        });
        assert_eq!(&restored, before);
        assert_eq!(after.matches("IS NOT DISTINCT FROM").count(), 4);

        let [_, guarded] = &statements(HOUR_INLINED, contact_then_topic, true)[..] else {
            panic!("two statements")
        };
        let (head, update) = guarded
            .split_once(
                "ELSE IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE ",
            )
            .unwrap();
        assert!(after.starts_with(head));
        let (cond, marked) = update.split_once(") THEN ").unwrap();
        for col in ["assignee_id", "resolved_at", "csat", "topic", "contact_id"] {
            assert!(
                cond.contains(&format!("o.{col} IS DISTINCT FROM n.{col}")),
                "{col}"
            );
        }
        assert!(!cond.contains("last_message_at") && !cond.contains("o.status"));
        assert!(marked.contains("END IF;\n           END IF;"));
    }
}
