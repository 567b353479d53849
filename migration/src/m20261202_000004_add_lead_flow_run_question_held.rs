//! `lead_flow_runs.question_held`: the current question was held back by the
//! new-customer sending limit, so the customer's next message asks it again
//! instead of being taken as its answer.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::boolean;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LeadFlowRuns {
    Table,
    QuestionHeld,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(LeadFlowRuns::Table)
                    .add_column(boolean(LeadFlowRuns::QuestionHeld).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(LeadFlowRuns::Table)
                    .drop_column(LeadFlowRuns::QuestionHeld)
                    .to_owned(),
            )
            .await
    }
}
