//! Business hours, holidays, SLA policies.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BusinessHours::Table)
                    .col(big_pk_auto(BusinessHours::Id))
                    .col(string(BusinessHours::Name))
                    .col(string(BusinessHours::Timezone))
                    .col(json(BusinessHours::Schedule))
                    .col(timestamp_with_time_zone(BusinessHours::CreatedAt))
                    .col(timestamp_with_time_zone(BusinessHours::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Holidays::Table)
                    .col(big_pk_auto(Holidays::Id))
                    .col(big_integer(Holidays::BusinessHoursId))
                    .col(date(Holidays::Date))
                    .col(string_null(Holidays::Name))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_holidays_business_hours_id")
                            .from(Holidays::Table, Holidays::BusinessHoursId)
                            .to(BusinessHours::Table, BusinessHours::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_holidays_business_hours_id_date")
                    .table(Holidays::Table)
                    .col(Holidays::BusinessHoursId)
                    .col(Holidays::Date)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SlaPolicies::Table)
                    .col(big_pk_auto(SlaPolicies::Id))
                    .col(string(SlaPolicies::Name))
                    .col(string_len_null(SlaPolicies::Priority, 24))
                    .col(big_integer_null(SlaPolicies::ChannelId))
                    .col(big_integer_null(SlaPolicies::DepartmentId))
                    .col(big_integer_null(SlaPolicies::BusinessHoursId))
                    .col(integer(SlaPolicies::FirstResponseSecs))
                    .col(integer(SlaPolicies::ResolutionSecs))
                    .col(integer(SlaPolicies::WarnPercent).default(80))
                    .col(json(SlaPolicies::TopicTolerances).default("{}"))
                    .col(boolean(SlaPolicies::PauseWhenPending).default(true))
                    .col(string_len(SlaPolicies::EscalationKind, 24).default("hierarchical"))
                    .col(big_integer_null(SlaPolicies::EscalateToUserId))
                    .col(big_integer_null(SlaPolicies::EscalateToDepartmentId))
                    .col(boolean(SlaPolicies::NotifyCustomerOnBreach).default(false))
                    .col(boolean(SlaPolicies::IsDefault).default(false))
                    .col(timestamp_with_time_zone(SlaPolicies::CreatedAt))
                    .col(timestamp_with_time_zone(SlaPolicies::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sla_policies_channel_id")
                            .from(SlaPolicies::Table, SlaPolicies::ChannelId)
                            .to(Channels::Table, Channels::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sla_policies_department_id")
                            .from(SlaPolicies::Table, SlaPolicies::DepartmentId)
                            .to(Departments::Table, Departments::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sla_policies_business_hours_id")
                            .from(SlaPolicies::Table, SlaPolicies::BusinessHoursId)
                            .to(BusinessHours::Table, BusinessHours::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SlaPolicies::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Holidays::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(BusinessHours::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum BusinessHours {
    Table,
    Id,
    Name,
    Timezone,
    Schedule,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Holidays {
    Table,
    Id,
    BusinessHoursId,
    Date,
    Name,
}

#[derive(DeriveIden)]
enum SlaPolicies {
    Table,
    Id,
    Name,
    Priority,
    ChannelId,
    DepartmentId,
    BusinessHoursId,
    FirstResponseSecs,
    ResolutionSecs,
    WarnPercent,
    TopicTolerances,
    PauseWhenPending,
    EscalationKind,
    EscalateToUserId,
    EscalateToDepartmentId,
    NotifyCustomerOnBreach,
    IsDefault,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
}
