//! SLA cycles, the stored 5-minute alert time and the sweep's next check.
//!
//! - `sla_events.cycle`: the conversation's `reopen_count` for resolution
//!   rows. The unique key becomes (conversation, kind, level, cycle), so a
//!   reopened conversation can warn, escalate and breach again, once per cycle.
//! - `conversations.important_wait_due_at`: when an important conversation
//!   left unanswered raises its alert (5 minutes of business time, stored when
//!   the clock starts and shifted like the other due times).
//! - `conversations.sla_next_at`: when the sweep next has a level to decide,
//!   with a partial index, so a tick reads only the conversations due now.
//!
//! Existing rows: running clocks get `created_at + 5 minutes` as alert time
//! (wall time, what the alert counted before) and a next check at their
//! creation, so the first sweep after the upgrade looks at each running clock
//! once and stores its real next check.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const OLD_UNIQUE: &str = "uq_sla_events_conversation_id_kind_level";
const NEW_UNIQUE: &str = "uq_sla_events_conversation_id_kind_level_cycle";
const NEXT_INDEX: &str = "idx_conversations_sla_next_at";

/// Conversations with a running clock (active, started, not paused).
const RUNNING: &str = "status IN ('open', 'pending') AND resolved_at IS NULL \
     AND sla_paused_at IS NULL \
     AND (first_response_due_at IS NOT NULL OR resolution_due_at IS NOT NULL)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SlaEvents::Table)
                    .add_column(integer(SlaEvents::Cycle).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_UNIQUE)
                    .table(SlaEvents::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(NEW_UNIQUE)
                    .table(SlaEvents::Table)
                    .col(SlaEvents::ConversationId)
                    .col(SlaEvents::Kind)
                    .col(SlaEvents::Level)
                    .col(SlaEvents::Cycle)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for column in [Conversations::ImportantWaitDueAt, Conversations::SlaNextAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .add_column(timestamp_with_time_zone_null(column))
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        let plus_five = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "created_at + INTERVAL '5 minutes'",
            // Stored as text in the format sqlx writes.
            _ => "strftime('%Y-%m-%d %H:%M:%f+00:00', created_at, '+5 minutes')",
        };
        db.execute_unprepared(&format!(
            "UPDATE conversations SET important_wait_due_at = {plus_five} \
             WHERE first_response_due_at IS NOT NULL AND first_response_at IS NULL \
             AND resolved_at IS NULL"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE conversations SET sla_next_at = created_at WHERE {RUNNING}"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "CREATE INDEX {NEXT_INDEX} ON conversations (sla_next_at, id) \
             WHERE sla_next_at IS NOT NULL"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(&format!("DROP INDEX IF EXISTS {NEXT_INDEX}"))
            .await?;
        for column in [Conversations::SlaNextAt, Conversations::ImportantWaitDueAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // Only the first cycle's rows fit the old key.
        db.execute_unprepared("DELETE FROM sla_events WHERE cycle > 0")
            .await?;
        db.execute_unprepared(&format!("DROP INDEX IF EXISTS {NEW_UNIQUE}"))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SlaEvents::Table)
                    .drop_column(SlaEvents::Cycle)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD_UNIQUE)
                    .table(SlaEvents::Table)
                    .col(SlaEvents::ConversationId)
                    .col(SlaEvents::Kind)
                    .col(SlaEvents::Level)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SlaEvents {
    Table,
    ConversationId,
    Kind,
    Level,
    Cycle,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    ImportantWaitDueAt,
    SlaNextAt,
}
