//! `holidays`: Holidays of a business-hours calendar.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "holidays")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// FK → `business_hours.id` (on delete cascade).
    pub business_hours_id: i64,
    pub date: Date,
    pub name: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::business_hours::Entity",
        from = "Column::BusinessHoursId",
        to = "super::business_hours::Column::Id",
        on_delete = "Cascade"
    )]
    BusinessHours,
}

impl Related<super::business_hours::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BusinessHours.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
