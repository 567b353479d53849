//! `audit_log`: Audit log.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::ActorKind;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub actor_kind: ActorKind,
    pub actor_id: Option<i64>,
    /// e.g. `"conversation.assign"`.
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
