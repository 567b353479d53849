//! Departments: the queues conversations are routed to, with their keywords
//! and routing strategy.

use std::collections::BTreeSet;

use entity::{RoutingStrategy, department, department_member, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait, Set, TransactionTrait,
};
use serde_json::json;

use crate::audit::{self, Change};
use crate::{Actor, Capability, Domain, DomainError, Result};

#[derive(Debug, Clone, Default)]
pub struct DepartmentInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub keywords: Option<Vec<String>>,
    pub routing_strategy: Option<RoutingStrategy>,
}

/// Keywords are kept as typed (trimmed, unique); matching folds case and accents.
fn keywords(list: &[String]) -> Result<serde_json::Value> {
    let set: BTreeSet<&str> = list
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect();
    if set.iter().any(|k| k.chars().count() > 60) {
        return Err(DomainError::invalid(
            "keywords",
            "a keyword is at most 60 characters",
        ));
    }
    Ok(json!(set))
}

fn name(value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > 80 {
        return Err(DomainError::invalid("name", "must be 1 to 80 characters"));
    }
    Ok(v.to_string())
}

impl Domain {
    pub async fn departments(&self, actor: &Actor) -> Result<Vec<department::Model>> {
        actor.require(Capability::ReadReference)?;
        Ok(department::Entity::find()
            .order_by_asc(department::Column::Name)
            .all(&self.db)
            .await?)
    }

    pub async fn department(&self, actor: &Actor, id: i64) -> Result<department::Model> {
        actor.require(Capability::ReadReference)?;
        department::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("department", id))
    }

    pub async fn department_members(&self, department_id: i64) -> Result<Vec<user::Model>> {
        Ok(user::Entity::find()
            .join(JoinType::InnerJoin, user::Relation::DepartmentMembers.def())
            .filter(department_member::Column::DepartmentId.eq(department_id))
            .order_by_asc(user::Column::Name)
            .all(&self.db)
            .await?)
    }

    pub async fn create_department(
        &self,
        actor: &Actor,
        input: DepartmentInput,
    ) -> Result<department::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let row = department::ActiveModel {
            name: Set(name(input.name.as_deref().unwrap_or_default())?),
            description: Set(input.description),
            keywords: Set(keywords(&input.keywords.unwrap_or_default())?),
            routing_strategy: Set(input.routing_strategy.unwrap_or_default()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let txn = self.db.begin().await?;
        let created = row
            .insert(&txn)
            .await
            .map_err(|e| match DomainError::from(e) {
                DomainError::Conflict(_) => DomainError::invalid("name", "is already in use"),
                other => other,
            })?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("department.create", "department", created.id).after(&created),
        )
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn update_department(
        &self,
        actor: &Actor,
        id: i64,
        input: DepartmentInput,
    ) -> Result<department::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = department::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("department", id))?;
        let mut row: department::ActiveModel = before.clone().into();
        if let Some(v) = &input.name {
            row.name = Set(name(v)?);
        }
        if let Some(v) = input.description {
            row.description = Set(Some(v));
        }
        if let Some(v) = &input.keywords {
            row.keywords = Set(keywords(v)?);
        }
        if let Some(v) = input.routing_strategy {
            row.routing_strategy = Set(v);
        }
        row.updated_at = Set(now);
        let after = row.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("department.update", "department", id)
                .before(&before)
                .after(&after),
        )
        .await?;
        txn.commit().await?;
        Ok(after)
    }

    /// Conversations of a deleted department go back to the general queue.
    pub async fn delete_department(&self, actor: &Actor, id: i64) -> Result<department::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = department::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("department", id))?;
        department::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("department.delete", "department", id).before(&before),
        )
        .await?;
        txn.commit().await?;
        Ok(before)
    }
}
