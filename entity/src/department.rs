//! `departments`: Departments (routing targets).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::RoutingStrategy;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "departments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub description: Option<String>,
    /// JSON array of routing keyword strings.
    /// Database default: `[]`.
    pub keywords: Json,
    /// Database default: `smart`.
    pub routing_strategy: RoutingStrategy,
    /// Last user id picked by round-robin routing.
    pub round_robin_cursor: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::department_member::Entity")]
    DepartmentMembers,
    #[sea_orm(has_many = "super::sla_policy::Entity")]
    SlaPolicies,
    #[sea_orm(has_many = "super::conversation::Entity")]
    Conversations,
    #[sea_orm(has_many = "super::canned_response::Entity")]
    CannedResponses,
    #[sea_orm(has_many = "super::lead_flow::Entity")]
    LeadFlows,
}

impl Related<super::department_member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DepartmentMembers.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        super::department_member::Relation::User.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::department_member::Relation::Department.def().rev())
    }
}

impl Related<super::sla_policy::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SlaPolicies.def()
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversations.def()
    }
}

impl Related<super::canned_response::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CannedResponses.def()
    }
}

impl Related<super::lead_flow::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::LeadFlows.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
