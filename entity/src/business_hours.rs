//! `business_hours`: Business-hours calendars.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "business_hours")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    /// IANA time zone name.
    pub timezone: String,
    /// Weekly schedule, e.g. `{"mon":[["09:00","18:00"]], ...}`.
    pub schedule: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::holiday::Entity")]
    Holidays,
    #[sea_orm(has_many = "super::sla_policy::Entity")]
    SlaPolicies,
}

impl Related<super::holiday::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Holidays.def()
    }
}

impl Related<super::sla_policy::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SlaPolicies.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
