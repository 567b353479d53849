//! Staff: users, departments, department members.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    .col(string_uniq(Users::Email))
                    .col(string(Users::Name))
                    .col(string(Users::PasswordHash))
                    .col(string_len(Users::Role, 24))
                    .col(json(Users::Skills).default("[]"))
                    .col(integer(Users::MaxConcurrent).default(3))
                    .col(string_len(Users::Presence, 24).default("offline"))
                    .col(timestamp_with_time_zone_null(Users::LastSeenAt))
                    .col(timestamp_with_time_zone_null(Users::LastAssignedAt))
                    .col(boolean(Users::IsActive).default(true))
                    .col(integer(Users::TokenVersion).default(0))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Departments::Table)
                    .col(big_pk_auto(Departments::Id))
                    .col(string_uniq(Departments::Name))
                    .col(string_null(Departments::Description))
                    .col(json(Departments::Keywords).default("[]"))
                    .col(string_len(Departments::RoutingStrategy, 24).default("smart"))
                    .col(big_integer_null(Departments::RoundRobinCursor))
                    .col(timestamp_with_time_zone(Departments::CreatedAt))
                    .col(timestamp_with_time_zone(Departments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DepartmentMembers::Table)
                    .col(big_integer(DepartmentMembers::DepartmentId))
                    .col(big_integer(DepartmentMembers::UserId))
                    .primary_key(
                        Index::create()
                            .col(DepartmentMembers::DepartmentId)
                            .col(DepartmentMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_department_members_department_id")
                            .from(DepartmentMembers::Table, DepartmentMembers::DepartmentId)
                            .to(Departments::Table, Departments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_department_members_user_id")
                            .from(DepartmentMembers::Table, DepartmentMembers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_department_members_user_id")
                    .table(DepartmentMembers::Table)
                    .col(DepartmentMembers::UserId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DepartmentMembers::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Departments::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    Role,
    Skills,
    MaxConcurrent,
    Presence,
    LastSeenAt,
    LastAssignedAt,
    IsActive,
    TokenVersion,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
    Name,
    Description,
    Keywords,
    RoutingStrategy,
    RoundRobinCursor,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DepartmentMembers {
    Table,
    DepartmentId,
    UserId,
}
