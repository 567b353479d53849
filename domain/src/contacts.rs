//! Contacts: the customers, with structured fields, priority and tags.

use entity::{ConsentState, Priority, contact, contact_tag, conversation, tag};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, JoinType, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait, Set, TransactionTrait,
};
use serde_json::Value;

use crate::audit::{self, Change};
use crate::pagination::{Page, PageRequest, id_cursor};
use crate::webhooks_out::{self, WebhookEventType};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// Structured fields are a flat JSON object of at most this many bytes.
pub const MAX_FIELDS_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub search: Option<String>,
    pub tag_id: Option<i64>,
    pub consent: Option<ConsentState>,
    pub priority: Option<Priority>,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ContactForUpdate {
    pub name: Option<String>,
    pub language: Option<String>,
    pub priority: Option<Priority>,
    pub is_vip: Option<bool>,
    /// Merged into the existing fields; a `null` value removes a key.
    pub fields: Option<Value>,
    pub external_id: Option<String>,
    pub tag_ids: Option<Vec<i64>>,
}

fn merge_fields(current: &Value, patch: &Value) -> Result<Value> {
    let Value::Object(patch) = patch else {
        return Err(DomainError::invalid("fields", "must be a JSON object"));
    };
    let mut merged = current.as_object().cloned().unwrap_or_default();
    for (key, value) in patch {
        if key.is_empty() || key.chars().count() > 64 {
            return Err(DomainError::invalid(
                "fields",
                "keys are 1 to 64 characters",
            ));
        }
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    let merged = Value::Object(merged);
    if merged.to_string().len() > MAX_FIELDS_BYTES {
        return Err(DomainError::invalid(
            "fields",
            format!("at most {MAX_FIELDS_BYTES} bytes in all"),
        ));
    }
    Ok(merged)
}

impl Domain {
    pub async fn contacts(
        &self,
        actor: &Actor,
        filter: ContactFilter,
        page: PageRequest,
    ) -> Result<Page<contact::Model>> {
        actor.require(Capability::ManageContacts)?;
        page.validate()?;
        let mut q = contact::Entity::find().filter(contact::Column::ErasedAt.is_null());
        if let Some(text) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let pattern = format!("%{}%", text.to_lowercase().replace(['%', '_'], ""));
            let like = |col: contact::Column| {
                Expr::expr(Func::lower(Expr::col(col))).like(LikeExpr::new(pattern.clone()))
            };
            q = q.filter(
                Condition::any()
                    .add(like(contact::Column::Name))
                    .add(like(contact::Column::ProfileName))
                    .add(like(contact::Column::WaId))
                    .add(like(contact::Column::Phone)),
            );
        }
        if let Some(tag_id) = filter.tag_id {
            q = q.filter(
                contact::Column::Id.in_subquery(
                    Query::select()
                        .column(contact_tag::Column::ContactId)
                        .from(contact_tag::Entity)
                        .and_where(contact_tag::Column::TagId.eq(tag_id))
                        .to_owned(),
                ),
            );
        }
        if let Some(c) = filter.consent {
            q = q.filter(contact::Column::Consent.eq(c));
        }
        if let Some(p) = filter.priority {
            q = q.filter(contact::Column::Priority.eq(p));
        }
        if let Some(e) = filter.external_id {
            q = q.filter(contact::Column::ExternalId.eq(e));
        }
        if let Some(after) = page.after_id()? {
            q = q.filter(contact::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(contact::Column::Id)
            .limit(page.limit() + 1)
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(rows, &page, |c| id_cursor(c.id)))
    }

    /// Managers read any contact; an Agent only the customers it is serving.
    pub async fn contact(&self, actor: &Actor, id: i64) -> Result<contact::Model> {
        if actor.require(Capability::ManageContacts).is_err() {
            actor.require(Capability::HandleConversations)?;
            let serving = conversation::Entity::find()
                .filter(conversation::Column::ContactId.eq(id))
                .filter(conversation::Column::AssigneeId.eq(actor.user_id()))
                .count(&self.db)
                .await?;
            if serving == 0 {
                return Err(DomainError::forbidden("you are not serving this contact"));
            }
        }
        contact::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("contact", id))
    }

    pub async fn update_contact(
        &self,
        actor: &Actor,
        id: i64,
        input: ContactForUpdate,
    ) -> Result<contact::Model> {
        let before = self.contact(actor, id).await?;
        let now = self.clock.now();
        let mut row: contact::ActiveModel = before.clone().into();
        if let Some(v) = input.name {
            row.name = Set(Some(v.trim().to_string()).filter(|n| !n.is_empty()));
        }
        if let Some(v) = input.language {
            let v = v.trim().to_lowercase();
            if !(2..=8).contains(&v.len()) {
                return Err(DomainError::invalid(
                    "language",
                    "an ISO 639 code such as fr or it",
                ));
            }
            row.language = Set(Some(v));
        }
        if let Some(v) = input.priority {
            row.priority = Set(v);
        }
        if let Some(v) = input.is_vip {
            row.is_vip = Set(v);
        }
        if let Some(patch) = &input.fields {
            row.fields = Set(merge_fields(&before.fields, patch)?);
        }
        if let Some(v) = input.external_id {
            row.external_id = Set(Some(v.trim().to_string()).filter(|e| !e.is_empty()));
        }
        row.updated_at = Set(now);
        let txn = self.db.begin().await?;
        let after = row
            .update(&txn)
            .await
            .map_err(|e| match DomainError::from(e) {
                DomainError::Conflict(_) => {
                    DomainError::invalid("externalId", "another contact has this external id")
                }
                other => other,
            })?;
        let mut change = Change::new("contact.update", "contact", id)
            .before(&before)
            .after(&after);
        if let Some(tag_ids) = &input.tag_ids {
            contact_tag::Entity::delete_many()
                .filter(contact_tag::Column::ContactId.eq(id))
                .exec(&txn)
                .await?;
            let rows: Vec<_> = tag_ids
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|&tag_id| contact_tag::ActiveModel {
                    contact_id: Set(id),
                    tag_id: Set(tag_id),
                })
                .collect();
            if !rows.is_empty() {
                contact_tag::Entity::insert_many(rows)
                    .exec(&txn)
                    .await
                    .map_err(|e| match DomainError::from(e) {
                        DomainError::InvalidInput { .. } => {
                            DomainError::invalid("tagIds", "a tag does not exist")
                        }
                        other => other,
                    })?;
            }
            change = change.with_extra("tagIds", tag_ids);
        }
        audit::record(&txn, actor, now, change).await?;
        self.enqueue_webhook(
            &txn,
            WebhookEventType::ContactUpdated,
            Some(webhooks_out::contact_key(id)),
            webhooks_out::contact_data(&after),
        )
        .await?;
        txn.commit().await?;
        Ok(after)
    }

    pub async fn tags_of_contact(&self, contact_id: i64) -> Result<Vec<tag::Model>> {
        Ok(tag::Entity::find()
            .join(JoinType::InnerJoin, tag::Relation::ContactTags.def())
            .filter(contact_tag::Column::ContactId.eq(contact_id))
            .order_by_asc(tag::Column::Name)
            .all(&self.db)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_merge_and_null_removes() {
        let merged = merge_fields(
            &json!({"address": "Via Roma 1", "size": "M"}),
            &json!({"size": null, "taxCode": "RSSMRA"}),
        )
        .unwrap();
        assert_eq!(
            merged,
            json!({"address": "Via Roma 1", "taxCode": "RSSMRA"})
        );
    }

    #[test]
    fn fields_must_be_an_object() {
        assert!(merge_fields(&json!({}), &json!([1, 2])).is_err());
    }
}
