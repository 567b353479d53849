//! `api_tokens`: API tokens.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::Role;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    /// SHA-256 hex of the token.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub role: Role,
    pub created_by: Option<i64>,
    pub expires_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
