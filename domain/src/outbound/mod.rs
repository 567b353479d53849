//! Outbound messages: agents' replies are validated, checked against the
//! response window and the sending limits, and written to a durable outbox in
//! the caller's transaction ([`send`]); the outbox worker ([`worker`]) hands
//! them to a [`MessageSender`] (the Graph API client lives in the api crate),
//! retries transient failures and surfaces permanent ones to the agent.

pub mod automated;
pub mod content;
pub mod new_customer;
pub mod send;
pub mod throttle;
pub mod worker;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use entity::{ConsentState, contact};
use tokio::sync::Notify;

use crate::billing::Prices;

pub use content::{ContentInput, MediaKind, OutboundContent};
pub use send::MessageForSend;
pub use worker::OutboxRun;

/// Messaging settings; every one has a default in the api's config.
#[derive(Debug, Clone)]
pub struct MessagingConfig {
    /// Meta's customer-service window: free-form messages only within it (24 h).
    pub service_window: Duration,
    /// Messages sent later than this after the customer's last message carry
    /// the window surcharge in the ledger (48 h).
    pub billing_window: Duration,
    /// Free messages per channel per calendar month (UTC).
    pub free_messages_per_month: i64,
    /// Price of a billable message by channel region, in micro-USD.
    pub prices: Prices,
    /// Surcharge beyond the billing window, in micro-USD (0.01 USD).
    pub window_surcharge_micros: i64,
    /// Sends per second per business number (Meta's default is 80).
    pub outbox_rate_per_second: u32,
    /// Messages per minute to a new customer (spec: 5).
    pub new_customer_messages_per_minute: u64,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            service_window: Duration::hours(24),
            billing_window: Duration::hours(48),
            free_messages_per_month: 1000,
            prices: Prices::default(),
            window_surcharge_micros: 10_000,
            outbox_rate_per_second: 80,
            new_customer_messages_per_minute: 5,
        }
    }
}

/// Whether automated senders (auto-replies, surveys, flows) may write to this
/// contact: not after an opt-out, never to an erased contact. Agents answering
/// inside the customer-service window do not ask.
pub fn may_automate(contact: &contact::Model) -> bool {
    contact.consent != ConsentState::OptedOut && contact.erased_at.is_none()
}

/// One message for the Graph API.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub phone_number_id: String,
    pub access_token: String,
    /// The customer's WhatsApp id.
    pub to: String,
    pub content: OutboundContent,
    /// The wamid being replied to (`context.message_id`).
    pub reply_to: Option<String>,
}

/// Meta accepted the message (not yet delivered: statuses come by webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub wa_message_id: String,
}

/// Why a send did not go through, as the client observed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct SendError {
    /// The HTTP status; `None` when no response came (network, timeout).
    pub http_status: Option<u16>,
    /// Meta's `error.code`.
    pub code: Option<i64>,
    pub title: String,
    pub details: Option<String>,
    /// A server-given delay (`Retry-After`).
    pub retry_after: Option<Duration>,
}

/// What the outbox does with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again later, with backoff.
    Transient,
    /// Never retry: the message is marked failed for the agent.
    Permanent,
}

/// Meta codes worth retrying: throughput (130429), pair rate (131056),
/// unknown/temporary errors (131000, 131016 service unavailable, 131057
/// account in maintenance).
pub const TRANSIENT_CODES: [i64; 5] = [130_429, 131_056, 131_000, 131_016, 131_057];

/// Meta codes never retried, whatever the HTTP status.
pub const PERMANENT_CODES: [i64; 10] = [
    131_047, 131_026, 131_050, 368, 100, 131_008, 131_009, 132_000, 132_001, 190,
];

/// Meta's code for a free-form message outside the customer-service window.
pub const OUTSIDE_WINDOW_CODE: i64 = 131_047;

impl SendError {
    pub fn network(reason: impl Into<String>) -> Self {
        Self {
            http_status: None,
            code: None,
            title: reason.into(),
            details: None,
            retry_after: None,
        }
    }

    /// Transient: no response, HTTP 5xx or 429, or a transient Meta code.
    /// Everything else is permanent: 131047 (outside the window), 131026
    /// (undeliverable), 131050 (stopped marketing), 368 (policy), 100 / 131008
    /// / 131009 (bad parameters), 132000 / 132001 (template), 190 (expired
    /// token) and any other 4xx.
    pub fn classify(&self) -> Retry {
        match (self.code, self.http_status) {
            (Some(code), _) if PERMANENT_CODES.contains(&code) => Retry::Permanent,
            (Some(code), _) if TRANSIENT_CODES.contains(&code) => Retry::Transient,
            (_, None) => Retry::Transient,
            (_, Some(s)) if s >= 500 || s == 429 => Retry::Transient,
            (_, Some(_)) => Retry::Permanent,
        }
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(status) = self.http_status {
            s.push_str(&format!("HTTP {status} "));
        }
        if let Some(code) = self.code {
            s.push_str(&format!("(#{code}) "));
        }
        s.push_str(&self.title);
        if let Some(d) = &self.details {
            s.push_str(&format!(": {d}"));
        }
        s
    }
}

/// Sends one message to WhatsApp. Implemented in the api with reqwest; tests
/// point it at a local stand-in.
#[async_trait]
pub trait MessageSender: Send + Sync {
    async fn send(&self, request: &SendRequest) -> Result<SentMessage, SendError>;
}

/// The sender of tools that run no outbox (migrate, demo): every attempt is a
/// transient failure, so nothing queued is lost.
#[derive(Debug, Default)]
pub struct NoSender;

#[async_trait]
impl MessageSender for NoSender {
    async fn send(&self, _request: &SendRequest) -> Result<SentMessage, SendError> {
        Err(SendError::network("no WhatsApp sender is configured"))
    }
}

/// The outbox's in-memory companions: the throttle buckets and the wake-up
/// signal `sendMessage` gives the worker.
#[derive(Debug, Default)]
pub struct OutboxRuntime {
    pub throttle: throttle::Throttle,
    pub wake: Notify,
}

impl crate::Domain {
    /// The sender the outbox worker uses.
    pub fn with_sender(mut self, sender: Arc<dyn MessageSender>) -> Self {
        self.sender = sender;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: Option<u16>, code: Option<i64>) -> SendError {
        SendError {
            http_status: status,
            code,
            title: "x".into(),
            details: None,
            retry_after: None,
        }
    }

    #[test]
    fn transient_and_permanent_failures_follow_meta() {
        for code in TRANSIENT_CODES {
            assert_eq!(err(Some(400), Some(code)).classify(), Retry::Transient);
        }
        for code in PERMANENT_CODES {
            assert_eq!(
                err(Some(400), Some(code)).classify(),
                Retry::Permanent,
                "{code}"
            );
            assert_eq!(
                err(Some(500), Some(code)).classify(),
                Retry::Permanent,
                "{code}"
            );
        }
        assert_eq!(err(None, None).classify(), Retry::Transient);
        assert_eq!(err(Some(503), None).classify(), Retry::Transient);
        assert_eq!(err(Some(429), None).classify(), Retry::Transient);
        assert_eq!(err(Some(404), None).classify(), Retry::Permanent);
    }
}
