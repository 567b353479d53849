//! Channels, contacts, tags, contact tags.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Channels::Table)
                    .col(big_pk_auto(Channels::Id))
                    .col(string(Channels::Name))
                    .col(string_uniq(Channels::PhoneNumberId))
                    .col(string_null(Channels::DisplayPhoneNumber))
                    .col(string_null(Channels::WabaId))
                    .col(string_null(Channels::AppSecret))
                    .col(string_null(Channels::AccessToken))
                    .col(string(Channels::Region).default("europe"))
                    .col(boolean(Channels::IsActive).default(true))
                    .col(timestamp_with_time_zone(Channels::CreatedAt))
                    .col(timestamp_with_time_zone(Channels::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .col(big_pk_auto(Contacts::Id))
                    .col(string_null(Contacts::WaId).unique_key())
                    .col(string_null(Contacts::UserId).unique_key())
                    .col(string_null(Contacts::Phone))
                    .col(string_null(Contacts::Name))
                    .col(string_null(Contacts::ProfileName))
                    .col(string_null(Contacts::Language))
                    .col(string_len(Contacts::Priority, 24).default("normal"))
                    .col(boolean(Contacts::IsVip).default(false))
                    .col(string_len(Contacts::Consent, 24).default("unknown"))
                    .col(timestamp_with_time_zone_null(Contacts::ConsentChangedAt))
                    .col(json(Contacts::Fields).default("{}"))
                    .col(string_null(Contacts::ExternalId).unique_key())
                    .col(timestamp_with_time_zone_null(Contacts::LastInboundAt))
                    .col(timestamp_with_time_zone_null(Contacts::ErasedAt))
                    .col(timestamp_with_time_zone(Contacts::CreatedAt))
                    .col(timestamp_with_time_zone(Contacts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tags::Table)
                    .col(big_pk_auto(Tags::Id))
                    .col(string_uniq(Tags::Name))
                    .col(string_null(Tags::Color))
                    .col(timestamp_with_time_zone(Tags::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactTags::Table)
                    .col(big_integer(ContactTags::ContactId))
                    .col(big_integer(ContactTags::TagId))
                    .primary_key(
                        Index::create()
                            .col(ContactTags::ContactId)
                            .col(ContactTags::TagId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_tags_contact_id")
                            .from(ContactTags::Table, ContactTags::ContactId)
                            .to(Contacts::Table, Contacts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_tags_tag_id")
                            .from(ContactTags::Table, ContactTags::TagId)
                            .to(Tags::Table, Tags::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contact_tags_tag_id")
                    .table(ContactTags::Table)
                    .col(ContactTags::TagId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ContactTags::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Tags::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Contacts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Channels::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
    Name,
    PhoneNumberId,
    DisplayPhoneNumber,
    WabaId,
    AppSecret,
    AccessToken,
    Region,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    WaId,
    UserId,
    Phone,
    Name,
    ProfileName,
    Language,
    Priority,
    IsVip,
    Consent,
    ConsentChangedAt,
    Fields,
    ExternalId,
    LastInboundAt,
    ErasedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tags {
    Table,
    Id,
    Name,
    Color,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ContactTags {
    Table,
    ContactId,
    TagId,
}
