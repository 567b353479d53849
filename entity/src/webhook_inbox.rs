//! `webhook_inbox`: Raw inbound WhatsApp webhook inbox.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::InboxStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_inbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Raw webhook delivery body.
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub signature: Option<String>,
    pub status: InboxStatus,
    pub error: Option<String>,
    pub received_at: DateTimeUtc,
    pub processed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
