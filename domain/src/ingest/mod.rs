//! Ingest of WhatsApp deliveries: every inbound message is stored exactly
//! once (keyed by its WhatsApp id), with its contact and an open
//! conversation found or created in the same transaction; delivery statuses
//! only move forward.
//!
//! Deliveries arriving together are committed together ([`IngestBatcher`]):
//! one transaction per batch instead of one per request (group commit), and
//! each caller is answered only once its batch is durable.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{DeliveryStatus, Direction, MessageType, channel, conversation, message};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

mod store;

use store::Item;

use crate::events::{EventPayload, QueueChange, Scope};
use crate::reference::Reference;
use crate::{Domain, DomainError, Result};

/// One POST from the Cloud API, already parsed by the api layer.
#[derive(Debug, Clone, Default)]
pub struct InboundDelivery {
    pub changes: Vec<InboundChange>,
}

#[derive(Debug, Clone, Default)]
pub struct InboundChange {
    /// Meta's id of the business number: selects the channel.
    pub phone_number_id: String,
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
}

#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub wa_message_id: String,
    pub from_wa_id: Option<String>,
    /// Business-scoped user id, for users known only by username.
    pub from_user_id: Option<String>,
    pub profile_name: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub message_type: MessageType,
    pub body: Option<String>,
    pub media: Option<Value>,
    pub payload: Value,
    pub context_wa_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StatusUpdate {
    /// Our outbound message's WhatsApp id.
    pub wa_message_id: String,
    pub status: DeliveryStatus,
    pub timestamp: DateTime<Utc>,
    pub error_code: Option<i32>,
    pub error_title: Option<String>,
}

/// What one delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub messages_stored: usize,
    pub duplicates: usize,
    pub statuses_applied: usize,
    /// Statuses for messages we do not know, or that would move backwards.
    pub statuses_ignored: usize,
    /// Changes for a phone number id no channel has (acknowledged, logged).
    pub unknown_channel_changes: usize,
    /// Messages with neither a phone number nor a user id (logged).
    pub unattributable: usize,
    pub conversations_created: usize,
}

/// The statuses a message may be in for `next` to apply: status only moves forward.
fn earlier_statuses(next: DeliveryStatus) -> &'static [DeliveryStatus] {
    use DeliveryStatus::*;
    match next {
        Sent => &[Queued],
        Delivered => &[Queued, Sent],
        Read => &[Queued, Sent, Delivered],
        Failed => &[Queued, Sent, Delivered],
        Received | Queued => &[],
    }
}

/// Work done inside one transaction, published once it commits.
#[derive(Default)]
struct Pending {
    events: Vec<EventPayload>,
    new_queue_entries: Vec<(Option<i64>, i64)>,
    /// Automation queued outbound messages: wake the outbox after commit.
    outbox_queued: bool,
}

/// How often a batch whose transaction lost a race is retried before each
/// delivery is tried on its own.
const BATCH_RETRIES: usize = 3;

impl Domain {
    /// Ingests one delivery in its own transaction.
    pub async fn ingest(&self, delivery: &InboundDelivery) -> Result<IngestReport> {
        let mut reports = self.ingest_batch(&[delivery]).await?;
        Ok(reports.pop().unwrap_or_default())
    }

    /// Ingests several deliveries in one transaction, then publishes what
    /// they did.
    pub async fn ingest_batch(&self, deliveries: &[&InboundDelivery]) -> Result<Vec<IngestReport>> {
        let (reports, pending) = self.write_batch(deliveries).await?;
        self.publish_pending(pending).await;
        Ok(reports)
    }

    /// The batch's transaction, retried when a concurrent writer (another
    /// instance) got a row in first. Nothing is published yet.
    async fn write_batch(
        &self,
        deliveries: &[&InboundDelivery],
    ) -> Result<(Vec<IngestReport>, Pending)> {
        let mut attempt = 0;
        loop {
            match self.try_write_batch(deliveries).await {
                Err(DomainError::Conflict(_)) if attempt < BATCH_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    async fn try_write_batch(
        &self,
        deliveries: &[&InboundDelivery],
    ) -> Result<(Vec<IngestReport>, Pending)> {
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let channels = channels_by_number(&txn, deliveries).await?;
        let mut seen = existing_message_ids(&txn, deliveries).await?;
        let mut pending = Pending::default();
        let reference = Reference::default();
        let mut reports = vec![IngestReport::default(); deliveries.len()];
        let mut items = Vec::new();
        let mut statuses = Vec::new();
        for (i, delivery) in deliveries.iter().enumerate() {
            for change in &delivery.changes {
                let Some(channel) = channels.get(&change.phone_number_id) else {
                    tracing::warn!(phone_number_id = %change.phone_number_id, "delivery for an unknown business number");
                    reports[i].unknown_channel_changes += 1;
                    continue;
                };
                let mut messages: Vec<&InboundMessage> = change.messages.iter().collect();
                // Meta does not guarantee order: store by WhatsApp timestamp.
                messages.sort_by_key(|m| m.timestamp);
                for m in messages {
                    if seen.insert(m.wa_message_id.clone()) {
                        items.push(Item {
                            delivery: i,
                            channel,
                            m,
                        });
                    } else {
                        reports[i].duplicates += 1;
                    }
                }
                statuses.extend(change.statuses.iter().map(|s| (i, s)));
            }
        }
        self.store_messages(&txn, &reference, &items, now, &mut reports, &mut pending)
            .await?;
        for (i, s) in statuses {
            self.apply_status(&txn, s, &mut reports[i], &mut pending)
                .await?;
        }
        self.enqueue_webhooks_in(&txn, &pending.events).await?;
        txn.commit().await?;
        Ok((reports, pending))
    }

    async fn apply_status(
        &self,
        txn: &DatabaseTransaction,
        s: &StatusUpdate,
        report: &mut IngestReport,
        pending: &mut Pending,
    ) -> Result<()> {
        let allowed = earlier_statuses(s.status);
        if allowed.is_empty() {
            report.statuses_ignored += 1;
            return Ok(());
        }
        let mut update = message::Entity::update_many()
            .col_expr(message::Column::Status, Expr::value(s.status))
            .filter(message::Column::WaMessageId.eq(s.wa_message_id.as_str()))
            .filter(message::Column::Direction.eq(Direction::Outbound))
            .filter(message::Column::Status.is_in(allowed.iter().copied()));
        let at = Expr::value(s.timestamp);
        update = match s.status {
            DeliveryStatus::Sent => update.col_expr(message::Column::SentAt, at),
            DeliveryStatus::Delivered => update.col_expr(message::Column::DeliveredAt, at),
            DeliveryStatus::Read => update.col_expr(message::Column::ReadAt, at),
            _ => update
                .col_expr(message::Column::FailedAt, at)
                .col_expr(message::Column::ErrorCode, Expr::value(s.error_code))
                .col_expr(
                    message::Column::ErrorTitle,
                    Expr::value(s.error_title.clone()),
                ),
        };
        if update.exec(txn).await?.rows_affected == 0 {
            report.statuses_ignored += 1;
            return Ok(());
        }
        report.statuses_applied += 1;
        let found = message::Entity::find()
            .filter(message::Column::WaMessageId.eq(s.wa_message_id.as_str()))
            .find_also_related(conversation::Entity)
            .one(txn)
            .await?;
        if let Some((m, Some(c))) = found {
            pending.events.push(EventPayload::MessageAdded {
                scope: Scope::from(&c),
                message_id: m.id,
                direction: Direction::Outbound,
                status: s.status,
            });
        }
        Ok(())
    }

    async fn publish_pending(&self, pending: Pending) {
        if pending.outbox_queued {
            self.outbox.wake.notify_one();
        }
        for event in pending.events {
            self.emit(event);
        }
        let departments: HashSet<Option<i64>> =
            pending.new_queue_entries.iter().map(|(d, _)| *d).collect();
        let mut lengths = HashMap::new();
        for department in departments {
            match self.queue_length(department).await {
                Ok(n) => {
                    lengths.insert(department, n);
                }
                Err(e) => tracing::warn!(error = %e, "queue length unavailable"),
            }
        }
        for (department_id, conversation_id) in pending.new_queue_entries {
            self.emit(EventPayload::QueueChanged {
                department_id,
                conversation_id,
                change: QueueChange::Entered,
                queue_length: lengths.get(&department_id).copied().unwrap_or_default(),
            });
        }
    }
}

async fn channels_by_number(
    txn: &DatabaseTransaction,
    deliveries: &[&InboundDelivery],
) -> Result<HashMap<String, channel::Model>> {
    let numbers: HashSet<&str> = deliveries
        .iter()
        .flat_map(|d| d.changes.iter().map(|c| c.phone_number_id.as_str()))
        .collect();
    Ok(channel::Entity::find()
        .filter(channel::Column::PhoneNumberId.is_in(numbers))
        .filter(channel::Column::IsActive.eq(true))
        .all(txn)
        .await?
        .into_iter()
        .map(|c| (c.phone_number_id.clone(), c))
        .collect())
}

/// WhatsApp ids of this batch already stored: Meta retries and every
/// subscribed app gets its own copy, so duplicates are normal.
async fn existing_message_ids(
    txn: &DatabaseTransaction,
    deliveries: &[&InboundDelivery],
) -> Result<HashSet<String>> {
    let ids: HashSet<&str> = deliveries
        .iter()
        .flat_map(|d| d.changes.iter())
        .flat_map(|c| c.messages.iter().map(|m| m.wa_message_id.as_str()))
        .collect();
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<Option<String>> = message::Entity::find()
        .select_only()
        .column(message::Column::WaMessageId)
        .filter(message::Column::WaMessageId.is_in(ids))
        .into_tuple()
        .all(txn)
        .await?;
    Ok(rows.into_iter().flatten().collect())
}

type Job = (InboundDelivery, oneshot::Sender<Result<IngestReport>>);

/// Most deliveries committed in one transaction.
const MAX_BATCH: usize = 64;

/// Group commit: deliveries that arrive while a batch is being written are
/// written together in the next one.
#[derive(Clone)]
pub struct IngestBatcher {
    jobs: mpsc::Sender<Job>,
}

impl IngestBatcher {
    pub fn start(domain: Domain) -> Self {
        let (jobs, mut rx) = mpsc::channel::<Job>(MAX_BATCH * 16);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                domain.commit_batch(batch).await;
            }
        });
        Self { jobs }
    }

    /// Resolves once the delivery is committed (or has failed).
    pub async fn submit(&self, delivery: InboundDelivery) -> Result<IngestReport> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send((delivery, done))
            .await
            .map_err(|_| DomainError::internal(std::io::Error::other("ingest stopped")))?;
        result.await.map_err(|_| {
            DomainError::internal(std::io::Error::other("ingest dropped a delivery"))
        })?
    }
}

impl Domain {
    async fn commit_batch(&self, batch: Vec<Job>) {
        let deliveries: Vec<&InboundDelivery> = batch.iter().map(|(d, _)| d).collect();
        match self.write_batch(&deliveries).await {
            // Durable: answer first, then publish (the queue lengths it
            // reads are not the callers' business).
            Ok((reports, pending)) => {
                for ((_, done), report) in batch.into_iter().zip(reports) {
                    let _ = done.send(Ok(report));
                }
                self.publish_pending(pending).await;
            }
            // One bad delivery must not fail the others: each on its own.
            Err(e) if batch.len() > 1 => {
                tracing::warn!(error = %e, size = batch.len(), "batch failed; ingesting one by one");
                for (delivery, done) in batch {
                    let _ = done.send(self.ingest(&delivery).await);
                }
            }
            Err(e) => {
                for (_, done) in batch {
                    let _ = done.send(Err(DomainError::internal(std::io::Error::other(
                        e.to_string(),
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_only_moves_forward() {
        assert!(earlier_statuses(DeliveryStatus::Read).contains(&DeliveryStatus::Delivered));
        assert!(!earlier_statuses(DeliveryStatus::Delivered).contains(&DeliveryStatus::Read));
        assert!(!earlier_statuses(DeliveryStatus::Failed).contains(&DeliveryStatus::Read));
        assert!(earlier_statuses(DeliveryStatus::Received).is_empty());
    }
}
