//! `lead_flows`: Lead qualification flows.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "lead_flows")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    /// FK → `departments.id` (on delete set null).
    pub department_id: Option<i64>,
    /// Database default: `[]`.
    pub trigger_keywords: Json,
    /// JSON array of `{"field":"budget","question":"…"}`.
    pub questions: Json,
    /// Database default: `true`.
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::department::Entity",
        from = "Column::DepartmentId",
        to = "super::department::Column::Id",
        on_delete = "SetNull"
    )]
    Department,
    #[sea_orm(has_many = "super::lead_flow_run::Entity")]
    LeadFlowRuns,
}

impl Related<super::department::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Department.def()
    }
}

impl Related<super::lead_flow_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::LeadFlowRuns.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
