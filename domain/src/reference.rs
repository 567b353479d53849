//! Settings an ingest batch reads for every message (departments, SLA
//! policies and calendars, lead flows, auto-reply rules, automation
//! variables), loaded at most once per batch inside its transaction: as
//! fresh as a per-message read, without repeating the same queries for each
//! of up to 64 deliveries.

use std::collections::HashMap;

use entity::{auto_reply_rule, automation_variable, department, lead_flow};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use tokio::sync::OnceCell;

use crate::Result;
use crate::sla::policy::Rules;

#[derive(Default)]
pub struct Reference {
    departments: OnceCell<Vec<department::Model>>,
    sla: OnceCell<Rules>,
    lead_flows: OnceCell<Vec<lead_flow::Model>>,
    auto_reply_rules: OnceCell<Vec<auto_reply_rule::Model>>,
    variables: OnceCell<HashMap<String, String>>,
}

impl Reference {
    /// Every department, by id.
    pub async fn departments(&self, db: &impl ConnectionTrait) -> Result<&[department::Model]> {
        let all = self
            .departments
            .get_or_try_init(|| async {
                department::Entity::find()
                    .order_by_asc(department::Column::Id)
                    .all(db)
                    .await
            })
            .await?;
        Ok(all)
    }

    /// SLA policies and calendars.
    pub async fn sla(&self, db: &impl ConnectionTrait) -> Result<&Rules> {
        self.sla.get_or_try_init(|| Rules::load(db)).await
    }

    /// Active lead flows, by id.
    pub async fn lead_flows(&self, db: &impl ConnectionTrait) -> Result<&[lead_flow::Model]> {
        let all = self
            .lead_flows
            .get_or_try_init(|| async {
                lead_flow::Entity::find()
                    .filter(lead_flow::Column::IsActive.eq(true))
                    .order_by_asc(lead_flow::Column::Id)
                    .all(db)
                    .await
            })
            .await?;
        Ok(all)
    }

    /// Active auto-reply rules of `channel_id` or of every channel.
    pub async fn auto_reply_rules(
        &self,
        db: &impl ConnectionTrait,
        channel_id: i64,
    ) -> Result<impl Iterator<Item = &auto_reply_rule::Model>> {
        let all = self
            .auto_reply_rules
            .get_or_try_init(|| async {
                auto_reply_rule::Entity::find()
                    .filter(auto_reply_rule::Column::IsActive.eq(true))
                    .all(db)
                    .await
            })
            .await?;
        Ok(all
            .iter()
            .filter(move |r| r.channel_id.is_none_or(|c| c == channel_id)))
    }

    /// The live automation variables, by key.
    pub async fn variables(&self, db: &impl ConnectionTrait) -> Result<&HashMap<String, String>> {
        let all = self
            .variables
            .get_or_try_init(|| async {
                let rows = automation_variable::Entity::find().all(db).await?;
                Ok::<_, sea_orm::DbErr>(rows.into_iter().map(|v| (v.key, v.value)).collect())
            })
            .await?;
        Ok(all)
    }
}
