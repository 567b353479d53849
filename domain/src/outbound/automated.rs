//! Messages the helpdesk sends on its own (auto-replies, surveys, lead-flow
//! questions): written to the outbox in the caller's transaction, like an
//! agent's reply, with `sender_kind = bot`. Callers check consent first
//! ([`super::may_automate`]); the new-customer limit is checked here, and a
//! message beyond it is skipped (logged), never failing the caller.

use chrono::{DateTime, Utc};
use entity::{
    DeliveryStatus, Direction, OutboxStatus, SenderKind, contact, conversation, message, outbox,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

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
        let per_minute = self.config.messaging.new_customer_messages_per_minute;
        let wait =
            super::new_customer::wait_before_next(db, contact, conversation, per_minute, now)
                .await?;
        if let Some(wait) = wait {
            tracing::info!(
                conversation_id = conversation.id,
                rule_id = origin.rule_id,
                retry_after_ms = wait.num_milliseconds(),
                "automated message skipped: new-customer sending limit"
            );
            return Ok(None);
        }
        Ok(Some(queue(db, conversation, content, origin, now).await?))
    }
}

/// Writes the message and its outbox row.
async fn queue(
    db: &impl ConnectionTrait,
    conversation: &conversation::Model,
    content: OutboundContent,
    origin: Origin,
    now: DateTime<Utc>,
) -> Result<(message::Model, EventPayload)> {
    let payload = serde_json::to_value(&content).map_err(DomainError::internal)?;
    let created = message::ActiveModel {
        conversation_id: Set(conversation.id),
        channel_id: Set(conversation.channel_id),
        direction: Set(Direction::Outbound),
        sender_kind: Set(SenderKind::Bot),
        message_type: Set(content.message_type()),
        body: Set(content.body_text()),
        media: Set(content.media_json()),
        payload: Set(Some(payload)),
        status: Set(DeliveryStatus::Queued),
        auto_rule_id: Set(origin.rule_id),
        auto_variant: Set(origin.variant),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    outbox::ActiveModel {
        message_id: Set(created.id),
        channel_id: Set(conversation.channel_id),
        status: Set(OutboxStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    conversation::Entity::update_many()
        .col_expr(conversation::Column::LastMessageAt, Expr::value(now))
        .filter(conversation::Column::Id.eq(conversation.id))
        .exec(db)
        .await?;
    let event = EventPayload::MessageAdded {
        scope: Scope::from(conversation),
        message_id: created.id,
        direction: Direction::Outbound,
        status: DeliveryStatus::Queued,
    };
    Ok((created, event))
}

/// A plain text, checked against WhatsApp's limits.
pub fn text(body: String) -> Result<OutboundContent> {
    ContentInput {
        text: Some(body),
        ..Default::default()
    }
    .parse()
}
