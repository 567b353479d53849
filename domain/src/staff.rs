//! Staff users (agents, editors, admins, analysts), their departments, and
//! long-lived API tokens for BI tools.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use entity::{Presence, Role, api_token, department_member, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde_json::json;

use crate::audit::{self, Change};
use crate::auth::{self, API_TOKEN_PREFIX};
use crate::{Actor, Capability, Domain, DomainError, Result};

pub const DEFAULT_CAPACITY: i32 = 3;
pub const MAX_CAPACITY: i32 = 20;

#[derive(Debug, Clone)]
pub struct StaffForCreate {
    pub email: String,
    pub name: String,
    pub password: String,
    pub role: Role,
    pub skills: Vec<String>,
    pub max_concurrent: Option<i32>,
    pub department_ids: Vec<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct StaffForUpdate {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub skills: Option<Vec<String>>,
    pub max_concurrent: Option<i32>,
    pub is_active: Option<bool>,
    pub password: Option<String>,
    pub department_ids: Option<Vec<i64>>,
}

fn parse_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !valid {
        return Err(DomainError::invalid("email", "is not an email address"));
    }
    Ok(email)
}

fn parse_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(DomainError::invalid("name", "must be 1 to 120 characters"));
    }
    Ok(name.to_string())
}

fn parse_capacity(max: i32) -> Result<i32> {
    if !(1..=MAX_CAPACITY).contains(&max) {
        return Err(DomainError::invalid(
            "maxConcurrent",
            format!("must be between 1 and {MAX_CAPACITY}"),
        ));
    }
    Ok(max)
}

/// Skills are matched against departments and topics: trimmed, lower case, unique.
pub fn normalise_skills(skills: &[String]) -> serde_json::Value {
    let set: BTreeSet<String> = skills
        .iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    json!(set)
}

async fn set_departments(db: &impl ConnectionTrait, user_id: i64, ids: &[i64]) -> Result<()> {
    department_member::Entity::delete_many()
        .filter(department_member::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    let rows: Vec<_> = ids
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|&department_id| department_member::ActiveModel {
            department_id: Set(department_id),
            user_id: Set(user_id),
        })
        .collect();
    if !rows.is_empty() {
        department_member::Entity::insert_many(rows)
            .exec(db)
            .await?;
    }
    Ok(())
}

impl Domain {
    pub async fn create_staff(&self, actor: &Actor, input: StaffForCreate) -> Result<user::Model> {
        actor.require(Capability::ManageStaff)?;
        let email = parse_email(&input.email)?;
        let name = parse_name(&input.name)?;
        auth::check_password_strength(&input.password)?;
        let max_concurrent = parse_capacity(input.max_concurrent.unwrap_or(DEFAULT_CAPACITY))?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let created = user::ActiveModel {
            email: Set(email),
            name: Set(name),
            password_hash: Set(auth::hash_password(&input.password)?),
            role: Set(input.role),
            skills: Set(normalise_skills(&input.skills)),
            max_concurrent: Set(max_concurrent),
            presence: Set(Presence::Offline),
            is_active: Set(true),
            token_version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| match DomainError::from(e) {
            DomainError::Conflict(_) => DomainError::invalid("email", "is already in use"),
            other => other,
        })?;
        set_departments(&txn, created.id, &input.department_ids).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("staff.create", "user", created.id)
                .after(&created)
                .with_extra("departmentIds", &input.department_ids),
        )
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn update_staff(
        &self,
        actor: &Actor,
        id: i64,
        input: StaffForUpdate,
    ) -> Result<user::Model> {
        actor.require(Capability::ManageStaff)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = user::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("user", id))?;
        let mut row: user::ActiveModel = before.clone().into();
        let mut revoke = false;
        if let Some(name) = &input.name {
            row.name = Set(parse_name(name)?);
        }
        if let Some(role) = input.role {
            revoke |= role != before.role;
            row.role = Set(role);
        }
        if let Some(skills) = &input.skills {
            row.skills = Set(normalise_skills(skills));
        }
        if let Some(max) = input.max_concurrent {
            row.max_concurrent = Set(parse_capacity(max)?);
        }
        if let Some(active) = input.is_active {
            if !active && actor.user_id() == Some(id) {
                return Err(DomainError::invalid(
                    "isActive",
                    "you cannot deactivate yourself",
                ));
            }
            revoke |= !active;
            row.is_active = Set(active);
        }
        if let Some(password) = &input.password {
            auth::check_password_strength(password)?;
            row.password_hash = Set(auth::hash_password(password)?);
            revoke = true;
        }
        if revoke {
            // Tokens carry the version: old ones stop working at once.
            row.token_version = Set(before.token_version + 1);
        }
        row.updated_at = Set(now);
        let after = row.update(&txn).await?;
        if let Some(ids) = &input.department_ids {
            set_departments(&txn, id, ids).await?;
        }
        audit::record(
            &txn,
            actor,
            now,
            Change::new("staff.update", "user", id)
                .before(&before)
                .after(&after),
        )
        .await?;
        txn.commit().await?;
        // Departments, skills, capacity or status changed: routing may now
        // place queued conversations with this agent.
        let routing_relevant = input.department_ids.is_some()
            || before.skills != after.skills
            || before.max_concurrent != after.max_concurrent
            || before.is_active != after.is_active
            || before.role != after.role;
        if routing_relevant {
            self.emit(crate::events::EventPayload::AgentPresenceChanged {
                user_id: id,
                presence: after.presence,
                department_ids: self.department_ids_of(id).await.unwrap_or_default(),
            });
        }
        Ok(after)
    }

    pub async fn staff(&self, actor: &Actor, role: Option<Role>) -> Result<Vec<user::Model>> {
        actor.require(Capability::ListStaff)?;
        let mut q = user::Entity::find().order_by_asc(user::Column::Name);
        if let Some(role) = role {
            q = q.filter(user::Column::Role.eq(role));
        }
        Ok(q.all(&self.db).await?)
    }

    pub async fn staff_member(&self, actor: &Actor, id: i64) -> Result<user::Model> {
        if actor.user_id() != Some(id) {
            actor.require(Capability::ListStaff)?;
        }
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("user", id))
    }

    pub async fn department_ids_of(&self, user_id: i64) -> Result<Vec<i64>> {
        Ok(department_member::Entity::find()
            .filter(department_member::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.department_id)
            .collect())
    }

    /// On first start with no staff, creates an admin. Returns the password
    /// when it had to generate one, so start-up can print it once.
    pub async fn ensure_initial_admin(
        &self,
        email: &str,
        password: Option<&str>,
    ) -> Result<Option<String>> {
        if user::Entity::find().count(&self.db).await? > 0 {
            return Ok(None);
        }
        let generated = password.is_none().then(|| auth::generate_secret(12));
        let password = password.or(generated.as_deref()).unwrap_or_default();
        self.create_staff(
            &Actor::system(),
            StaffForCreate {
                email: email.to_string(),
                name: "Administrator".into(),
                password: password.to_string(),
                role: Role::Admin,
                skills: vec![],
                max_concurrent: None,
                department_ids: vec![],
            },
        )
        .await?;
        Ok(generated)
    }

    /// Returns the token row and the secret, shown this once only.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(api_token::Model, String)> {
        actor.require(Capability::ManageStaff)?;
        let name = parse_name(name)?;
        let now = self.clock.now();
        if expires_at.is_some_and(|e| e <= now) {
            return Err(DomainError::invalid("expiresAt", "must be in the future"));
        }
        let secret = format!("{API_TOKEN_PREFIX}{}", auth::generate_secret(24));
        let txn = self.db.begin().await?;
        let token = api_token::ActiveModel {
            name: Set(name),
            token_hash: Set(auth::hash_api_token(&secret)),
            // BI tokens read metrics and reference data, nothing else.
            role: Set(Role::Analyst),
            created_by: Set(actor.id),
            expires_at: Set(expires_at),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("api_token.create", "api_token", token.id).after(&token),
        )
        .await?;
        txn.commit().await?;
        Ok((token, secret))
    }

    pub async fn revoke_api_token(&self, actor: &Actor, id: i64) -> Result<api_token::Model> {
        actor.require(Capability::ManageStaff)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = api_token::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("apiToken", id))?;
        let mut row: api_token::ActiveModel = before.clone().into();
        row.revoked_at = Set(Some(now));
        let after = row.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("api_token.revoke", "api_token", id)
                .before(&before)
                .after(&after),
        )
        .await?;
        txn.commit().await?;
        Ok(after)
    }

    pub async fn api_tokens(&self, actor: &Actor) -> Result<Vec<api_token::Model>> {
        actor.require(Capability::ManageStaff)?;
        Ok(api_token::Entity::find()
            .order_by_desc(api_token::Column::Id)
            .all(&self.db)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(parse_email(" Ana@Shop.IT ").unwrap(), "ana@shop.it");
        assert!(parse_email("no-at-sign").is_err());
    }

    #[test]
    fn capacity_outside_bounds_is_refused() {
        assert!(parse_capacity(0).is_err());
        assert_eq!(parse_capacity(3).unwrap(), 3);
    }

    #[test]
    fn skills_are_trimmed_lowercased_and_unique() {
        let skills = normalise_skills(&[" Logistics".into(), "logistics".into(), "".into()]);
        assert_eq!(skills, json!(["logistics"]));
    }
}
