//! Surveys, billing ledger, outbox, webhook subscriptions & deliveries, API tokens, audit log, presence intervals, webhook inbox.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Surveys::Table)
                    .col(big_pk_auto(Surveys::Id))
                    .col(big_integer(Surveys::ConversationId))
                    .col(big_integer(Surveys::ContactId))
                    .col(big_integer_null(Surveys::AgentId))
                    .col(string_len(Surveys::Kind, 24))
                    .col(integer(Surveys::Round).default(0))
                    .col(string_len(Surveys::Status, 24))
                    .col(integer_null(Surveys::Score))
                    .col(string_null(Surveys::RawAnswer))
                    .col(timestamp_with_time_zone(Surveys::SentAt))
                    .col(timestamp_with_time_zone_null(Surveys::AnsweredAt))
                    .col(timestamp_with_time_zone(Surveys::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_surveys_conversation_id")
                            .from(Surveys::Table, Surveys::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_surveys_contact_id")
                            .from(Surveys::Table, Surveys::ContactId)
                            .to(Contacts::Table, Contacts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_surveys_conversation_id_kind_round")
                    .table(Surveys::Table)
                    .col(Surveys::ConversationId)
                    .col(Surveys::Kind)
                    .col(Surveys::Round)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_surveys_contact_id_status")
                    .table(Surveys::Table)
                    .col(Surveys::ContactId)
                    .col(Surveys::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_surveys_answered_at")
                    .table(Surveys::Table)
                    .col(Surveys::AnsweredAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_surveys_agent_id")
                    .table(Surveys::Table)
                    .col(Surveys::AgentId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BillingLedger::Table)
                    .col(big_pk_auto(BillingLedger::Id))
                    .col(big_integer_uniq(BillingLedger::MessageId))
                    .col(big_integer(BillingLedger::ChannelId))
                    .col(big_integer(BillingLedger::ConversationId))
                    .col(string(BillingLedger::Period))
                    .col(string(BillingLedger::Region))
                    .col(boolean(BillingLedger::Free))
                    .col(big_integer(BillingLedger::BaseMicros))
                    .col(big_integer(BillingLedger::SurchargeMicros))
                    .col(big_integer(BillingLedger::TotalMicros))
                    .col(timestamp_with_time_zone(BillingLedger::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_billing_ledger_message_id")
                            .from(BillingLedger::Table, BillingLedger::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_billing_ledger_channel_id")
                            .from(BillingLedger::Table, BillingLedger::ChannelId)
                            .to(Channels::Table, Channels::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_billing_ledger_conversation_id")
                            .from(BillingLedger::Table, BillingLedger::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_billing_ledger_channel_id_period")
                    .table(BillingLedger::Table)
                    .col(BillingLedger::ChannelId)
                    .col(BillingLedger::Period)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_billing_ledger_conversation_id")
                    .table(BillingLedger::Table)
                    .col(BillingLedger::ConversationId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_billing_ledger_created_at")
                    .table(BillingLedger::Table)
                    .col(BillingLedger::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(big_pk_auto(Outbox::Id))
                    .col(big_integer_uniq(Outbox::MessageId))
                    .col(big_integer(Outbox::ChannelId))
                    .col(string_len(Outbox::Status, 24))
                    .col(integer(Outbox::Attempts).default(0))
                    .col(timestamp_with_time_zone(Outbox::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Outbox::LockedUntil))
                    .col(string_null(Outbox::LastError))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone(Outbox::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbox_message_id")
                            .from(Outbox::Table, Outbox::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbox_channel_id")
                            .from(Outbox::Table, Outbox::ChannelId)
                            .to(Channels::Table, Channels::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_status_next_attempt_at")
                    .table(Outbox::Table)
                    .col(Outbox::Status)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookSubscriptions::Table)
                    .col(big_pk_auto(WebhookSubscriptions::Id))
                    .col(string(WebhookSubscriptions::Name))
                    .col(string(WebhookSubscriptions::Url))
                    .col(string(WebhookSubscriptions::Secret))
                    .col(json(WebhookSubscriptions::EventTypes))
                    .col(boolean(WebhookSubscriptions::IsActive).default(true))
                    .col(string_null(WebhookSubscriptions::DisabledReason))
                    .col(integer(WebhookSubscriptions::ConsecutiveFailures).default(0))
                    .col(timestamp_with_time_zone(WebhookSubscriptions::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookSubscriptions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(big_pk_auto(WebhookDeliveries::Id))
                    .col(big_integer(WebhookDeliveries::SubscriptionId))
                    .col(string(WebhookDeliveries::EventId))
                    .col(string(WebhookDeliveries::EventType))
                    .col(string_null(WebhookDeliveries::OrderingKey))
                    .col(json(WebhookDeliveries::Payload))
                    .col(string_len(WebhookDeliveries::Status, 24))
                    .col(integer(WebhookDeliveries::Attempts).default(0))
                    .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                    .col(integer_null(WebhookDeliveries::ResponseStatus))
                    .col(integer_null(WebhookDeliveries::LatencyMs))
                    .col(string_null(WebhookDeliveries::LastError))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::DeliveredAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_subscription_id")
                            .from(WebhookDeliveries::Table, WebhookDeliveries::SubscriptionId)
                            .to(WebhookSubscriptions::Table, WebhookSubscriptions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_status_next_attempt_at")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_subscription_id_created_at")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::SubscriptionId)
                    .col(WebhookDeliveries::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(big_pk_auto(ApiTokens::Id))
                    .col(string(ApiTokens::Name))
                    .col(string_uniq(ApiTokens::TokenHash))
                    .col(string_len(ApiTokens::Role, 24))
                    .col(big_integer_null(ApiTokens::CreatedBy))
                    .col(timestamp_with_time_zone_null(ApiTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                    .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(big_pk_auto(AuditLog::Id))
                    .col(string_len(AuditLog::ActorKind, 24))
                    .col(big_integer_null(AuditLog::ActorId))
                    .col(string(AuditLog::Action))
                    .col(string(AuditLog::EntityType))
                    .col(string_null(AuditLog::EntityId))
                    .col(json_null(AuditLog::Before))
                    .col(json_null(AuditLog::After))
                    .col(timestamp_with_time_zone(AuditLog::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_entity_type_entity_id")
                    .table(AuditLog::Table)
                    .col(AuditLog::EntityType)
                    .col(AuditLog::EntityId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_created_at")
                    .table(AuditLog::Table)
                    .col(AuditLog::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_actor_id")
                    .table(AuditLog::Table)
                    .col(AuditLog::ActorId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PresenceIntervals::Table)
                    .col(big_pk_auto(PresenceIntervals::Id))
                    .col(big_integer(PresenceIntervals::UserId))
                    .col(string_len(PresenceIntervals::Status, 24))
                    .col(timestamp_with_time_zone(PresenceIntervals::StartedAt))
                    .col(timestamp_with_time_zone_null(PresenceIntervals::EndedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_presence_intervals_user_id")
                            .from(PresenceIntervals::Table, PresenceIntervals::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_presence_intervals_user_id_started_at")
                    .table(PresenceIntervals::Table)
                    .col(PresenceIntervals::UserId)
                    .col(PresenceIntervals::StartedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookInbox::Table)
                    .col(big_pk_auto(WebhookInbox::Id))
                    .col(text(WebhookInbox::Body))
                    .col(string_null(WebhookInbox::Signature))
                    .col(string_len(WebhookInbox::Status, 24))
                    .col(string_null(WebhookInbox::Error))
                    .col(timestamp_with_time_zone(WebhookInbox::ReceivedAt))
                    .col(timestamp_with_time_zone_null(WebhookInbox::ProcessedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_inbox_status_received_at")
                    .table(WebhookInbox::Table)
                    .col(WebhookInbox::Status)
                    .col(WebhookInbox::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookInbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PresenceIntervals::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ApiTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookSubscriptions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(BillingLedger::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Surveys::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Surveys {
    Table,
    Id,
    ConversationId,
    ContactId,
    AgentId,
    Kind,
    Round,
    Status,
    Score,
    RawAnswer,
    SentAt,
    AnsweredAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum BillingLedger {
    Table,
    Id,
    MessageId,
    ChannelId,
    ConversationId,
    Period,
    Region,
    Free,
    BaseMicros,
    SurchargeMicros,
    TotalMicros,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    MessageId,
    ChannelId,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookSubscriptions {
    Table,
    Id,
    Name,
    Url,
    Secret,
    EventTypes,
    IsActive,
    DisabledReason,
    ConsecutiveFailures,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    SubscriptionId,
    EventId,
    EventType,
    OrderingKey,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    ResponseStatus,
    LatencyMs,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Name,
    TokenHash,
    Role,
    CreatedBy,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    ActorKind,
    ActorId,
    Action,
    EntityType,
    EntityId,
    Before,
    After,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PresenceIntervals {
    Table,
    Id,
    UserId,
    Status,
    StartedAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum WebhookInbox {
    Table,
    Id,
    Body,
    Signature,
    Status,
    Error,
    ReceivedAt,
    ProcessedAt,
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
enum Conversations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
