//! `users`: Staff accounts (agents, editors, admins, analysts).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{Presence, Role};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub email: String,
    pub name: String,
    /// Argon2 PHC string; never serialized.
    #[serde(skip_serializing)]
    pub password_hash: String,
    pub role: Role,
    /// JSON array of skill strings.
    /// Database default: `[]`.
    pub skills: Json,
    /// Database default: `3`.
    pub max_concurrent: i32,
    /// Database default: `offline`.
    pub presence: Presence,
    pub last_seen_at: Option<DateTimeUtc>,
    pub last_assigned_at: Option<DateTimeUtc>,
    /// Database default: `true`.
    pub is_active: bool,
    /// Database default: `0`.
    pub token_version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::department_member::Entity")]
    DepartmentMembers,
    #[sea_orm(has_many = "super::message::Entity")]
    Messages,
    #[sea_orm(has_many = "super::note::Entity")]
    Notes,
    #[sea_orm(has_many = "super::presence_interval::Entity")]
    PresenceIntervals,
}

impl Related<super::department_member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DepartmentMembers.def()
    }
}

impl Related<super::department::Entity> for Entity {
    fn to() -> RelationDef {
        super::department_member::Relation::Department.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::department_member::Relation::User.def().rev())
    }
}

impl Related<super::message::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Messages.def()
    }
}

impl Related<super::note::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Notes.def()
    }
}

impl Related<super::presence_interval::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PresenceIntervals.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
