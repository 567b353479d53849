//! Typed domain events. Services publish them after their transaction commits;
//! the api fans them out to subscribers (in process or through Redis).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{ConversationStatus, DeliveryStatus, Direction, Presence, Priority, conversation};
use serde::{Deserialize, Serialize};

/// Bumped when the wire shape changes incompatibly.
pub const EVENT_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub v: u16,
    /// The instance that published it; filled by the bus.
    #[serde(default)]
    pub origin: String,
    pub at: DateTime<Utc>,
    pub payload: EventPayload,
    /// The conversation as the publishing transaction left it, when the
    /// publisher has it: subscribers in this process then need not read it.
    /// Never sent to other instances; they read it.
    #[serde(skip)]
    pub conversation: Option<Arc<conversation::Model>>,
}

impl Event {
    pub fn new(at: DateTime<Utc>, payload: EventPayload) -> Self {
        Self {
            v: EVENT_VERSION,
            origin: String::new(),
            at,
            payload,
            conversation: None,
        }
    }
}

/// Where a conversation stands, carried by every conversation event so that
/// subscribers can filter by permission without reading the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub conversation_id: i64,
    pub assignee_id: Option<i64>,
    pub department_id: Option<i64>,
}

impl From<&entity::conversation::Model> for Scope {
    fn from(c: &entity::conversation::Model) -> Self {
        Self {
            conversation_id: c.id,
            assignee_id: c.assignee_id,
            department_id: c.department_id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueChange {
    Entered,
    Assigned,
    Left,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventPayload {
    ConversationUpdated {
        scope: Scope,
        status: ConversationStatus,
        priority: Priority,
        /// What changed, e.g. "created", "assigned", "tags", "status".
        change: String,
    },
    MessageAdded {
        scope: Scope,
        message_id: i64,
        direction: Direction,
        status: DeliveryStatus,
    },
    NoteAdded {
        scope: Scope,
        note_id: i64,
    },
    QueueChanged {
        department_id: Option<i64>,
        conversation_id: i64,
        change: QueueChange,
        queue_length: i64,
    },
    LockChanged {
        scope: Scope,
        holder_id: Option<i64>,
        expires_at: Option<DateTime<Utc>>,
    },
    SlaAlert {
        scope: Scope,
        kind: String,
        level: String,
        /// The clock's cycle: 0, then one more per reopen (resolution).
        #[serde(default)]
        cycle: i32,
    },
    AgentPresenceChanged {
        user_id: i64,
        presence: Presence,
        department_ids: Vec<i64>,
    },
}

impl EventPayload {
    /// The conversation an event is about, when it is about one.
    pub fn scope(&self) -> Option<&Scope> {
        match self {
            Self::ConversationUpdated { scope, .. }
            | Self::MessageAdded { scope, .. }
            | Self::NoteAdded { scope, .. }
            | Self::LockChanged { scope, .. }
            | Self::SlaAlert { scope, .. } => Some(scope),
            Self::QueueChanged { .. } | Self::AgentPresenceChanged { .. } => None,
        }
    }
}

/// Publishing never blocks and never fails the caller: the data is already
/// committed, and a lost live event is repaired by the next query.
pub trait EventPublisher: Send + Sync {
    fn publish(&self, event: Event);
}

/// Drops events; for tools that run without subscribers (migrate, demo).
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventPublisher for NoEvents {
    fn publish(&self, _event: Event) {}
}

impl crate::Domain {
    pub fn emit(&self, payload: EventPayload) {
        self.events.publish(Event::new(self.clock.now(), payload));
    }

    /// [`Self::emit`] with the committed row the event is about.
    pub(crate) fn emit_about(&self, payload: EventPayload, conversation: &conversation::Model) {
        let mut event = Event::new(self.clock.now(), payload);
        event.conversation = Some(Arc::new(conversation.clone()));
        self.events.publish(event);
    }
}
