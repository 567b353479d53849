//! Auto-reply rules, canned responses, automation variables, lead flows, lead flow runs.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AutoReplyRules::Table)
                    .col(big_pk_auto(AutoReplyRules::Id))
                    .col(string(AutoReplyRules::Name))
                    .col(string_len(AutoReplyRules::TriggerMode, 24))
                    .col(big_integer_null(AutoReplyRules::ChannelId))
                    .col(string_null(AutoReplyRules::Language))
                    .col(json(AutoReplyRules::Keywords).default("[]"))
                    .col(json(AutoReplyRules::Variants))
                    .col(json(AutoReplyRules::Buttons).default("[]"))
                    .col(json_null(AutoReplyRules::Schedule))
                    .col(integer(AutoReplyRules::Priority).default(0))
                    .col(boolean(AutoReplyRules::IsActive).default(true))
                    .col(timestamp_with_time_zone(AutoReplyRules::CreatedAt))
                    .col(timestamp_with_time_zone(AutoReplyRules::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auto_reply_rules_channel_id")
                            .from(AutoReplyRules::Table, AutoReplyRules::ChannelId)
                            .to(Channels::Table, Channels::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CannedResponses::Table)
                    .col(big_pk_auto(CannedResponses::Id))
                    .col(string_uniq(CannedResponses::Shortcut))
                    .col(string(CannedResponses::Title))
                    .col(text(CannedResponses::Body))
                    .col(big_integer_null(CannedResponses::DepartmentId))
                    .col(big_integer_null(CannedResponses::CreatedBy))
                    .col(timestamp_with_time_zone(CannedResponses::CreatedAt))
                    .col(timestamp_with_time_zone(CannedResponses::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_canned_responses_department_id")
                            .from(CannedResponses::Table, CannedResponses::DepartmentId)
                            .to(Departments::Table, Departments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AutomationVariables::Table)
                    .col(string(AutomationVariables::Key).primary_key())
                    .col(text(AutomationVariables::Value))
                    .col(timestamp_with_time_zone(AutomationVariables::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LeadFlows::Table)
                    .col(big_pk_auto(LeadFlows::Id))
                    .col(string(LeadFlows::Name))
                    .col(big_integer_null(LeadFlows::DepartmentId))
                    .col(json(LeadFlows::TriggerKeywords).default("[]"))
                    .col(json(LeadFlows::Questions))
                    .col(boolean(LeadFlows::IsActive).default(true))
                    .col(timestamp_with_time_zone(LeadFlows::CreatedAt))
                    .col(timestamp_with_time_zone(LeadFlows::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_lead_flows_department_id")
                            .from(LeadFlows::Table, LeadFlows::DepartmentId)
                            .to(Departments::Table, Departments::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LeadFlowRuns::Table)
                    .col(big_pk_auto(LeadFlowRuns::Id))
                    .col(big_integer(LeadFlowRuns::FlowId))
                    .col(big_integer(LeadFlowRuns::ConversationId))
                    .col(integer(LeadFlowRuns::Step).default(0))
                    .col(json(LeadFlowRuns::Answers).default("{}"))
                    .col(string_len(LeadFlowRuns::Status, 24))
                    .col(timestamp_with_time_zone(LeadFlowRuns::CreatedAt))
                    .col(timestamp_with_time_zone(LeadFlowRuns::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_lead_flow_runs_flow_id")
                            .from(LeadFlowRuns::Table, LeadFlowRuns::FlowId)
                            .to(LeadFlows::Table, LeadFlows::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_lead_flow_runs_conversation_id")
                            .from(LeadFlowRuns::Table, LeadFlowRuns::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lead_flow_runs_conversation_id_status")
                    .table(LeadFlowRuns::Table)
                    .col(LeadFlowRuns::ConversationId)
                    .col(LeadFlowRuns::Status)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LeadFlowRuns::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(LeadFlows::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AutomationVariables::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CannedResponses::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AutoReplyRules::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AutoReplyRules {
    Table,
    Id,
    Name,
    TriggerMode,
    ChannelId,
    Language,
    Keywords,
    Variants,
    Buttons,
    Schedule,
    Priority,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CannedResponses {
    Table,
    Id,
    Shortcut,
    Title,
    Body,
    DepartmentId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AutomationVariables {
    Table,
    Key,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LeadFlows {
    Table,
    Id,
    Name,
    DepartmentId,
    TriggerKeywords,
    Questions,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LeadFlowRuns {
    Table,
    Id,
    FlowId,
    ConversationId,
    Step,
    Answers,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
}
