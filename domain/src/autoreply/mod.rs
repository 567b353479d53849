//! Auto-replies: rules that answer customers without an agent.
//!
//! # Rules
//! A rule has a trigger mode — **first contact** (the welcome, on the first
//! message of a new conversation), **keyword** (an FAQ answer when one of its
//! keywords is in the message, see [`crate::keywords`]), **offline** (outside
//! business hours, by default 22:00–08:00) or **scheduled** (inside a window on
//! chosen days, e.g. a lunch menu 11:30–13:00) — see [`schedule`]. A rule may
//! be limited to one channel and one language; when several match, the
//! highest `priority` wins, then keyword over scheduled over offline over first
//! contact, then the oldest rule. A rule in the conversation's language is
//! preferred to one for every language. First-contact, offline and scheduled
//! rules answer at most once per conversation; keyword rules every time.
//!
//! # Limits (checked when the rule is saved)
//! Each variant at most 256 characters (refused beyond, `BAD_USER_INPUT`); a
//! URL, code or number past the first 150 characters (the phone's preview) is
//! accepted with a warning. 1 to 5 variants, picked at random but never the one
//! this contact got last from the rule. Up to 3 quick-reply buttons of at most
//! 20 characters, sent as WhatsApp reply buttons.
//!
//! # At most 3 a day, then a human
//! A customer gets at most 3 automated replies in any 24 hours; a message past
//! that hands the conversation over. The second automated reply carries a
//! "talk to an agent" button; tapping it, or writing a word such as "agent",
//! "humain" or "operatore", hands over at once. A handed-over conversation, or
//! one an agent holds, gets no more auto-replies; neither does an opted-out
//! contact.
//!
//! Replies are queued in the outbox in the ingest transaction (see
//! [`engine`]), so the welcome is durable as soon as the webhook is answered.

pub mod auto_close;
pub mod engine;
pub mod schedule;
pub mod template;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use entity::{
    ConversationStatus, TriggerMode, auto_reply_rule, automation_hit, automation_variable,
    conversation,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use serde_json::json;

use crate::audit::{self, Change};
use crate::outbound::content::{MAX_BUTTON_TITLE_CHARS, MAX_BUTTONS};
use crate::{Actor, Capability, Domain, DomainError, Result};

pub use schedule::Schedule;

pub const MAX_REPLY_CHARS: usize = 256;
/// What the phone shows before "read more".
pub const PREVIEW_CHARS: usize = 150;
pub const MAX_VARIANTS: usize = 5;
pub const MAX_VARIABLE_BYTES: usize = 5 * 1024;
pub const MAX_KEYWORD_CHARS: usize = 60;
pub const MAX_KEYWORDS: usize = 50;

#[derive(Debug, Clone, Default)]
pub struct RuleInput {
    pub name: Option<String>,
    pub trigger_mode: Option<TriggerMode>,
    /// `Some(None)` clears the channel (every channel).
    pub channel_id: Option<Option<i64>>,
    /// `Some(None)` clears the language (every language).
    pub language: Option<Option<String>>,
    pub keywords: Option<Vec<String>>,
    pub variants: Option<Vec<String>>,
    pub buttons: Option<Vec<String>>,
    pub schedule: Option<Option<Schedule>>,
    pub priority: Option<i32>,
    pub is_active: Option<bool>,
}

/// A saved rule and what the phone preview would hide.
#[derive(Debug, Clone)]
pub struct RuleSaved {
    pub rule: auto_reply_rule::Model,
    pub warnings: Vec<String>,
}

fn parse_name(v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 80 {
        return Err(DomainError::invalid("name", "must be 1 to 80 characters"));
    }
    Ok(v.to_string())
}

/// Variants: 1 to 5 texts of 1 to 256 characters; warnings for key content
/// past the preview.
pub fn parse_variants(list: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    if list.is_empty() || list.len() > MAX_VARIANTS {
        return Err(DomainError::invalid(
            "variants",
            format!("1 to {MAX_VARIANTS} reply texts"),
        ));
    }
    let mut warnings = vec![];
    let mut out = vec![];
    for (i, v) in list.iter().enumerate() {
        let n = v.chars().count();
        if v.trim().is_empty() {
            return Err(DomainError::invalid(
                "variants",
                format!("variant {} is empty", i + 1),
            ));
        }
        if n > MAX_REPLY_CHARS {
            return Err(DomainError::invalid(
                "variants",
                format!(
                    "variant {} has {n} characters; an automated reply is at most {MAX_REPLY_CHARS}",
                    i + 1
                ),
            ));
        }
        for (kind, token, at) in late_key_content(v) {
            warnings.push(format!(
                "variant {}: the {kind} \"{token}\" starts at character {}, past the first {PREVIEW_CHARS} shown in the phone preview",
                i + 1,
                at + 1
            ));
        }
        out.push(v.clone());
    }
    Ok((out, warnings))
}

/// URLs, codes and numbers starting at or after character 150: (kind, token, index).
pub fn late_key_content(text: &str) -> Vec<(&'static str, String, usize)> {
    let mut found = vec![];
    let mut start: Option<(usize, String)> = None;
    let flush = |tok: Option<(usize, String)>, found: &mut Vec<_>| {
        if let Some((at, token)) = tok {
            let token: String = token
                .trim_matches(|c: char| matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | ')' | '('))
                .to_string();
            if at < PREVIEW_CHARS || token.is_empty() {
                return;
            }
            let lower = token.to_lowercase();
            let kind = if lower.starts_with("http://")
                || lower.starts_with("https://")
                || lower.starts_with("www.")
            {
                Some("URL")
            } else if token.chars().all(|c| {
                c.is_ascii_digit() || matches!(c, '.' | ',' | '+' | '-' | '/' | '%' | '€' | '$')
            }) && token.chars().any(|c| c.is_ascii_digit())
            {
                Some("number")
            } else if token.chars().any(|c| c.is_ascii_digit())
                || (token.chars().count() >= 4
                    && token
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'))
            {
                Some("code")
            } else {
                None
            };
            if let Some(kind) = kind {
                found.push((kind, token, at));
            }
        }
    };
    for (index, c) in text.chars().enumerate() {
        if c.is_whitespace() {
            flush(start.take(), &mut found);
        } else {
            match &mut start {
                Some((_, tok)) => tok.push(c),
                None => start = Some((index, c.to_string())),
            }
        }
    }
    flush(start.take(), &mut found);
    found
}

pub fn parse_buttons(list: &[String]) -> Result<Vec<String>> {
    if list.len() > MAX_BUTTONS {
        return Err(DomainError::invalid(
            "buttons",
            format!("at most {MAX_BUTTONS} quick-reply buttons"),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = vec![];
    for b in list {
        let t = b.trim();
        let n = t.chars().count();
        if n == 0 || n > MAX_BUTTON_TITLE_CHARS {
            return Err(DomainError::invalid(
                "buttons",
                format!("\"{t}\": a button title is 1 to {MAX_BUTTON_TITLE_CHARS} characters"),
            ));
        }
        if !seen.insert(t.to_lowercase()) {
            return Err(DomainError::invalid(
                "buttons",
                format!("\"{t}\" appears twice"),
            ));
        }
        out.push(t.to_string());
    }
    Ok(out)
}

pub fn parse_keywords(field: &str, list: &[String]) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut out = vec![];
    for k in list {
        let k = k.trim();
        if k.is_empty() {
            continue;
        }
        if k.chars().count() > MAX_KEYWORD_CHARS {
            return Err(DomainError::invalid(
                field,
                format!("a keyword is at most {MAX_KEYWORD_CHARS} characters"),
            ));
        }
        if crate::keywords::fold(k).is_empty() {
            return Err(DomainError::invalid(
                field,
                format!("\"{k}\" has no letters or digits"),
            ));
        }
        if seen.insert(crate::keywords::fold(k)) {
            out.push(k.to_string());
        }
    }
    if out.len() > MAX_KEYWORDS {
        return Err(DomainError::invalid(
            field,
            format!("at most {MAX_KEYWORDS} keywords"),
        ));
    }
    Ok(out)
}

/// A language code such as `fr` or `pt` (lower case, 2 or 3 letters).
pub fn parse_language(v: &str) -> Result<String> {
    let v = v.trim().to_lowercase();
    if !(2..=3).contains(&v.len()) || !v.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(DomainError::invalid(
            "language",
            "a 2-letter language code such as fr, it, en, es or pt",
        ));
    }
    Ok(v)
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

pub fn rule_keywords(r: &auto_reply_rule::Model) -> Vec<String> {
    strings(&r.keywords)
}

pub fn rule_variants(r: &auto_reply_rule::Model) -> Vec<String> {
    strings(&r.variants)
}

pub fn rule_buttons(r: &auto_reply_rule::Model) -> Vec<String> {
    strings(&r.buttons)
}

pub fn rule_schedule(r: &auto_reply_rule::Model) -> Schedule {
    r.schedule
        .clone()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default()
}

/// Checks the whole rule as it would be saved; returns the warnings.
fn check_rule(r: &auto_reply_rule::ActiveModel) -> Result<Vec<String>> {
    let Some(mode) = r.trigger_mode.try_as_ref().copied() else {
        return Err(DomainError::invalid("triggerMode", "required"));
    };
    let (_, warnings) = parse_variants(&strings(r.variants.as_ref()))?;
    let keywords = strings(r.keywords.as_ref());
    if mode == TriggerMode::Keyword && keywords.is_empty() {
        return Err(DomainError::invalid(
            "keywords",
            "a keyword rule needs at least one keyword",
        ));
    }
    let schedule: Schedule = r
        .schedule
        .as_ref()
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|_| DomainError::invalid("schedule", "not a schedule"))?
        .unwrap_or_default();
    match mode {
        TriggerMode::Scheduled => schedule.validate(true)?,
        _ => schedule.validate(false)?,
    }
    Ok(warnings)
}

/// Automation over a period: conversations resolved or closed, those that
/// no human answered, and which keywords fired.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutomationReport {
    pub conversations_closed: i64,
    pub closed_without_human: i64,
    /// `closed_without_human / conversations_closed`, 0 when nothing closed.
    pub automation_rate: f64,
    pub automated_replies: i64,
    pub handovers: i64,
    pub keyword_hits: Vec<KeywordHits>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordHits {
    pub rule_id: Option<i64>,
    pub keyword: String,
    pub hits: i64,
}

impl Domain {
    pub async fn auto_reply_rules(&self, actor: &Actor) -> Result<Vec<auto_reply_rule::Model>> {
        actor.require(Capability::Configure)?;
        Ok(auto_reply_rule::Entity::find()
            .order_by_desc(auto_reply_rule::Column::Priority)
            .order_by_asc(auto_reply_rule::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn create_auto_reply_rule(
        &self,
        actor: &Actor,
        input: RuleInput,
    ) -> Result<RuleSaved> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let mut row = auto_reply_rule::ActiveModel {
            name: Set(parse_name(input.name.as_deref().unwrap_or_default())?),
            trigger_mode: Set(input
                .trigger_mode
                .ok_or_else(|| DomainError::invalid("triggerMode", "required"))?),
            channel_id: Set(None),
            language: Set(None),
            keywords: Set(json!([])),
            variants: Set(json!([])),
            buttons: Set(json!([])),
            schedule: Set(None),
            priority: Set(0),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        apply(&mut row, input)?;
        let warnings = check_rule(&row)?;
        let txn = self.db.begin().await?;
        let created = row.insert(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("auto_reply_rule.create", "auto_reply_rule", created.id).after(&created),
        )
        .await?;
        txn.commit().await?;
        Ok(RuleSaved {
            rule: created,
            warnings,
        })
    }

    pub async fn update_auto_reply_rule(
        &self,
        actor: &Actor,
        id: i64,
        input: RuleInput,
    ) -> Result<RuleSaved> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = auto_reply_rule::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("auto-reply rule", id))?;
        let mut row: auto_reply_rule::ActiveModel = before.clone().into();
        if let Some(v) = &input.name {
            row.name = Set(parse_name(v)?);
        }
        if let Some(m) = input.trigger_mode {
            row.trigger_mode = Set(m);
        }
        apply(&mut row, input)?;
        let warnings = check_rule(&row)?;
        row.updated_at = Set(now);
        let after = row.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("auto_reply_rule.update", "auto_reply_rule", id)
                .before(&before)
                .after(&after),
        )
        .await?;
        txn.commit().await?;
        Ok(RuleSaved {
            rule: after,
            warnings,
        })
    }

    pub async fn delete_auto_reply_rule(
        &self,
        actor: &Actor,
        id: i64,
    ) -> Result<auto_reply_rule::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = auto_reply_rule::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("auto-reply rule", id))?;
        auto_reply_rule::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("auto_reply_rule.delete", "auto_reply_rule", id).before(&before),
        )
        .await?;
        txn.commit().await?;
        Ok(before)
    }

    pub async fn automation_variables(
        &self,
        actor: &Actor,
    ) -> Result<Vec<automation_variable::Model>> {
        actor.require(Capability::Configure)?;
        Ok(automation_variable::Entity::find()
            .order_by_asc(automation_variable::Column::Key)
            .all(&self.db)
            .await?)
    }

    /// Sets a live variable (at most 5 KB); the next reply uses it.
    pub async fn set_automation_variable(
        &self,
        actor: &Actor,
        key: &str,
        value: &str,
    ) -> Result<automation_variable::Model> {
        actor.require(Capability::Configure)?;
        let key = key.trim();
        let key_ok = !key.is_empty()
            && key.len() <= 64
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !key_ok {
            return Err(DomainError::invalid(
                "key",
                "1 to 64 letters, digits, _, - or . (e.g. stock_sku42)",
            ));
        }
        if value.len() > MAX_VARIABLE_BYTES {
            return Err(DomainError::invalid(
                "value",
                format!(
                    "{} bytes; a variable is at most {MAX_VARIABLE_BYTES} bytes (5 KB)",
                    value.len()
                ),
            ));
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = automation_variable::Entity::find_by_id(key.to_string())
            .one(&txn)
            .await?;
        let after = match &before {
            Some(b) => {
                let mut row: automation_variable::ActiveModel = b.clone().into();
                row.value = Set(value.to_string());
                row.updated_at = Set(now);
                row.update(&txn).await?
            }
            None => {
                automation_variable::ActiveModel {
                    key: Set(key.to_string()),
                    value: Set(value.to_string()),
                    updated_at: Set(now),
                }
                .insert(&txn)
                .await?
            }
        };
        let mut change = Change::new("automation_variable.set", "automation_variable", key);
        if let Some(b) = &before {
            change = change.before(b);
        }
        audit::record(&txn, actor, now, change.after(&after)).await?;
        txn.commit().await?;
        Ok(after)
    }

    pub async fn delete_automation_variable(
        &self,
        actor: &Actor,
        key: &str,
    ) -> Result<automation_variable::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = automation_variable::Entity::find_by_id(key.to_string())
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("automation variable", key))?;
        automation_variable::Entity::delete_by_id(key.to_string())
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("automation_variable.delete", "automation_variable", key).before(&before),
        )
        .await?;
        txn.commit().await?;
        Ok(before)
    }

    /// The automation rate and keyword hits for conversations resolved (or
    /// closed) and replies sent in `[from, to)`.
    pub async fn automation_report(
        &self,
        actor: &Actor,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<AutomationReport> {
        actor.require(Capability::ReadMetrics)?;
        if to <= from {
            return Err(DomainError::invalid("to", "must be after from"));
        }
        let ended = || -> Expr {
            Func::coalesce([
                Expr::col(conversation::Column::ResolvedAt),
                Expr::col(conversation::Column::ClosedAt),
            ])
            .into()
        };
        let closed = conversation::Entity::find()
            .filter(
                conversation::Column::Status
                    .is_in([ConversationStatus::Resolved, ConversationStatus::Closed]),
            )
            .filter(ended().gte(from))
            .filter(ended().lt(to));
        let conversations_closed = closed.clone().count(&self.db).await? as i64;
        let closed_without_human = closed
            .filter(conversation::Column::FirstResponseAt.is_null())
            .filter(conversation::Column::AssigneeId.is_null())
            .count(&self.db)
            .await? as i64;
        let hits = automation_hit::Entity::find()
            .filter(automation_hit::Column::CreatedAt.gte(from))
            .filter(automation_hit::Column::CreatedAt.lt(to));
        let automated_replies = hits
            .clone()
            .filter(automation_hit::Column::Kind.eq(engine::HIT_REPLY))
            .count(&self.db)
            .await? as i64;
        let handovers = hits
            .clone()
            .filter(automation_hit::Column::Kind.eq(engine::HIT_HANDOVER))
            .count(&self.db)
            .await? as i64;
        let rows: Vec<(Option<i64>, Option<String>, i64)> = hits
            .filter(automation_hit::Column::Kind.eq(engine::HIT_REPLY))
            .filter(automation_hit::Column::Keyword.is_not_null())
            .select_only()
            .column(automation_hit::Column::RuleId)
            .column(automation_hit::Column::Keyword)
            .column_as(automation_hit::Column::Id.count(), "hits")
            .group_by(automation_hit::Column::RuleId)
            .group_by(automation_hit::Column::Keyword)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut keyword_hits: Vec<KeywordHits> = rows
            .into_iter()
            .filter_map(|(rule_id, k, hits)| {
                k.map(|keyword| KeywordHits {
                    rule_id,
                    keyword,
                    hits,
                })
            })
            .collect();
        keyword_hits.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.keyword.cmp(&b.keyword)));
        Ok(AutomationReport {
            conversations_closed,
            closed_without_human,
            automation_rate: if conversations_closed == 0 {
                0.0
            } else {
                closed_without_human as f64 / conversations_closed as f64
            },
            automated_replies,
            handovers,
            keyword_hits,
        })
    }
}

/// Copies the optional fields of `input` onto `row`, parsing each.
fn apply(row: &mut auto_reply_rule::ActiveModel, input: RuleInput) -> Result<()> {
    if let Some(v) = input.channel_id {
        row.channel_id = Set(v);
    }
    if let Some(v) = input.language {
        row.language = Set(v.as_deref().map(parse_language).transpose()?);
    }
    if let Some(v) = input.keywords {
        row.keywords = Set(json!(parse_keywords("keywords", &v)?));
    }
    if let Some(v) = input.variants {
        row.variants = Set(json!(parse_variants(&v)?.0));
    }
    if let Some(v) = input.buttons {
        row.buttons = Set(json!(parse_buttons(&v)?));
    }
    if let Some(v) = input.schedule {
        row.schedule = Set(v.map(|s| json!(s)));
    }
    if let Some(v) = input.priority {
        row.priority = Set(v);
    }
    if let Some(v) = input.is_active {
        row.is_active = Set(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_longer_than_256_characters_is_rejected() {
        let ok = "a".repeat(256);
        assert!(parse_variants(&[ok]).is_ok());
        let err = parse_variants(&["a".repeat(257)]).unwrap_err();
        assert!(matches!(err, DomainError::InvalidInput { ref field, .. } if field == "variants"));
        assert!(parse_variants(&[]).is_err());
        assert!(parse_variants(&vec!["x".to_string(); 6]).is_err());
    }

    #[test]
    fn key_content_past_150_characters_is_flagged() {
        let pad = "x".repeat(150);
        let text = format!("{pad} see https://shop.example/sizes or use code SUMMER20, 45 EUR");
        let found: Vec<&str> = late_key_content(&text).iter().map(|f| f.0).collect();
        assert_eq!(found, vec!["URL", "code", "number"]);
        assert!(late_key_content("Code SUMMER20 at https://shop.example").is_empty());
        let (_, warnings) = parse_variants(&[text]).unwrap();
        assert_eq!(warnings.len(), 3);
    }

    #[test]
    fn buttons_are_at_most_three_of_twenty_characters() {
        assert!(
            parse_buttons(&[
                "Buy now".into(),
                "Check stock".into(),
                "Talk to an agent".into()
            ])
            .is_ok()
        );
        assert!(parse_buttons(&["a".into(), "b".into(), "c".into(), "d".into()]).is_err());
        assert!(parse_buttons(&["x".repeat(21)]).is_err());
        assert!(parse_buttons(&["Yes".into(), "yes".into()]).is_err());
    }
}
