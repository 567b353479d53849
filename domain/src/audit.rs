//! The audit trail: who did what, before and after, to the second. Written in
//! the same transaction as the change it records.

use chrono::{DateTime, Utc};
use entity::audit_log;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::Serialize;
use serde_json::Value;

use crate::pagination::{Page, PageRequest, id_cursor};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// One change to record. `before`/`after` are the entity's serialised state.
pub struct Change<'a> {
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<'a> Change<'a> {
    pub fn new(action: &'a str, entity_type: &'a str, entity_id: impl ToString) -> Self {
        Self {
            action,
            entity_type,
            entity_id: entity_id.to_string(),
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, state: &impl Serialize) -> Self {
        self.before = serde_json::to_value(state).ok();
        self
    }

    pub fn after(mut self, state: &impl Serialize) -> Self {
        self.after = serde_json::to_value(state).ok();
        self
    }

    /// Adds a field to the `after` state (e.g. relations stored in other tables).
    pub fn with_extra(mut self, key: &str, value: &impl Serialize) -> Self {
        if let (Some(Value::Object(map)), Ok(v)) = (&mut self.after, serde_json::to_value(value)) {
            map.insert(key.to_string(), v);
        }
        self
    }
}

pub async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    at: DateTime<Utc>,
    change: Change<'_>,
) -> Result<()> {
    row(actor, at, change).insert(db).await?;
    Ok(())
}

/// Records several changes by one actor, a few multi-row INSERTs in all.
pub async fn record_all<'a>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    at: DateTime<Utc>,
    changes: impl IntoIterator<Item = Change<'a>>,
) -> Result<()> {
    let rows: Vec<audit_log::ActiveModel> =
        changes.into_iter().map(|c| row(actor, at, c)).collect();
    // Well under the bind-parameter limits of SQLite and PostgreSQL.
    for chunk in rows.chunks(500) {
        audit_log::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

fn row(actor: &Actor, at: DateTime<Utc>, change: Change<'_>) -> audit_log::ActiveModel {
    audit_log::ActiveModel {
        actor_kind: Set(actor.kind),
        actor_id: Set(actor.id),
        action: Set(change.action.to_string()),
        entity_type: Set(change.entity_type.to_string()),
        entity_id: Set(Some(change.entity_id)),
        before: Set(change.before),
        after: Set(change.after),
        created_at: Set(at),
        ..Default::default()
    }
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<i64>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Domain {
    /// Newest first.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        filter: AuditFilter,
        page: PageRequest,
    ) -> Result<Page<audit_log::Model>> {
        actor.require(Capability::ReadAudit)?;
        let mut q = audit_log::Entity::find();
        if let Some(t) = filter.entity_type {
            q = q.filter(audit_log::Column::EntityType.eq(t));
        }
        if let Some(id) = filter.entity_id {
            q = q.filter(audit_log::Column::EntityId.eq(id));
        }
        if let Some(a) = filter.actor_id {
            q = q.filter(audit_log::Column::ActorId.eq(a));
        }
        if let Some(a) = filter.action {
            q = q.filter(audit_log::Column::Action.eq(a));
        }
        if let Some(from) = filter.from {
            q = q.filter(audit_log::Column::CreatedAt.gte(from));
        }
        if let Some(to) = filter.to {
            q = q.filter(audit_log::Column::CreatedAt.lt(to));
        }
        if let Some(after) = page.after_id()? {
            q = q.filter(audit_log::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(audit_log::Column::Id)
            .limit(page.limit() + 1)
            .all(&self.db)
            .await
            .map_err(DomainError::from)?;
        Ok(Page::from_rows(rows, &page, |r| id_cursor(r.id)))
    }
}
