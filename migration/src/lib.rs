//! Database migrations of the helpdesk (portable: SQLite and PostgreSQL).

pub use sea_orm_migration::prelude::*;

pub mod m20261125_000001_create_staff;
pub mod m20261125_000002_create_contacts;
pub mod m20261125_000003_create_sla;
pub mod m20261125_000004_create_conversations;
pub mod m20261125_000005_create_automation;
pub mod m20261125_000006_create_operations;
pub mod m20261202_000001_add_sla_sweep_indexes;
pub mod m20261202_000002_create_metrics_indexes;
pub mod m20261202_000003_create_automation_hits;
pub mod m20261202_000004_add_lead_flow_run_question_held;
pub mod m20261202_000005_add_sla_cycles_and_next_check;
pub mod m20261202_000006_create_metrics_rollups;
pub mod m20261203_000001_create_report_rollups;
pub mod m20261204_000001_statement_level_metrics_triggers;
pub mod m20261208_000001_metrics_trigger_lookups;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_staff::Migration),
            Box::new(m20261125_000002_create_contacts::Migration),
            Box::new(m20261125_000003_create_sla::Migration),
            Box::new(m20261125_000004_create_conversations::Migration),
            Box::new(m20261125_000005_create_automation::Migration),
            Box::new(m20261125_000006_create_operations::Migration),
            Box::new(m20261202_000001_add_sla_sweep_indexes::Migration),
            Box::new(m20261202_000002_create_metrics_indexes::Migration),
            Box::new(m20261202_000003_create_automation_hits::Migration),
            Box::new(m20261202_000004_add_lead_flow_run_question_held::Migration),
            Box::new(m20261202_000005_add_sla_cycles_and_next_check::Migration),
            Box::new(m20261202_000006_create_metrics_rollups::Migration),
            Box::new(m20261203_000001_create_report_rollups::Migration),
            Box::new(m20261204_000001_statement_level_metrics_triggers::Migration),
            Box::new(m20261208_000001_metrics_trigger_lookups::Migration),
        ]
    }
}
