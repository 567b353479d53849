//! `automation_hits`: what automation did in a conversation (a reply by a
//! rule and the keyword that fired it, or a handover to a human), for the
//! per-keyword report and for knowing that a conversation left the bot.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AutomationHits::Table)
                    .col(big_pk_auto(AutomationHits::Id))
                    .col(big_integer(AutomationHits::ConversationId))
                    .col(big_integer(AutomationHits::ContactId))
                    .col(big_integer_null(AutomationHits::RuleId))
                    .col(string_len(AutomationHits::Kind, 24))
                    .col(string_len_null(AutomationHits::TriggerMode, 24))
                    .col(string_null(AutomationHits::Keyword))
                    .col(big_integer_null(AutomationHits::MessageId))
                    .col(timestamp_with_time_zone(AutomationHits::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_automation_hits_conversation_id")
                            .from(AutomationHits::Table, AutomationHits::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_automation_hits_rule_id")
                            .from(AutomationHits::Table, AutomationHits::RuleId)
                            .to(AutoReplyRules::Table, AutoReplyRules::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_automation_hits_conversation_id_kind")
                    .table(AutomationHits::Table)
                    .col(AutomationHits::ConversationId)
                    .col(AutomationHits::Kind)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_automation_hits_contact_id_created_at")
                    .table(AutomationHits::Table)
                    .col(AutomationHits::ContactId)
                    .col(AutomationHits::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_automation_hits_created_at")
                    .table(AutomationHits::Table)
                    .col(AutomationHits::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AutomationHits::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AutomationHits {
    Table,
    Id,
    ConversationId,
    ContactId,
    RuleId,
    Kind,
    TriggerMode,
    Keyword,
    MessageId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AutoReplyRules {
    Table,
    Id,
}
