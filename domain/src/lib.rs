//! The business of the helpdesk: rules and services, free of HTTP and GraphQL.
//! Every service is a method on [`Domain`] taking the acting [`Actor`].

pub mod actor;
pub mod assignment;
pub mod audit;
pub mod auth;
pub mod autoreply;
pub mod billing;
pub mod canned_responses;
pub mod channels;
pub mod clock;
pub mod consent;
pub mod contact_io;
pub mod contacts;
pub mod conversations;
pub mod departments;
pub mod error;
pub mod events;
pub mod ingest;
pub mod keywords;
pub mod language;
pub mod lead_flow;
pub mod lock;
pub mod metrics;
pub mod notes;
pub mod outbound;
pub mod pagination;
pub mod permissions;
pub mod presence;
pub mod reference;
pub mod retention;
pub mod routing;
pub mod sla;
mod sql;
pub mod staff;
pub mod survey;
pub mod tags;
pub mod webhooks_out;
pub mod window;

use std::sync::Arc;

use chrono::Duration;
use sea_orm::DatabaseConnection;

pub use actor::Actor;
pub use auth::AuthConfig;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{DomainError, Result};
pub use events::{Event, EventPayload, EventPublisher};
pub use outbound::{MessageSender, MessagingConfig};
pub use permissions::Capability;

/// Settings the rules depend on; every one has a default in the api's config.
#[derive(Debug, Clone)]
pub struct DomainConfig {
    pub auth: AuthConfig,
    /// How long `openConversation` holds the lock (5–15 min, default 7).
    pub lock_ttl: Duration,
    /// Idle time after which a lock goes back to the pool (default 3 min).
    pub lock_idle: Duration,
    /// Windows, billing, sending limits.
    pub messaging: MessagingConfig,
    /// CSAT / NPS surveys on resolution.
    pub surveys: survey::SurveyConfig,
    /// Auto-close of bot-answered conversations.
    pub automation: autoreply::auto_close::AutomationConfig,
}

/// The services, sharing one database, clock and event publisher.
#[derive(Clone)]
pub struct Domain {
    pub db: DatabaseConnection,
    /// Reads outside transactions that may lag the latest commit by nothing
    /// more than the commit itself: the same pool as `db` unless a separate
    /// one is given ([`Domain::with_read_pool`]).
    pub read: DatabaseConnection,
    pub clock: Arc<dyn Clock>,
    pub events: Arc<dyn EventPublisher>,
    pub config: Arc<DomainConfig>,
    /// Sends outbox messages to WhatsApp (see [`Domain::with_sender`]).
    pub sender: Arc<dyn MessageSender>,
    /// The outbox's throttle buckets and wake-up signal.
    pub outbox: Arc<outbound::OutboxRuntime>,
    /// Outbound webhooks' sender, settings and wake-up signal (see
    /// [`Domain::with_webhooks`]).
    pub webhooks: Arc<webhooks_out::WebhookRuntime>,
}

impl Domain {
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        events: Arc<dyn EventPublisher>,
        config: DomainConfig,
    ) -> Self {
        Self {
            read: db.clone(),
            db,
            clock,
            events,
            config: Arc::new(config),
            sender: Arc::new(outbound::NoSender),
            outbox: Arc::new(outbound::OutboxRuntime::default()),
            webhooks: Arc::new(webhooks_out::WebhookRuntime::default()),
        }
    }

    /// A separate pool for reads outside transactions (see `read`).
    pub fn with_read_pool(mut self, read: DatabaseConnection) -> Self {
        self.read = read;
        self
    }
}
