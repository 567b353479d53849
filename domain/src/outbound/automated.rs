//! Messages the helpdesk sends on its own (auto-replies, surveys, lead-flow
//! questions): written to the outbox in the caller's transaction, like an
//! agent's reply, with `sender_kind = bot`. Callers check consent first
//! ([`super::may_automate`]); the new-customer limit is checked here, and a
//! message beyond it is skipped (logged), never failing the caller.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{
    DeliveryStatus, Direction, OutboxStatus, SenderKind, contact, conversation, message, outbox,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::content::{ContentInput, OutboundContent};
use crate::events::{EventPayload, Scope};
use crate::{Domain, DomainError, Result};

/// Which rule (and variant) produced an automated message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    pub rule_id: Option<i64>,
    pub variant: Option<i32>,
}

impl Domain {
    /// Queues `content` to `contact`, the customer of `conversation`, unless
    /// the new-customer limit is reached; returns the message and the event
    /// to publish once the transaction commits, or `None` when skipped.
    pub async fn queue_automated(
        &self,
        db: &impl ConnectionTrait,
        contact: &contact::Model,
        conversation: &conversation::Model,
        content: OutboundContent,
        origin: Origin,
        now: DateTime<Utc>,
    ) -> Result<Option<(message::Model, EventPayload)>> {
        if !self
            .may_queue_automated(db, contact, conversation, None, now)
            .await?
        {
            return Ok(None);
        }
        let one = Automatic {
            conversation: conversation.clone(),
            content,
            origin,
        };
        Ok(queue_all(db, vec![one], now).await?.pop())
    }

    /// Whether the new-customer limit lets one more automated message go to
    /// `contact` now (a skip is logged). `recent`: the contact's messages of
    /// the last minute, when the caller has counted them
    /// ([`super::new_customer::recent_counts`]).
    pub(crate) async fn may_queue_automated(
        &self,
        db: &impl ConnectionTrait,
        contact: &contact::Model,
        conversation: &conversation::Model,
        recent: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let per_minute = self.config.messaging.new_customer_messages_per_minute;
        let wait = super::new_customer::wait_before_next(
            db,
            contact,
            conversation,
            per_minute,
            recent,
            now,
        )
        .await?;
        if let Some(wait) = wait {
            tracing::info!(
                conversation_id = conversation.id,
                retry_after_ms = wait.num_milliseconds(),
                "automated message skipped: new-customer sending limit"
            );
        }
        Ok(wait.is_none())
    }
}

/// An automated message to write.
#[derive(Debug)]
pub(crate) struct Automatic {
    pub conversation: conversation::Model,
    pub content: OutboundContent,
    pub origin: Origin,
}

/// Writes the messages and their outbox rows, a few statements for all of
/// them; at most one message per conversation (how rows are matched back).
/// Returns each message, in the order given, with its event.
pub(crate) async fn queue_all(
    db: &impl ConnectionTrait,
    items: Vec<Automatic>,
    now: DateTime<Utc>,
) -> Result<Vec<(message::Model, EventPayload)>> {
    if items.is_empty() {
        return Ok(vec![]);
    }
    let mut rows = Vec::with_capacity(items.len());
    for item in &items {
        let content = &item.content;
        let payload = serde_json::to_value(content).map_err(DomainError::internal)?;
        rows.push(message::ActiveModel {
            conversation_id: Set(item.conversation.id),
            channel_id: Set(item.conversation.channel_id),
            direction: Set(Direction::Outbound),
            sender_kind: Set(SenderKind::Bot),
            message_type: Set(content.message_type()),
            body: Set(content.body_text()),
            media: Set(content.media_json()),
            payload: Set(Some(payload)),
            status: Set(DeliveryStatus::Queued),
            auto_rule_id: Set(item.origin.rule_id),
            auto_variant: Set(item.origin.variant),
            created_at: Set(now),
            ..Default::default()
        });
    }
    // RETURNING rows come in any order on SQLite: matched by conversation.
    let mut created: HashMap<i64, message::Model> = message::Entity::insert_many(rows)
        .exec_with_returning(db)
        .await?
        .into_iter()
        .map(|m| (m.conversation_id, m))
        .collect();
    let messages: Vec<message::Model> = items
        .iter()
        .map(|item| {
            created.remove(&item.conversation.id).ok_or_else(|| {
                DomainError::internal(std::io::Error::other(
                    "two automated messages of one conversation written together",
                ))
            })
        })
        .collect::<Result<_>>()?;
    outbox::Entity::insert_many(messages.iter().map(|m| outbox::ActiveModel {
        message_id: Set(m.id),
        channel_id: Set(m.channel_id),
        status: Set(OutboxStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }))
    .exec_without_returning(db)
    .await?;
    conversation::Entity::update_many()
        .col_expr(conversation::Column::LastMessageAt, Expr::value(now))
        .filter(conversation::Column::Id.is_in(items.iter().map(|i| i.conversation.id)))
        .exec(db)
        .await?;
    Ok(items
        .iter()
        .zip(messages)
        .map(|(item, m)| {
            let event = EventPayload::MessageAdded {
                scope: Scope::from(&item.conversation),
                message_id: m.id,
                direction: Direction::Outbound,
                status: DeliveryStatus::Queued,
            };
            (m, event)
        })
        .collect())
}

/// A plain text, checked against WhatsApp's limits.
pub fn text(body: String) -> Result<OutboundContent> {
    ContentInput {
        text: Some(body),
        ..Default::default()
    }
    .parse()
}
