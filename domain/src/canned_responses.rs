//! Canned responses (quick replies): ready texts agents send with a
//! `/shortcut` or by id. Placeholders — `{{name}}` (the customer's name),
//! `{{conversation}}` (the conversation number), `{{sla_target}}` and live
//! variables, as in auto-replies ([`crate::autoreply::template`]) — are
//! filled at send time.
//! Admins and Editors manage them; every staff member lists them.

use entity::canned_response;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};

use crate::audit::{self, Change};
use crate::outbound::content::MAX_TEXT_CHARS;
use crate::{Actor, Capability, Domain, DomainError, Result};

pub const MAX_SHORTCUT_CHARS: usize = 32;
pub const MAX_TITLE_CHARS: usize = 100;

#[derive(Debug, Clone, Default)]
pub struct CannedResponseInput {
    pub shortcut: Option<String>,
    pub title: Option<String>,
    pub body: Option<String>,
    /// `Some(None)` clears the department.
    pub department_id: Option<Option<i64>>,
}

/// A shortcut: lower case, letters, digits, `-` and `_`, stored without the `/`.
pub fn parse_shortcut(value: &str) -> Result<String> {
    let v = value.trim().trim_start_matches('/').to_lowercase();
    let ok = !v.is_empty()
        && v.chars().count() <= MAX_SHORTCUT_CHARS
        && v.chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(DomainError::invalid(
            "shortcut",
            format!("1 to {MAX_SHORTCUT_CHARS} letters, digits, - or _ (e.g. /return)"),
        ));
    }
    Ok(v)
}

fn parse_title(value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > MAX_TITLE_CHARS {
        return Err(DomainError::invalid(
            "title",
            format!("1 to {MAX_TITLE_CHARS} characters"),
        ));
    }
    Ok(v.to_string())
}

fn parse_body(value: &str) -> Result<String> {
    let n = value.chars().count();
    if value.trim().is_empty() || n > MAX_TEXT_CHARS {
        return Err(DomainError::invalid(
            "body",
            format!("1 to {MAX_TEXT_CHARS} characters (a WhatsApp text)"),
        ));
    }
    Ok(value.to_string())
}

/// The shortcut a message consists of, if it is exactly one `/word`.
pub fn shortcut_in(text: &str) -> Option<String> {
    let t = text.trim();
    let rest = t.strip_prefix('/')?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return None;
    }
    parse_shortcut(rest).ok()
}

fn conflict_to_shortcut(e: sea_orm::DbErr) -> DomainError {
    match DomainError::from(e) {
        DomainError::Conflict(_) => DomainError::invalid("shortcut", "is already in use"),
        other => other,
    }
}

impl Domain {
    /// Every canned response, by shortcut; `search` matches shortcut, title or body.
    pub async fn canned_responses(
        &self,
        actor: &Actor,
        search: Option<&str>,
    ) -> Result<Vec<canned_response::Model>> {
        actor.require(Capability::ReadReference)?;
        let mut q = canned_response::Entity::find();
        if let Some(text) = search.map(str::trim).filter(|t| !t.is_empty()) {
            if text.chars().count() > 100 {
                return Err(DomainError::invalid("search", "at most 100 characters"));
            }
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            let like = |col: canned_response::Column| {
                Expr::expr(Func::lower(Expr::col(col)))
                    .like(LikeExpr::new(pattern.clone()).escape('\\'))
            };
            q = q.filter(
                Condition::any()
                    .add(like(canned_response::Column::Shortcut))
                    .add(like(canned_response::Column::Title))
                    .add(like(canned_response::Column::Body)),
            );
        }
        Ok(q.order_by_asc(canned_response::Column::Shortcut)
            .all(&self.db)
            .await?)
    }

    pub async fn canned_response_by_shortcut(
        &self,
        shortcut: &str,
    ) -> Result<Option<canned_response::Model>> {
        Ok(canned_response::Entity::find()
            .filter(canned_response::Column::Shortcut.eq(shortcut))
            .one(&self.db)
            .await?)
    }

    pub async fn create_canned_response(
        &self,
        actor: &Actor,
        input: CannedResponseInput,
    ) -> Result<canned_response::Model> {
        actor.require(Capability::ManageConversations)?;
        let now = self.clock.now();
        let row = canned_response::ActiveModel {
            shortcut: Set(parse_shortcut(
                input.shortcut.as_deref().unwrap_or_default(),
            )?),
            title: Set(parse_title(input.title.as_deref().unwrap_or_default())?),
            body: Set(parse_body(input.body.as_deref().unwrap_or_default())?),
            department_id: Set(input.department_id.flatten()),
            created_by: Set(actor.user_id()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let txn = self.db.begin().await?;
        let created = row.insert(&txn).await.map_err(conflict_to_shortcut)?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("canned_response.create", "canned_response", created.id).after(&created),
        )
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn update_canned_response(
        &self,
        actor: &Actor,
        id: i64,
        input: CannedResponseInput,
    ) -> Result<canned_response::Model> {
        actor.require(Capability::ManageConversations)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = canned_response::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("canned response", id))?;
        let mut row: canned_response::ActiveModel = before.clone().into();
        if let Some(v) = input.shortcut {
            row.shortcut = Set(parse_shortcut(&v)?);
        }
        if let Some(v) = input.title {
            row.title = Set(parse_title(&v)?);
        }
        if let Some(v) = input.body {
            row.body = Set(parse_body(&v)?);
        }
        if let Some(v) = input.department_id {
            row.department_id = Set(v);
        }
        row.updated_at = Set(now);
        let after = row.update(&txn).await.map_err(conflict_to_shortcut)?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("canned_response.update", "canned_response", id)
                .before(&before)
                .after(&after),
        )
        .await?;
        txn.commit().await?;
        Ok(after)
    }

    pub async fn delete_canned_response(
        &self,
        actor: &Actor,
        id: i64,
    ) -> Result<canned_response::Model> {
        actor.require(Capability::ManageConversations)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = canned_response::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("canned response", id))?;
        canned_response::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("canned_response.delete", "canned_response", id).before(&before),
        )
        .await?;
        txn.commit().await?;
        Ok(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_that_is_one_slash_word_is_a_shortcut() {
        assert_eq!(shortcut_in(" /Return "), Some("return".into()));
        assert_eq!(shortcut_in("/return please"), None);
        assert_eq!(shortcut_in("hello"), None);
        assert_eq!(shortcut_in("/"), None);
    }

    #[test]
    fn shortcuts_are_words() {
        assert_eq!(parse_shortcut("/size-guide").unwrap(), "size-guide");
        assert!(parse_shortcut("two words").is_err());
        assert!(parse_shortcut(&"x".repeat(33)).is_err());
    }
}
