//! Event fan-out. One trait in `domain` ([`EventPublisher`]), two backends
//! here, chosen at start-up by configuration:
//!
//! - [`InProcessBus`] (default): a bounded broadcast channel in this process.
//! - [`RedisBus`] (when `REDIS_URL` is set): the same local broadcast, plus
//!   Redis pub/sub so that instances see each other's events.
//!
//! Either way GraphQL subscriptions read the local [`InProcessBus`] and filter
//! it per subscriber. Every event reaching subscribers is wrapped in a
//! [`LiveEvent`], which carries a small per-event row cache: N subscribers of
//! one event cost one database read, not N.

mod in_process;
mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::{Event, EventPayload, EventPublisher};
use entity::{conversation, message, note, user};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use serde::Serialize;
use tokio::sync::{OnceCell, watch};

pub use self::in_process::{InProcessBus, SUBSCRIBER_BUFFER};
pub use self::redis::{PUBLISH_QUEUE, RedisBus};

/// The configured backend (svix-style: an enum, one implementation each).
#[derive(Clone)]
pub enum EventBus {
    InProcess(InProcessBus),
    Redis(RedisBus),
}

impl EventBus {
    /// Redis when a URL is given (the connection is made in the background:
    /// start-up does not wait for Redis, and does not fail when it is down),
    /// the in-process bus otherwise. Fails only on a malformed URL.
    pub fn start(
        instance_id: &str,
        redis_url: Option<&str>,
        redis_channel: &str,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let local = InProcessBus::new(instance_id);
        Ok(match redis_url {
            None => Self::InProcess(local),
            Some(url) => Self::Redis(RedisBus::start(local, url, redis_channel, stop)?),
        })
    }

    /// The local fan-out every subscription of this process reads.
    pub fn local(&self) -> &InProcessBus {
        match self {
            Self::InProcess(bus) => bus,
            Self::Redis(bus) => bus.local(),
        }
    }

    pub fn metrics(&self) -> &Arc<BusMetrics> {
        self.local().metrics()
    }

    /// `None` when Redis is not configured; otherwise whether it answers a
    /// PING within a short timeout.
    pub async fn ping_redis(&self) -> Option<Result<(), String>> {
        match self {
            Self::InProcess(_) => None,
            Self::Redis(bus) => Some(bus.ping().await),
        }
    }
}

impl EventPublisher for EventBus {
    fn publish(&self, event: Event) {
        match self {
            Self::InProcess(bus) => bus.publish(event),
            Self::Redis(bus) => bus.publish(event),
        }
    }
}

/// Counters for `/metrics` (Prometheus counters, except the one gauge).
/// Plain atomics: reading them never blocks publishing.
#[derive(Debug, Default)]
pub struct BusMetrics {
    /// Events published by this instance.
    pub published: AtomicU64,
    /// Events handed to this instance's subscribers (local and remote).
    pub fanned_out: AtomicU64,
    /// Events sent to a GraphQL subscriber after permission filtering
    /// (one per subscriber per event).
    pub delivered: AtomicU64,
    /// Events subscribers missed because they fell too far behind.
    pub lagged: AtomicU64,
    /// Events written to Redis.
    pub redis_published: AtomicU64,
    /// Events that could not be written to Redis (down, timeout, error).
    pub redis_publish_failures: AtomicU64,
    /// Events dropped because the queue to the Redis publisher was full.
    pub redis_publish_dropped: AtomicU64,
    /// Events received from Redis that came from another instance.
    pub redis_received: AtomicU64,
    /// Our own events coming back from Redis, dropped (already delivered locally).
    pub redis_echoes_dropped: AtomicU64,
    /// Messages on the channel that are not an event this version understands.
    pub redis_decode_failures: AtomicU64,
    /// Times the subscriber connection was (re)established after the first.
    pub redis_reconnects: AtomicU64,
    /// Gauge: 1 while the subscriber connection is up.
    pub redis_subscribed: AtomicU64,
}

/// A copy of [`BusMetrics`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BusMetricsSnapshot {
    pub published: u64,
    pub fanned_out: u64,
    pub delivered: u64,
    pub lagged: u64,
    pub redis_published: u64,
    pub redis_publish_failures: u64,
    pub redis_publish_dropped: u64,
    pub redis_received: u64,
    pub redis_echoes_dropped: u64,
    pub redis_decode_failures: u64,
    pub redis_reconnects: u64,
    pub redis_subscribed: u64,
}

impl BusMetrics {
    pub fn snapshot(&self) -> BusMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BusMetricsSnapshot {
            published: get(&self.published),
            fanned_out: get(&self.fanned_out),
            delivered: get(&self.delivered),
            lagged: get(&self.lagged),
            redis_published: get(&self.redis_published),
            redis_publish_failures: get(&self.redis_publish_failures),
            redis_publish_dropped: get(&self.redis_publish_dropped),
            redis_received: get(&self.redis_received),
            redis_echoes_dropped: get(&self.redis_echoes_dropped),
            redis_decode_failures: get(&self.redis_decode_failures),
            redis_reconnects: get(&self.redis_reconnects),
            redis_subscribed: get(&self.redis_subscribed),
        }
    }
}

/// An event as this process's subscribers receive it, shared by all of them
/// (`Arc`). Rows an event refers to are read at most once per event, by the
/// first subscriber that needs them, and reused by the others: the fan-out
/// costs one read per event, not one per subscriber. The snapshot is also
/// consistent: every subscriber sees the same row.
#[derive(Debug)]
pub struct LiveEvent {
    pub event: Event,
    conversation: OnceCell<Option<conversation::Model>>,
    message: OnceCell<Option<message::Model>>,
    note: OnceCell<Option<note::Model>>,
    staff: OnceCell<Option<user::Model>>,
}

impl LiveEvent {
    pub fn new(event: Event) -> Self {
        let conversation = match &event.conversation {
            Some(c) => OnceCell::new_with(Some(Some(c.as_ref().clone()))),
            None => OnceCell::new(),
        };
        Self {
            event,
            conversation,
            message: OnceCell::new(),
            note: OnceCell::new(),
            staff: OnceCell::new(),
        }
    }

    pub fn payload(&self) -> &EventPayload {
        &self.event.payload
    }

    /// The conversation the event is about: as its publisher's transaction
    /// left it when the event carries it, else as it is now (None when it is
    /// not about one, or the conversation is gone).
    pub async fn conversation(
        &self,
        db: &DatabaseConnection,
    ) -> Result<Option<&conversation::Model>, DbErr> {
        let Some(id) = self.payload().scope().map(|s| s.conversation_id) else {
            return Ok(None);
        };
        once(&self.conversation, || {
            conversation::Entity::find_by_id(id).one(db)
        })
        .await
    }

    /// The message of a `MessageAdded` event.
    pub async fn message(&self, db: &DatabaseConnection) -> Result<Option<&message::Model>, DbErr> {
        let EventPayload::MessageAdded { message_id, .. } = self.payload() else {
            return Ok(None);
        };
        let id = *message_id;
        once(&self.message, || message::Entity::find_by_id(id).one(db)).await
    }

    /// The note of a `NoteAdded` event.
    pub async fn note(&self, db: &DatabaseConnection) -> Result<Option<&note::Model>, DbErr> {
        let EventPayload::NoteAdded { note_id, .. } = self.payload() else {
            return Ok(None);
        };
        let id = *note_id;
        once(&self.note, || note::Entity::find_by_id(id).one(db)).await
    }

    /// The staff member a `LockChanged` (the holder; None when released) or
    /// `AgentPresenceChanged` event is about.
    pub async fn staff(&self, db: &DatabaseConnection) -> Result<Option<&user::Model>, DbErr> {
        let id = match self.payload() {
            EventPayload::LockChanged {
                holder_id: Some(id),
                ..
            }
            | EventPayload::AgentPresenceChanged { user_id: id, .. } => *id,
            _ => return Ok(None),
        };
        once(&self.staff, || user::Entity::find_by_id(id).one(db)).await
    }
}

/// Reads a row once; a failed read is not cached (the next subscriber retries).
async fn once<T, F, Fut>(cell: &OnceCell<Option<T>>, load: F) -> Result<Option<&T>, DbErr>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<T>, DbErr>>,
{
    cell.get_or_try_init(load).await.map(Option::as_ref)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use domain::events::Scope;
    use entity::{ConversationStatus, Priority};

    use super::*;

    fn conversation(id: i64, assignee_id: Option<i64>) -> conversation::Model {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
        conversation::Model {
            id,
            channel_id: 1,
            contact_id: 1,
            status: ConversationStatus::Open,
            priority: Priority::Normal,
            topic: None,
            language: None,
            department_id: None,
            assignee_id,
            lock_holder_id: None,
            lock_acquired_at: None,
            lock_last_activity_at: None,
            lock_expires_at: None,
            sla_policy_id: None,
            first_response_due_at: None,
            resolution_due_at: None,
            sla_paused_at: None,
            important_wait_due_at: None,
            sla_next_at: None,
            escalation_level: 0,
            transfer_count: 0,
            reopen_count: 0,
            queued_at: Some(at),
            assigned_at: Some(at),
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            last_message_at: Some(at),
            last_inbound_at: Some(at),
            csat: None,
            nps: None,
            converted_at: None,
            conversion_amount_micros: None,
            archived_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn assigned(c: &conversation::Model) -> Event {
        Event::new(
            c.updated_at,
            EventPayload::ConversationUpdated {
                scope: Scope::from(c),
                status: c.status,
                priority: c.priority,
                change: "assigned".into(),
            },
        )
    }

    #[tokio::test]
    async fn a_carried_conversation_is_served_without_reading_it() {
        let c = conversation(7, Some(3));
        let mut event = assigned(&c);
        event.conversation = Some(Arc::new(c.clone()));
        // A database without tables: any read fails.
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let live = LiveEvent::new(event);
        assert_eq!(live.conversation(&db).await.unwrap(), Some(&c));

        let without = LiveEvent::new(assigned(&c));
        assert!(without.conversation(&db).await.is_err());
    }

    #[test]
    fn the_carried_conversation_stays_in_this_process() {
        let c = conversation(7, Some(3));
        let mut event = assigned(&c);
        event.conversation = Some(Arc::new(c));
        let wire = serde_json::to_string(&event).unwrap();
        assert!(!wire.contains("lock_holder_id") && !wire.contains("lockHolderId"));
        let back: Event = serde_json::from_str(&wire).unwrap();
        assert!(back.conversation.is_none());
        assert_eq!(back.payload, event.payload);
    }
}
