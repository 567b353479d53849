//! Channels: the WhatsApp business numbers of this deployment. Their app
//! secret and access token are write-only.

use entity::channel;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde_json::json;

use crate::audit::{self, Change};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// Pricing regions of the billing ledger.
pub const REGIONS: [&str; 4] = ["europe", "americas", "south_east_asia", "other"];

#[derive(Debug, Clone, Default)]
pub struct ChannelInput {
    pub name: Option<String>,
    pub phone_number_id: Option<String>,
    pub display_phone_number: Option<String>,
    pub waba_id: Option<String>,
    pub app_secret: Option<String>,
    pub access_token: Option<String>,
    pub region: Option<String>,
    pub is_active: Option<bool>,
}

fn region(value: &str) -> Result<String> {
    let v = value.trim().to_lowercase();
    if !REGIONS.contains(&v.as_str()) {
        return Err(DomainError::invalid(
            "region",
            format!("one of {}", REGIONS.join(", ")),
        ));
    }
    Ok(v)
}

fn phone_number_id(value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(DomainError::invalid(
            "phoneNumberId",
            "must be the numeric id Meta gives the number",
        ));
    }
    Ok(v.to_string())
}

/// What the audit trail keeps of a channel: never its secrets.
fn audit_state(c: &channel::Model) -> serde_json::Value {
    json!({
        "name": c.name,
        "phoneNumberId": c.phone_number_id,
        "region": c.region,
        "isActive": c.is_active,
        "hasAppSecret": c.app_secret.is_some(),
        "hasAccessToken": c.access_token.is_some(),
    })
}

impl Domain {
    pub async fn channels(&self, actor: &Actor) -> Result<Vec<channel::Model>> {
        actor.require(Capability::ReadReference)?;
        Ok(channel::Entity::find()
            .order_by_asc(channel::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn channel_by_phone_number_id(&self, id: &str) -> Result<Option<channel::Model>> {
        Ok(channel::Entity::find()
            .filter(channel::Column::PhoneNumberId.eq(id))
            .one(&self.db)
            .await?)
    }

    pub async fn create_channel(
        &self,
        actor: &Actor,
        input: ChannelInput,
    ) -> Result<channel::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let name = input
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let row = channel::ActiveModel {
            name: Set(name
                .ok_or_else(|| DomainError::invalid("name", "is required"))?
                .to_string()),
            phone_number_id: Set(phone_number_id(
                input.phone_number_id.as_deref().unwrap_or_default(),
            )?),
            display_phone_number: Set(input.display_phone_number),
            waba_id: Set(input.waba_id),
            app_secret: Set(input.app_secret.filter(|s| !s.is_empty())),
            access_token: Set(input.access_token.filter(|s| !s.is_empty())),
            region: Set(region(input.region.as_deref().unwrap_or("europe"))?),
            is_active: Set(input.is_active.unwrap_or(true)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let txn = self.db.begin().await?;
        let created = row
            .insert(&txn)
            .await
            .map_err(|e| match DomainError::from(e) {
                DomainError::Conflict(_) => {
                    DomainError::invalid("phoneNumberId", "is already configured")
                }
                other => other,
            })?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("channel.create", "channel", created.id).after(&audit_state(&created)),
        )
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn update_channel(
        &self,
        actor: &Actor,
        id: i64,
        input: ChannelInput,
    ) -> Result<channel::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = channel::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("channel", id))?;
        let mut row: channel::ActiveModel = before.clone().into();
        if let Some(v) = input.name {
            row.name = Set(v.trim().to_string());
        }
        if let Some(v) = input.display_phone_number {
            row.display_phone_number = Set(Some(v));
        }
        if let Some(v) = input.waba_id {
            row.waba_id = Set(Some(v));
        }
        // An empty string clears a secret; absent leaves it.
        if let Some(v) = input.app_secret {
            row.app_secret = Set(Some(v).filter(|s| !s.is_empty()));
        }
        if let Some(v) = input.access_token {
            row.access_token = Set(Some(v).filter(|s| !s.is_empty()));
        }
        if let Some(v) = input.region {
            row.region = Set(region(&v)?);
        }
        if let Some(v) = input.is_active {
            row.is_active = Set(v);
        }
        row.updated_at = Set(now);
        let after = row.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("channel.update", "channel", id)
                .before(&audit_state(&before))
                .after(&audit_state(&after)),
        )
        .await?;
        txn.commit().await?;
        Ok(after)
    }
}
