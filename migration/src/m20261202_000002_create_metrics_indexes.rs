//! Indexes for the metrics queries (portable: SQLite and PostgreSQL).
//! - conversations (contact_id, topic, created_at): the repeat-contact lookup
//!   of an earlier conversation of the same contact and topic;
//! - conversations (assignee_id, created_at): per-agent KPIs;
//! - messages (conversation_id, sender_kind): "did any agent write in this
//!   conversation" for the automation rate.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: &[(&str, &str, &[&str])] = &[
    (
        "idx_conversations_contact_id_topic_created_at",
        "conversations",
        &["contact_id", "topic", "created_at"],
    ),
    (
        "idx_conversations_assignee_id_created_at",
        "conversations",
        &["assignee_id", "created_at"],
    ),
    (
        "idx_messages_conversation_id_sender_kind",
        "messages",
        &["conversation_id", "sender_kind"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, cols) in INDEXES {
            let mut index = Index::create();
            index.name(*name).table(Alias::new(*table));
            for col in *cols {
                index.col(Alias::new(*col));
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(*name)
                        .table(Alias::new(*table))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
