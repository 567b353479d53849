//! Partial indexes for the SLA sweep: only running clocks are indexed, so a
//! sweep reads the conversations near their due time without walking the
//! history of answered and resolved ones (the plain due-time indexes hold
//! every conversation ever). Plain SQL: partial indexes are written the same
//! on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str); 3] = [
    (
        "idx_conversations_sla_first_response_running",
        "CREATE INDEX idx_conversations_sla_first_response_running ON conversations \
         (first_response_due_at, id) WHERE first_response_at IS NULL AND resolved_at IS NULL",
    ),
    (
        "idx_conversations_sla_resolution_running",
        "CREATE INDEX idx_conversations_sla_resolution_running ON conversations \
         (resolution_due_at, id) WHERE resolved_at IS NULL",
    ),
    (
        "idx_conversations_sla_unanswered_created_at",
        "CREATE INDEX idx_conversations_sla_unanswered_created_at ON conversations \
         (created_at, id) WHERE first_response_at IS NULL AND resolved_at IS NULL",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (_, sql) in INDEXES {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        Ok(())
    }
}
