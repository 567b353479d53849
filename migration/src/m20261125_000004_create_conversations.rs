//! Conversations, conversation tags, messages, notes, assignments, SLA events.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// At most one open/pending conversation per (contact, channel). Partial indexes are
/// not expressible with the portable builder; this SQL is valid on SQLite and PostgreSQL.
pub const ONE_OPEN_PER_CONTACT_SQL: &str = "CREATE UNIQUE INDEX conversations_one_open_per_contact \
     ON conversations (contact_id, channel_id) WHERE status IN ('open', 'pending')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(big_pk_auto(Conversations::Id))
                    .col(big_integer(Conversations::ChannelId))
                    .col(big_integer(Conversations::ContactId))
                    .col(string_len(Conversations::Status, 24).default("open"))
                    .col(string_len(Conversations::Priority, 24).default("normal"))
                    .col(string_null(Conversations::Topic))
                    .col(string_null(Conversations::Language))
                    .col(big_integer_null(Conversations::DepartmentId))
                    .col(big_integer_null(Conversations::AssigneeId))
                    .col(big_integer_null(Conversations::LockHolderId))
                    .col(timestamp_with_time_zone_null(Conversations::LockAcquiredAt))
                    .col(timestamp_with_time_zone_null(
                        Conversations::LockLastActivityAt,
                    ))
                    .col(timestamp_with_time_zone_null(Conversations::LockExpiresAt))
                    .col(big_integer_null(Conversations::SlaPolicyId))
                    .col(timestamp_with_time_zone_null(
                        Conversations::FirstResponseDueAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        Conversations::ResolutionDueAt,
                    ))
                    .col(timestamp_with_time_zone_null(Conversations::SlaPausedAt))
                    .col(integer(Conversations::EscalationLevel).default(0))
                    .col(integer(Conversations::TransferCount).default(0))
                    .col(integer(Conversations::ReopenCount).default(0))
                    .col(timestamp_with_time_zone_null(Conversations::QueuedAt))
                    .col(timestamp_with_time_zone_null(Conversations::AssignedAt))
                    .col(timestamp_with_time_zone_null(
                        Conversations::FirstResponseAt,
                    ))
                    .col(timestamp_with_time_zone_null(Conversations::ResolvedAt))
                    .col(timestamp_with_time_zone_null(Conversations::ClosedAt))
                    .col(timestamp_with_time_zone_null(Conversations::LastMessageAt))
                    .col(timestamp_with_time_zone_null(Conversations::LastInboundAt))
                    .col(integer_null(Conversations::Csat))
                    .col(integer_null(Conversations::Nps))
                    .col(timestamp_with_time_zone_null(Conversations::ConvertedAt))
                    .col(big_integer_null(Conversations::ConversionAmountMicros))
                    .col(timestamp_with_time_zone_null(Conversations::ArchivedAt))
                    .col(timestamp_with_time_zone(Conversations::CreatedAt))
                    .col(timestamp_with_time_zone(Conversations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_channel_id")
                            .from(Conversations::Table, Conversations::ChannelId)
                            .to(Channels::Table, Channels::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_contact_id")
                            .from(Conversations::Table, Conversations::ContactId)
                            .to(Contacts::Table, Contacts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_department_id")
                            .from(Conversations::Table, Conversations::DepartmentId)
                            .to(Departments::Table, Departments::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_assignee_id")
                            .from(Conversations::Table, Conversations::AssigneeId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_lock_holder_id")
                            .from(Conversations::Table, Conversations::LockHolderId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_sla_policy_id")
                            .from(Conversations::Table, Conversations::SlaPolicyId)
                            .to(SlaPolicies::Table, SlaPolicies::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_status_department_id_assignee_id")
                    .table(Conversations::Table)
                    .col(Conversations::Status)
                    .col(Conversations::DepartmentId)
                    .col(Conversations::AssigneeId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_assignee_id_status")
                    .table(Conversations::Table)
                    .col(Conversations::AssigneeId)
                    .col(Conversations::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_contact_id_channel_id")
                    .table(Conversations::Table)
                    .col(Conversations::ContactId)
                    .col(Conversations::ChannelId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_created_at")
                    .table(Conversations::Table)
                    .col(Conversations::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_resolved_at")
                    .table(Conversations::Table)
                    .col(Conversations::ResolvedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_last_message_at")
                    .table(Conversations::Table)
                    .col(Conversations::LastMessageAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_lock_expires_at")
                    .table(Conversations::Table)
                    .col(Conversations::LockExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_first_response_due_at")
                    .table(Conversations::Table)
                    .col(Conversations::FirstResponseDueAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_resolution_due_at")
                    .table(Conversations::Table)
                    .col(Conversations::ResolutionDueAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_topic")
                    .table(Conversations::Table)
                    .col(Conversations::Topic)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_priority")
                    .table(Conversations::Table)
                    .col(Conversations::Priority)
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(ONE_OPEN_PER_CONTACT_SQL)
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConversationTags::Table)
                    .col(big_integer(ConversationTags::ConversationId))
                    .col(big_integer(ConversationTags::TagId))
                    .primary_key(
                        Index::create()
                            .col(ConversationTags::ConversationId)
                            .col(ConversationTags::TagId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversation_tags_conversation_id")
                            .from(ConversationTags::Table, ConversationTags::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversation_tags_tag_id")
                            .from(ConversationTags::Table, ConversationTags::TagId)
                            .to(Tags::Table, Tags::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversation_tags_tag_id")
                    .table(ConversationTags::Table)
                    .col(ConversationTags::TagId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(big_pk_auto(Messages::Id))
                    .col(big_integer(Messages::ConversationId))
                    .col(big_integer(Messages::ChannelId))
                    .col(string_len(Messages::Direction, 24))
                    .col(string_len(Messages::SenderKind, 24))
                    .col(big_integer_null(Messages::SenderUserId))
                    .col(string_len(Messages::MessageType, 24))
                    .col(text_null(Messages::Body))
                    .col(json_null(Messages::Media))
                    .col(json_null(Messages::Payload))
                    .col(string_null(Messages::WaMessageId).unique_key())
                    .col(string_null(Messages::ContextWaId))
                    .col(string_len(Messages::Status, 24))
                    .col(integer_null(Messages::ErrorCode))
                    .col(string_null(Messages::ErrorTitle))
                    .col(timestamp_with_time_zone_null(Messages::SentAt))
                    .col(timestamp_with_time_zone_null(Messages::DeliveredAt))
                    .col(timestamp_with_time_zone_null(Messages::ReadAt))
                    .col(timestamp_with_time_zone_null(Messages::FailedAt))
                    .col(big_integer_null(Messages::AutoRuleId))
                    .col(integer_null(Messages::AutoVariant))
                    .col(big_integer_null(Messages::CostMicros))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_conversation_id")
                            .from(Messages::Table, Messages::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_channel_id")
                            .from(Messages::Table, Messages::ChannelId)
                            .to(Channels::Table, Channels::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_sender_user_id")
                            .from(Messages::Table, Messages::SenderUserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_conversation_id_created_at")
                    .table(Messages::Table)
                    .col(Messages::ConversationId)
                    .col(Messages::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_created_at")
                    .table(Messages::Table)
                    .col(Messages::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_direction_created_at")
                    .table(Messages::Table)
                    .col(Messages::Direction)
                    .col(Messages::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_sender_user_id_created_at")
                    .table(Messages::Table)
                    .col(Messages::SenderUserId)
                    .col(Messages::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_auto_rule_id")
                    .table(Messages::Table)
                    .col(Messages::AutoRuleId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Notes::Table)
                    .col(big_pk_auto(Notes::Id))
                    .col(big_integer(Notes::ConversationId))
                    .col(big_integer(Notes::AuthorId))
                    .col(string_len(Notes::Body, 300))
                    .col(timestamp_with_time_zone(Notes::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notes_conversation_id")
                            .from(Notes::Table, Notes::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notes_author_id")
                            .from(Notes::Table, Notes::AuthorId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notes_conversation_id_created_at")
                    .table(Notes::Table)
                    .col(Notes::ConversationId)
                    .col(Notes::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Assignments::Table)
                    .col(big_pk_auto(Assignments::Id))
                    .col(big_integer(Assignments::ConversationId))
                    .col(string_len(Assignments::Kind, 24))
                    .col(big_integer_null(Assignments::FromUserId))
                    .col(big_integer_null(Assignments::ToUserId))
                    .col(big_integer_null(Assignments::FromDepartmentId))
                    .col(big_integer_null(Assignments::ToDepartmentId))
                    .col(string_null(Assignments::Reason))
                    .col(big_integer_null(Assignments::ActorId))
                    .col(timestamp_with_time_zone(Assignments::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_assignments_conversation_id")
                            .from(Assignments::Table, Assignments::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_assignments_conversation_id_created_at")
                    .table(Assignments::Table)
                    .col(Assignments::ConversationId)
                    .col(Assignments::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_assignments_to_user_id_created_at")
                    .table(Assignments::Table)
                    .col(Assignments::ToUserId)
                    .col(Assignments::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_assignments_created_at")
                    .table(Assignments::Table)
                    .col(Assignments::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SlaEvents::Table)
                    .col(big_pk_auto(SlaEvents::Id))
                    .col(big_integer(SlaEvents::ConversationId))
                    .col(string_len(SlaEvents::Kind, 24))
                    .col(string_len(SlaEvents::Level, 24))
                    .col(timestamp_with_time_zone(SlaEvents::TargetAt))
                    .col(timestamp_with_time_zone(SlaEvents::OccurredAt))
                    .col(big_integer_null(SlaEvents::LateSecs))
                    .col(json_null(SlaEvents::Details))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sla_events_conversation_id")
                            .from(SlaEvents::Table, SlaEvents::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_sla_events_conversation_id_kind_level")
                    .table(SlaEvents::Table)
                    .col(SlaEvents::ConversationId)
                    .col(SlaEvents::Kind)
                    .col(SlaEvents::Level)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sla_events_occurred_at")
                    .table(SlaEvents::Table)
                    .col(SlaEvents::OccurredAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SlaEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Assignments::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Notes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Messages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ConversationTags::Table).to_owned())
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS conversations_one_open_per_contact")
            .await?;
        manager
            .drop_table(Table::drop().table(Conversations::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    ChannelId,
    ContactId,
    Status,
    Priority,
    Topic,
    Language,
    DepartmentId,
    AssigneeId,
    LockHolderId,
    LockAcquiredAt,
    LockLastActivityAt,
    LockExpiresAt,
    SlaPolicyId,
    FirstResponseDueAt,
    ResolutionDueAt,
    SlaPausedAt,
    EscalationLevel,
    TransferCount,
    ReopenCount,
    QueuedAt,
    AssignedAt,
    FirstResponseAt,
    ResolvedAt,
    ClosedAt,
    LastMessageAt,
    LastInboundAt,
    Csat,
    Nps,
    ConvertedAt,
    ConversionAmountMicros,
    ArchivedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConversationTags {
    Table,
    ConversationId,
    TagId,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    ConversationId,
    ChannelId,
    Direction,
    SenderKind,
    SenderUserId,
    MessageType,
    Body,
    Media,
    Payload,
    WaMessageId,
    ContextWaId,
    Status,
    ErrorCode,
    ErrorTitle,
    SentAt,
    DeliveredAt,
    ReadAt,
    FailedAt,
    AutoRuleId,
    AutoVariant,
    CostMicros,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Notes {
    Table,
    Id,
    ConversationId,
    AuthorId,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Assignments {
    Table,
    Id,
    ConversationId,
    Kind,
    FromUserId,
    ToUserId,
    FromDepartmentId,
    ToDepartmentId,
    Reason,
    ActorId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SlaEvents {
    Table,
    Id,
    ConversationId,
    Kind,
    Level,
    TargetAt,
    OccurredAt,
    LateSecs,
    Details,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SlaPolicies {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tags {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
