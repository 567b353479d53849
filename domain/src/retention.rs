//! Data governance: the retention policy (archive or purge closed
//! conversations older than N days), and one contact's data on request:
//! export everything about it, or erase it. All three are audited; the erase
//! audit row holds counts only, never the erased data.

use chrono::{DateTime, Duration, Utc};
use entity::{
    ConversationStatus, InboxStatus, assignment, audit_log, billing_ledger, contact, contact_tag,
    conversation, conversation_tag, lead_flow_run, message, note, outbox, sla_event, survey, tag,
    webhook_delivery, webhook_inbox,
};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait, TransactionTrait,
};
use serde_json::{Value, json};

use crate::audit::{self, Change};
use crate::webhooks_out;
use crate::{Actor, Capability, Domain, DomainError, Result};

/// What happens to conversations past the retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionAction {
    /// Kept for reports, marked `archived_at`.
    Archive,
    /// Deleted with their messages, notes, surveys and history.
    Purge,
}

impl RetentionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Archive => "archive",
            Self::Purge => "purge",
        }
    }
}

/// Conversations handled at most per retention run (the next run continues).
const RETENTION_BATCH: u64 = 500;
/// Longest retention period accepted (10 years).
const MAX_RETENTION_DAYS: i64 = 3650;

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureReport {
    pub conversations: u64,
    pub messages: u64,
    pub notes: u64,
    pub surveys: u64,
    pub audit_rows: u64,
    pub webhook_deliveries: u64,
}

/// Deletes everything hanging off these conversations, then (when
/// `conversations_too`) the conversations. Returns (messages, notes, surveys).
async fn delete_conversation_data(
    txn: &DatabaseTransaction,
    ids: &[i64],
    conversations_too: bool,
) -> Result<(u64, u64, u64)> {
    if ids.is_empty() {
        return Ok((0, 0, 0));
    }
    let ids = ids.to_vec();
    let message_ids: Vec<i64> = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::ConversationId.is_in(ids.clone()))
        .into_tuple()
        .all(txn)
        .await?;
    for chunk in message_ids.chunks(500) {
        outbox::Entity::delete_many()
            .filter(outbox::Column::MessageId.is_in(chunk.to_vec()))
            .exec(txn)
            .await?;
    }
    billing_ledger::Entity::delete_many()
        .filter(billing_ledger::Column::ConversationId.is_in(ids.clone()))
        .exec(txn)
        .await?;
    let messages = message::Entity::delete_many()
        .filter(message::Column::ConversationId.is_in(ids.clone()))
        .exec(txn)
        .await?
        .rows_affected;
    let notes = note::Entity::delete_many()
        .filter(note::Column::ConversationId.is_in(ids.clone()))
        .exec(txn)
        .await?
        .rows_affected;
    let surveys = survey::Entity::delete_many()
        .filter(survey::Column::ConversationId.is_in(ids.clone()))
        .exec(txn)
        .await?
        .rows_affected;
    lead_flow_run::Entity::delete_many()
        .filter(lead_flow_run::Column::ConversationId.is_in(ids.clone()))
        .exec(txn)
        .await?;
    let keys: Vec<String> = ids
        .iter()
        .map(|c| webhooks_out::conversation_key(*c))
        .collect();
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::OrderingKey.is_in(keys))
        .exec(txn)
        .await?;
    if conversations_too {
        assignment::Entity::delete_many()
            .filter(assignment::Column::ConversationId.is_in(ids.clone()))
            .exec(txn)
            .await?;
        sla_event::Entity::delete_many()
            .filter(sla_event::Column::ConversationId.is_in(ids.clone()))
            .exec(txn)
            .await?;
        conversation_tag::Entity::delete_many()
            .filter(conversation_tag::Column::ConversationId.is_in(ids.clone()))
            .exec(txn)
            .await?;
        conversation::Entity::delete_many()
            .filter(conversation::Column::Id.is_in(ids))
            .exec(txn)
            .await?;
    }
    Ok((messages, notes, surveys))
}

/// Blanks the before/after states of audit rows about these entities.
async fn anonymise_audit(
    txn: &DatabaseTransaction,
    entity_type: &str,
    ids: &[String],
) -> Result<u64> {
    let mut n = 0;
    for chunk in ids.chunks(500) {
        n += audit_log::Entity::update_many()
            .col_expr(audit_log::Column::Before, Expr::value(None::<Value>))
            .col_expr(
                audit_log::Column::After,
                Expr::value(Some(json!({"erased": true}))),
            )
            .filter(audit_log::Column::EntityType.eq(entity_type))
            .filter(audit_log::Column::EntityId.is_in(chunk.to_vec()))
            .exec(txn)
            .await?
            .rows_affected;
    }
    Ok(n)
}

impl Domain {
    /// Archives or purges conversations closed (or resolved) more than
    /// `days` ago. Returns how many conversations it handled.
    pub async fn apply_retention(
        &self,
        actor: &Actor,
        days: i64,
        action: RetentionAction,
    ) -> Result<u64> {
        actor.require(Capability::Configure)?;
        if !(1..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(DomainError::invalid(
                "olderThanDays",
                format!("must be between 1 and {MAX_RETENTION_DAYS}"),
            ));
        }
        let now = self.clock.now();
        let cutoff = now - Duration::days(days);
        let ended_before = Condition::any()
            .add(conversation::Column::ClosedAt.lt(cutoff))
            .add(
                Condition::all()
                    .add(conversation::Column::ClosedAt.is_null())
                    .add(conversation::Column::ResolvedAt.lt(cutoff)),
            );
        let mut q = conversation::Entity::find()
            .select_only()
            .column(conversation::Column::Id)
            .filter(
                conversation::Column::Status
                    .is_in([ConversationStatus::Resolved, ConversationStatus::Closed]),
            )
            .filter(ended_before);
        if action == RetentionAction::Archive {
            q = q.filter(conversation::Column::ArchivedAt.is_null());
        }
        let ids: Vec<i64> = q
            .order_by_asc(conversation::Column::Id)
            .limit(RETENTION_BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin().await?;
        let (messages, notes, surveys) = match action {
            RetentionAction::Archive => {
                conversation::Entity::update_many()
                    .col_expr(conversation::Column::ArchivedAt, Expr::value(now))
                    .filter(conversation::Column::Id.is_in(ids.clone()))
                    .filter(conversation::Column::ArchivedAt.is_null())
                    .exec(&txn)
                    .await?;
                (0, 0, 0)
            }
            RetentionAction::Purge => delete_conversation_data(&txn, &ids, true).await?,
        };
        audit::record(
            &txn,
            actor,
            now,
            Change::new("retention.apply", "retention", action.as_str()).after(&json!({
                "action": action.as_str(),
                "olderThanDays": days,
                "cutoff": cutoff.to_rfc3339(),
                "conversations": ids.len(),
                "messages": messages,
                "notes": notes,
                "surveys": surveys,
            })),
        )
        .await?;
        txn.commit().await?;
        Ok(ids.len() as u64)
    }

    /// Everything stored about one contact, as one JSON document: the
    /// contact, its tags, conversations with messages and notes, surveys,
    /// and the audit rows about it. Audited (without the data).
    pub async fn export_contact_data(&self, actor: &Actor, contact_id: i64) -> Result<Value> {
        actor.require(Capability::DeleteHistory)?;
        let c = contact::Entity::find_by_id(contact_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("contact", contact_id))?;
        let tags: Vec<String> = tag::Entity::find()
            .join(JoinType::InnerJoin, tag::Relation::ContactTags.def())
            .filter(contact_tag::Column::ContactId.eq(contact_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let conversations = conversation::Entity::find()
            .filter(conversation::Column::ContactId.eq(contact_id))
            .order_by_asc(conversation::Column::Id)
            .all(&self.db)
            .await?;
        let ids: Vec<i64> = conversations.iter().map(|c| c.id).collect();
        let messages = message::Entity::find()
            .filter(message::Column::ConversationId.is_in(ids.clone()))
            .order_by_asc(message::Column::Id)
            .all(&self.db)
            .await?;
        let notes = note::Entity::find()
            .filter(note::Column::ConversationId.is_in(ids.clone()))
            .order_by_asc(note::Column::Id)
            .all(&self.db)
            .await?;
        let surveys = survey::Entity::find()
            .filter(survey::Column::ContactId.eq(contact_id))
            .order_by_asc(survey::Column::Id)
            .all(&self.db)
            .await?;
        let audit_rows = audit_log::Entity::find()
            .filter(audit_log::Column::EntityType.eq("contact"))
            .filter(audit_log::Column::EntityId.eq(contact_id.to_string()))
            .order_by_asc(audit_log::Column::Id)
            .all(&self.db)
            .await?;
        let convs: Vec<Value> = conversations
            .iter()
            .map(|conv| {
                let mut v = serde_json::to_value(conv).unwrap_or(Value::Null);
                v["messages"] = json!(
                    messages
                        .iter()
                        .filter(|m| m.conversation_id == conv.id)
                        .collect::<Vec<_>>()
                );
                v["notes"] = json!(
                    notes
                        .iter()
                        .filter(|n| n.conversation_id == conv.id)
                        .collect::<Vec<_>>()
                );
                v
            })
            .collect();
        let now = self.clock.now();
        let doc = json!({
            "exportedAt": now.to_rfc3339(),
            "contact": c,
            "tags": tags,
            "conversations": convs,
            "surveys": surveys,
            "auditLog": audit_rows,
        });
        let txn = self.db.begin().await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("contact.export", "contact", contact_id).after(&json!({
                "conversations": conversations.len(),
                "messages": messages.len(),
                "notes": notes.len(),
                "surveys": surveys.len(),
            })),
        )
        .await?;
        txn.commit().await?;
        Ok(doc)
    }

    /// Erases one contact: messages, notes and surveys of its conversations
    /// are deleted (with the outbox, ledger, flow answers and webhook
    /// deliveries that carry them), the contact is anonymised (identifiers,
    /// names, fields and tags gone; `erased_at` set), and the audit rows
    /// about the contact, its messages and notes keep only `{"erased":
    /// true}`. Conversations stay, anonymous, for the reports. One
    /// transaction; the audit row of the erasure holds counts only.
    pub async fn erase_contact(&self, actor: &Actor, contact_id: i64) -> Result<ErasureReport> {
        actor.require(Capability::DeleteHistory)?;
        let c = contact::Entity::find_by_id(contact_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("contact", contact_id))?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let ids: Vec<i64> = conversation::Entity::find()
            .select_only()
            .column(conversation::Column::Id)
            .filter(conversation::Column::ContactId.eq(contact_id))
            .into_tuple()
            .all(&txn)
            .await?;
        let message_ids: Vec<String> = message::Entity::find()
            .select_only()
            .column(message::Column::Id)
            .filter(message::Column::ConversationId.is_in(ids.clone()))
            .into_tuple::<i64>()
            .all(&txn)
            .await?
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        let note_ids: Vec<String> = note::Entity::find()
            .select_only()
            .column(note::Column::Id)
            .filter(note::Column::ConversationId.is_in(ids.clone()))
            .into_tuple::<i64>()
            .all(&txn)
            .await?
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        let (messages, notes, mut surveys) = delete_conversation_data(&txn, &ids, false).await?;
        surveys += survey::Entity::delete_many()
            .filter(survey::Column::ContactId.eq(contact_id))
            .exec(&txn)
            .await?
            .rows_affected;
        // Conversation fields that describe the customer.
        conversation::Entity::update_many()
            .col_expr(conversation::Column::Topic, Expr::value(None::<String>))
            .col_expr(conversation::Column::Language, Expr::value(None::<String>))
            .filter(conversation::Column::ContactId.eq(contact_id))
            .exec(&txn)
            .await?;
        let webhook_deliveries = webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::OrderingKey.eq(webhooks_out::contact_key(contact_id)))
            .exec(&txn)
            .await?
            .rows_affected;
        // Raw WhatsApp deliveries already processed that name the customer.
        if let Some(wa_id) = c.wa_id.as_deref().filter(|w| !w.is_empty()) {
            let pattern = format!("%\"{}\"%", wa_id.replace(['%', '_', '"'], ""));
            webhook_inbox::Entity::delete_many()
                .filter(webhook_inbox::Column::Status.ne(InboxStatus::Pending))
                .filter(Expr::col(webhook_inbox::Column::Body).like(LikeExpr::new(pattern)))
                .exec(&txn)
                .await?;
        }
        contact_tag::Entity::delete_many()
            .filter(contact_tag::Column::ContactId.eq(contact_id))
            .exec(&txn)
            .await?;
        contact::Entity::update_many()
            .col_expr(contact::Column::WaId, Expr::value(None::<String>))
            .col_expr(contact::Column::UserId, Expr::value(None::<String>))
            .col_expr(contact::Column::Phone, Expr::value(None::<String>))
            .col_expr(contact::Column::Name, Expr::value(None::<String>))
            .col_expr(contact::Column::ProfileName, Expr::value(None::<String>))
            .col_expr(contact::Column::Language, Expr::value(None::<String>))
            .col_expr(contact::Column::ExternalId, Expr::value(None::<String>))
            .col_expr(contact::Column::Fields, Expr::value(json!({})))
            .col_expr(contact::Column::ErasedAt, Expr::value(now))
            .col_expr(contact::Column::UpdatedAt, Expr::value(now))
            .filter(contact::Column::Id.eq(contact_id))
            .exec(&txn)
            .await?;
        let mut audit_rows = anonymise_audit(&txn, "contact", &[contact_id.to_string()]).await?;
        audit_rows += anonymise_audit(&txn, "message", &message_ids).await?;
        audit_rows += anonymise_audit(&txn, "note", &note_ids).await?;
        let report = ErasureReport {
            conversations: ids.len() as u64,
            messages,
            notes,
            surveys,
            audit_rows,
            webhook_deliveries,
        };
        audit::record(
            &txn,
            actor,
            now,
            Change::new("contact.erase", "contact", contact_id).after(&report),
        )
        .await?;
        txn.commit().await?;
        Ok(report)
    }
}

/// The cut-off of a retention period, for callers that show it.
pub fn cutoff(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    now - Duration::days(days)
}
