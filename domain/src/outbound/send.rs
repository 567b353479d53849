//! `sendMessage`: an agent's reply, checked and queued. Nothing here talks to
//! Meta: the message row (outbound, agent, queued) and its outbox row are
//! written in one transaction with the audit entry, and the outbox worker
//! sends them.
//!
//! Order of checks: permission and lock (`conversation_for_action`), content
//! (canned expansion, WhatsApp limits), reply context, the customer-service
//! window (templates exempt), then the new-customer limit.

use chrono::{DateTime, Utc};
use entity::{
    DeliveryStatus, Direction, OutboxStatus, SenderKind, canned_response, contact, conversation,
    message, outbox,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait,
};

use super::content::{ContentInput, OutboundContent};
use crate::audit::{self, Change};
use crate::canned_responses::shortcut_in;
use crate::events::{EventPayload, Scope};
use crate::{Actor, Domain, DomainError, Result, window};

/// A reply as the agent asked for it.
#[derive(Debug, Clone, Default)]
pub struct MessageForSend {
    pub content: ContentInput,
    /// Sends this canned response (placeholders filled) instead of `text`.
    pub canned_response_id: Option<i64>,
    /// Our id of the message being answered (sent as WhatsApp `context`).
    pub reply_to: Option<i64>,
}

impl Domain {
    pub async fn send_message(
        &self,
        actor: &Actor,
        conversation_id: i64,
        input: MessageForSend,
    ) -> Result<message::Model> {
        let conversation = self.conversation_for_action(actor, conversation_id).await?;
        let sender_id = actor
            .user_id()
            .ok_or_else(|| DomainError::forbidden("messages are sent by staff users"))?;
        let contact = contact::Entity::find_by_id(conversation.contact_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("contact", conversation.contact_id))?;
        let content = self
            .resolve_content(
                input.content,
                input.canned_response_id,
                &contact,
                &conversation,
            )
            .await?;
        let context_wa_id = match input.reply_to {
            Some(id) => Some(self.reply_context(conversation.id, id).await?),
            None => None,
        };
        if contact.wa_id.is_none() || contact.erased_at.is_some() {
            return Err(DomainError::invalid(
                "conversationId",
                "the customer has no WhatsApp number to write to",
            ));
        }
        let now = self.clock.now();
        let cfg = &self.config.messaging;
        let last_inbound = window::last_customer_message(&conversation, Some(&contact));
        if !content.is_template() && !window::is_inside(last_inbound, cfg.service_window, now) {
            return Err(DomainError::OutsideWindow);
        }

        let txn = self.db.begin().await?;
        self.check_new_customer_limit(&txn, &contact, &conversation, now)
            .await?;
        let payload = serde_json::to_value(&content).map_err(DomainError::internal)?;
        let created = message::ActiveModel {
            conversation_id: Set(conversation.id),
            channel_id: Set(conversation.channel_id),
            direction: Set(Direction::Outbound),
            sender_kind: Set(SenderKind::Agent),
            sender_user_id: Set(Some(sender_id)),
            message_type: Set(content.message_type()),
            body: Set(content.body_text()),
            media: Set(content.media_json()),
            payload: Set(Some(payload)),
            context_wa_id: Set(context_wa_id),
            status: Set(DeliveryStatus::Queued),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
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
        .insert(&txn)
        .await?;
        conversation::Entity::update_many()
            .col_expr(conversation::Column::LastMessageAt, Expr::value(now))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(conversation.id))
            .exec(&txn)
            .await?;
        // The first human response (SLA, metrics): set once.
        let first_response = conversation::Entity::update_many()
            .col_expr(conversation::Column::FirstResponseAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(conversation.id))
            .filter(conversation::Column::FirstResponseAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected
            > 0;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("message.send", "message", created.id).after(&created),
        )
        .await?;
        self.touch_lock_activity(&txn, actor, &conversation).await?;
        let scope = Scope::from(&conversation);
        let added = EventPayload::MessageAdded {
            scope,
            message_id: created.id,
            direction: Direction::Outbound,
            status: DeliveryStatus::Queued,
        };
        self.enqueue_webhooks_in(&txn, std::slice::from_ref(&added))
            .await?;
        txn.commit().await?;

        self.emit(added);
        if first_response {
            self.emit(EventPayload::ConversationUpdated {
                scope,
                status: conversation.status,
                priority: conversation.priority,
                change: "first_response".into(),
            });
        }
        self.outbox.wake.notify_one();
        Ok(created)
    }

    /// Expands a canned response (by id, or a text that is one `/shortcut`)
    /// and checks the result against WhatsApp's limits.
    async fn resolve_content(
        &self,
        mut content: ContentInput,
        canned_id: Option<i64>,
        contact: &contact::Model,
        conversation: &conversation::Model,
    ) -> Result<OutboundContent> {
        if let Some(id) = canned_id {
            if content.text.is_some() {
                return Err(DomainError::invalid(
                    "cannedResponseId",
                    "send either text or a canned response",
                ));
            }
            let canned = canned_response::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .ok_or_else(|| {
                    DomainError::invalid("cannedResponseId", "no such canned response")
                })?;
            content.text = Some(
                self.fill_placeholders(&canned.body, contact, conversation)
                    .await?,
            );
        } else if let Some(shortcut) = content.text.as_deref().and_then(shortcut_in) {
            let canned = self
                .canned_response_by_shortcut(&shortcut)
                .await?
                .ok_or_else(|| {
                    DomainError::invalid("text", format!("no canned response /{shortcut}"))
                })?;
            content.text = Some(
                self.fill_placeholders(&canned.body, contact, conversation)
                    .await?,
            );
        }
        content.parse()
    }

    /// The wamid of the message being answered, which must be in this conversation.
    async fn reply_context(&self, conversation_id: i64, message_id: i64) -> Result<String> {
        let quoted = message::Entity::find_by_id(message_id)
            .filter(message::Column::ConversationId.eq(conversation_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                DomainError::invalid("replyTo", "no such message in this conversation")
            })?;
        quoted
            .wa_message_id
            .ok_or_else(|| DomainError::invalid("replyTo", "that message has no WhatsApp id yet"))
    }

    /// The new-customer limit ([`super::new_customer`]) as an error.
    async fn check_new_customer_limit(
        &self,
        db: &impl ConnectionTrait,
        contact: &contact::Model,
        current: &conversation::Model,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let per_minute = self.config.messaging.new_customer_messages_per_minute;
        match super::new_customer::wait_before_next(db, contact, current, per_minute, None, now)
            .await?
        {
            None => Ok(()),
            // Whole seconds, rounded up, at least one.
            Some(wait) => Err(DomainError::RateLimited {
                retry_after_secs: ((wait.num_milliseconds() + 999) / 1000).max(1),
            }),
        }
    }
}
