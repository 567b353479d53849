//! Outbound webhooks: CRM and other systems subscribe to chosen event types
//! at an HTTPS URL; every matching event becomes one durable delivery row per
//! subscription, which the delivery worker POSTs, signed, with retries.
//!
//! **Enqueueing: in the change's transaction.** Every service that makes a
//! subscribable change writes its delivery rows in the same transaction as
//! the change: [`Domain::enqueue_webhooks_in`] for the domain events it is
//! about to publish (conversations, messages, SLA breaches, survey answers),
//! [`Domain::enqueue_webhook`] for a payload of its own (contact updates,
//! imports, erasure). A change and its deliveries commit or roll back
//! together, so a crash between commit and publish loses nothing; the
//! worker may be woken before the commit, and then finds the rows on its
//! next poll (a second at most).
//! The event types some active subscription wants are cached for
//! [`SUBSCRIBED_TTL`], so an event nobody subscribed to costs no query.
//!
//! **Wire format.** `POST url` with a JSON body `{id, type, timestamp,
//! occurredAt, attempt, data}` and headers `X-Helpdesk-Id` (the event id,
//! the same on every retry: receivers de-duplicate on it),
//! `X-Helpdesk-Timestamp` (Unix seconds of this attempt: receivers refuse old
//! ones) and `X-Helpdesk-Signature: sha256=<hex HMAC-SHA256 of the body with
//! the subscription's secret>`. The id and timestamp are inside the signed
//! body too, so neither can be swapped.
//!
//! **Delivery: at least once, in order per conversation.** A delivery is
//! claimed with one conditional UPDATE that pushes its `next_attempt_at`
//! [`CLAIM_FOR`] ahead (`WHERE id = ? AND status = 'pending' AND
//! next_attempt_at <= now`); only the instance whose UPDATE changed the row
//! sends it. Only the oldest pending delivery of a (subscription, ordering
//! key) is eligible, so a retried event holds back the later events of the
//! same conversation. Any answer but 2xx, or none within the HTTP timeout, is
//! a failure: retried with exponential backoff (10 s doubling, at most 1 h,
//! with jitter) for [`WebhookConfig::retry_for`] (a day), then given up.
//! After [`WebhookConfig::disable_after_failures`] failed attempts in a row,
//! or when a delivery is given up, the subscription is disabled with the
//! reason; its pending deliveries wait until an admin enables it again.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use entity::{DeliveryState, conversation, message, webhook_delivery, webhook_subscription};
use hmac::{KeyInit, Mac};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait, Set, TransactionTrait,
};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::audit::{self, Change};
use crate::events::EventPayload;
use crate::pagination::{Page, PageRequest, id_cursor};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// How long a claim lasts; the api's HTTP client times out well before.
pub const CLAIM_FOR: Duration = Duration::seconds(30);
const BACKOFF_BASE_SECS: i64 = 10;
const BACKOFF_MAX_SECS: i64 = 3600;
const BATCH: u64 = 200;
const CONCURRENCY: usize = 8;
const MAX_ROUNDS: usize = 50;
/// Subscriptions' URL length limit.
const MAX_URL_LEN: usize = 2000;
pub const SIGNATURE_HEADER: &str = "X-Helpdesk-Signature";
pub const ID_HEADER: &str = "X-Helpdesk-Id";
pub const TIMESTAMP_HEADER: &str = "X-Helpdesk-Timestamp";
pub const EVENT_HEADER: &str = "X-Helpdesk-Event";

/// The event types a subscription can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEventType {
    ConversationCreated,
    ConversationAssigned,
    ConversationResolved,
    MessageInbound,
    MessageOutbound,
    SlaBreached,
    SurveyAnswered,
    ContactUpdated,
}

impl WebhookEventType {
    pub const ALL: [Self; 8] = [
        Self::ConversationCreated,
        Self::ConversationAssigned,
        Self::ConversationResolved,
        Self::MessageInbound,
        Self::MessageOutbound,
        Self::SlaBreached,
        Self::SurveyAnswered,
        Self::ContactUpdated,
    ];

    /// The `type` field of the body, as stored in `event_types`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConversationCreated => "conversation.created",
            Self::ConversationAssigned => "conversation.assigned",
            Self::ConversationResolved => "conversation.resolved",
            Self::MessageInbound => "message.inbound",
            Self::MessageOutbound => "message.outbound",
            Self::SlaBreached => "sla.breached",
            Self::SurveyAnswered => "survey.answered",
            Self::ContactUpdated => "contact.updated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Settings; every one has a default in the api's config.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Accept `http://` URLs to loopback hosts (tests, local receivers).
    pub allow_http: bool,
    /// How long a delivery is retried before it is given up.
    pub retry_for: Duration,
    /// Failed attempts in a row after which a subscription is disabled.
    pub disable_after_failures: i32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_http: false,
            retry_for: Duration::hours(24),
            disable_after_failures: 20,
        }
    }
}

/// One signed POST, ready to send.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Sends a webhook; implemented in the api with reqwest. `Ok` carries the
/// HTTP status (any), `Err` a reason when no answer came.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn post(&self, request: &WebhookRequest) -> std::result::Result<u16, String>;
}

/// For tools that run no delivery worker: every attempt fails transiently.
#[derive(Debug, Default)]
pub struct NoWebhookSender;

#[async_trait]
impl WebhookSender for NoWebhookSender {
    async fn post(&self, _request: &WebhookRequest) -> std::result::Result<u16, String> {
        Err("no webhook sender is configured".into())
    }
}

/// The sender, settings and wake-up signal of the delivery worker.
pub struct WebhookRuntime {
    pub sender: Arc<dyn WebhookSender>,
    pub config: WebhookConfig,
    pub wake: Notify,
    /// The event types some active subscription wants, read at most once per
    /// [`SUBSCRIBED_TTL`]: most events have no subscriber, and looking that
    /// up per event would cost the ingest path a query each. A subscription
    /// created on another instance is seen within the TTL; on this one at once.
    subscribed: std::sync::Mutex<Option<(std::time::Instant, Vec<WebhookEventType>)>>,
}

/// How long the cached list of subscribed event types is trusted.
pub const SUBSCRIBED_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl WebhookRuntime {
    pub fn new(sender: Arc<dyn WebhookSender>, config: WebhookConfig) -> Self {
        Self {
            sender,
            config,
            wake: Notify::new(),
            subscribed: Default::default(),
        }
    }

    fn forget_subscriptions(&self) {
        *self.subscribed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Default for WebhookRuntime {
    fn default() -> Self {
        Self::new(Arc::new(NoWebhookSender), WebhookConfig::default())
    }
}

#[derive(Debug, Clone)]
pub struct WebhookSubscriptionForCreate {
    pub name: String,
    pub url: String,
    pub event_types: Vec<WebhookEventType>,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookSubscriptionForUpdate {
    pub name: Option<String>,
    pub url: Option<String>,
    pub event_types: Option<Vec<WebhookEventType>>,
    /// `true` re-enables a disabled subscription (and clears its failures).
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookDeliveryFilter {
    pub subscription_id: Option<i64>,
    pub status: Option<DeliveryState>,
}

/// What one run of the delivery worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WebhookRun {
    pub delivered: usize,
    pub retried: usize,
    /// Given up after the retry period.
    pub failed: usize,
    /// Subscriptions disabled in this run.
    pub disabled: usize,
}

impl std::ops::AddAssign for WebhookRun {
    fn add_assign(&mut self, o: Self) {
        self.delivered += o.delivered;
        self.retried += o.retried;
        self.failed += o.failed;
        self.disabled += o.disabled;
    }
}

/// `https://host…`, or `http://` to a loopback host when allowed.
pub fn validate_url(url: &str, allow_http: bool) -> Result<String> {
    let url = url.trim();
    let bad = |m: &str| Err(DomainError::invalid("url", m));
    if url.len() > MAX_URL_LEN || url.chars().any(char::is_whitespace) {
        return bad("must be a URL of at most 2000 characters without spaces");
    }
    let (rest, https) = if let Some(rest) = url.strip_prefix("https://") {
        (rest, true)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (rest, false)
    } else {
        return bad("must start with https://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return bad("must name a host (without credentials)");
    }
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| format!("{h}]"))
    } else {
        authority.split(':').next().map(str::to_string)
    }
    .unwrap_or_default();
    if !https {
        let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
        if !(allow_http && loopback) {
            return bad("must start with https://");
        }
    }
    Ok(url.to_string())
}

fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::invalid("name", "1 to 100 characters"));
    }
    Ok(name.to_string())
}

fn validate_types(types: &[WebhookEventType]) -> Result<Value> {
    if types.is_empty() {
        return Err(DomainError::invalid(
            "eventTypes",
            "choose at least one event type",
        ));
    }
    let mut names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    Ok(json!(names))
}

/// The event types a subscription listens to.
pub fn event_types(sub: &webhook_subscription::Model) -> Vec<WebhookEventType> {
    sub.event_types
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(WebhookEventType::parse))
                .collect()
        })
        .unwrap_or_default()
}

/// Hex HMAC-SHA256 of `body` with `secret`.
pub fn sign(secret: &str, body: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The ordering key of everything about one conversation.
pub fn conversation_key(conversation_id: i64) -> String {
    format!("conversation:{conversation_id}")
}

/// Exponential backoff with equal jitter.
pub fn backoff(attempt: i32) -> Duration {
    let n = attempt.clamp(1, 30) as u32;
    let secs = std::cmp::min(
        BACKOFF_BASE_SECS.saturating_mul(1i64 << std::cmp::min(n - 1, 20)),
        BACKOFF_MAX_SECS,
    );
    let ms = secs * 1000;
    Duration::milliseconds(ms / 2 + rand::rng().random_range(0..=ms / 2))
}

fn truncate(s: &str) -> String {
    s.chars().take(250).collect()
}

enum Outcome {
    Skipped,
    Delivered,
    Retried { disabled: bool },
    Failed { disabled: bool },
}

impl Domain {
    /// The sender and settings of outbound webhooks.
    pub fn with_webhooks(mut self, sender: Arc<dyn WebhookSender>, config: WebhookConfig) -> Self {
        self.webhooks = Arc::new(WebhookRuntime::new(sender, config));
        self
    }

    // ------------------------------------------------------------ subscriptions

    pub async fn webhook_subscriptions(
        &self,
        actor: &Actor,
    ) -> Result<Vec<webhook_subscription::Model>> {
        actor.require(Capability::Configure)?;
        Ok(webhook_subscription::Entity::find()
            .order_by_asc(webhook_subscription::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn webhook_subscription(
        &self,
        actor: &Actor,
        id: i64,
    ) -> Result<webhook_subscription::Model> {
        actor.require(Capability::Configure)?;
        webhook_subscription::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("webhook subscription", id))
    }

    /// Returns the subscription and its signing secret (shown only here).
    pub async fn create_webhook_subscription(
        &self,
        actor: &Actor,
        input: WebhookSubscriptionForCreate,
    ) -> Result<(webhook_subscription::Model, String)> {
        actor.require(Capability::Configure)?;
        let name = validate_name(&input.name)?;
        let url = validate_url(&input.url, self.webhooks.config.allow_http)?;
        let types = validate_types(&input.event_types)?;
        let secret = format!("whsec_{}", crate::auth::generate_secret(24));
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let created = webhook_subscription::ActiveModel {
            name: Set(name),
            url: Set(url),
            secret: Set(secret.clone()),
            event_types: Set(types),
            is_active: Set(true),
            disabled_reason: Set(None),
            consecutive_failures: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new(
                "webhook_subscription.create",
                "webhook_subscription",
                created.id,
            )
            .after(&created),
        )
        .await?;
        txn.commit().await?;
        self.webhooks.forget_subscriptions();
        Ok((created, secret))
    }

    pub async fn update_webhook_subscription(
        &self,
        actor: &Actor,
        id: i64,
        input: WebhookSubscriptionForUpdate,
    ) -> Result<webhook_subscription::Model> {
        let before = self.webhook_subscription(actor, id).await?;
        let now = self.clock.now();
        let mut row: webhook_subscription::ActiveModel = before.clone().into();
        if let Some(name) = &input.name {
            row.name = Set(validate_name(name)?);
        }
        if let Some(url) = &input.url {
            row.url = Set(validate_url(url, self.webhooks.config.allow_http)?);
        }
        if let Some(types) = &input.event_types {
            row.event_types = Set(validate_types(types)?);
        }
        match input.is_active {
            Some(true) => {
                row.is_active = Set(true);
                row.disabled_reason = Set(None);
                row.consecutive_failures = Set(0);
            }
            Some(false) => {
                row.is_active = Set(false);
                row.disabled_reason = Set(Some("disabled by an admin".into()));
            }
            None => {}
        }
        row.updated_at = Set(now);
        let txn = self.db.begin().await?;
        let after = row.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("webhook_subscription.update", "webhook_subscription", id)
                .before(&before)
                .after(&after),
        )
        .await?;
        txn.commit().await?;
        self.webhooks.forget_subscriptions();
        if after.is_active {
            self.webhooks.wake.notify_one();
        }
        Ok(after)
    }

    /// Deletes the subscription and its delivery log.
    pub async fn delete_webhook_subscription(&self, actor: &Actor, id: i64) -> Result<()> {
        let before = self.webhook_subscription(actor, id).await?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::SubscriptionId.eq(id))
            .exec(&txn)
            .await?;
        webhook_subscription::Entity::delete_by_id(id)
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("webhook_subscription.delete", "webhook_subscription", id).before(&before),
        )
        .await?;
        txn.commit().await?;
        self.webhooks.forget_subscriptions();
        Ok(())
    }

    /// The delivery log, newest first.
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        filter: WebhookDeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<webhook_delivery::Model>> {
        actor.require(Capability::Configure)?;
        page.validate()?;
        let mut q = webhook_delivery::Entity::find();
        if let Some(s) = filter.subscription_id {
            q = q.filter(webhook_delivery::Column::SubscriptionId.eq(s));
        }
        if let Some(s) = filter.status {
            q = q.filter(webhook_delivery::Column::Status.eq(s));
        }
        if let Some(after) = page.after_id()? {
            q = q.filter(webhook_delivery::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(webhook_delivery::Column::Id)
            .limit(page.limit() + 1)
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(rows, &page, |d| id_cursor(d.id)))
    }

    /// Sends a delivery again (a given-up one, or one delivered that the
    /// receiver lost): back to pending, due now.
    pub async fn redeliver_webhook(
        &self,
        actor: &Actor,
        delivery_id: i64,
    ) -> Result<webhook_delivery::Model> {
        actor.require(Capability::Configure)?;
        let before = webhook_delivery::Entity::find_by_id(delivery_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("webhook delivery", delivery_id))?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let mut row: webhook_delivery::ActiveModel = before.clone().into();
        row.status = Set(DeliveryState::Pending);
        row.next_attempt_at = Set(now);
        // A fresh retry period starts now.
        row.created_at = Set(now);
        let after = row.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new(
                "webhook_delivery.redeliver",
                "webhook_delivery",
                delivery_id,
            )
            .before(&json!({"status": before.status, "attempts": before.attempts}))
            .after(&json!({"status": after.status})),
        )
        .await?;
        txn.commit().await?;
        self.webhooks.wake.notify_one();
        Ok(after)
    }

    /// Pending deliveries (the backlog), for `/metrics`.
    pub async fn webhook_backlog(&self) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        Ok(webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryState::Pending))
            .count(&self.db)
            .await?)
    }

    // --------------------------------------------------------------- enqueueing

    /// Writes one delivery per active subscription to `kind`, in the caller's
    /// transaction. Returns how many were written.
    pub async fn enqueue_webhook(
        &self,
        db: &impl ConnectionTrait,
        kind: WebhookEventType,
        ordering_key: Option<String>,
        data: Value,
    ) -> Result<usize> {
        if !self.webhook_subscribed(db, kind).await? {
            return Ok(0);
        }
        let subs: Vec<webhook_subscription::Model> = webhook_subscription::Entity::find()
            .filter(webhook_subscription::Column::IsActive.eq(true))
            .order_by_asc(webhook_subscription::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .filter(|s| event_types(s).contains(&kind))
            .collect();
        if subs.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let event_id = uuid::Uuid::now_v7().to_string();
        let payload = json!({ "occurredAt": now.to_rfc3339(), "data": data });
        let rows: Vec<webhook_delivery::ActiveModel> = subs
            .iter()
            .map(|s| webhook_delivery::ActiveModel {
                subscription_id: Set(s.id),
                event_id: Set(event_id.clone()),
                event_type: Set(kind.as_str().to_string()),
                ordering_key: Set(ordering_key.clone()),
                payload: Set(payload.clone()),
                status: Set(DeliveryState::Pending),
                attempts: Set(0),
                next_attempt_at: Set(now),
                created_at: Set(now),
                ..Default::default()
            })
            .collect();
        let n = rows.len();
        webhook_delivery::Entity::insert_many(rows).exec(db).await?;
        self.webhooks.wake.notify_one();
        Ok(n)
    }

    /// Writes the deliveries of the domain events a change is about to
    /// publish, in the change's transaction `db` (which also supplies their
    /// data as the change left it), in the events' order. Events that no
    /// subscription type matches cost nothing beyond the mapping.
    pub async fn enqueue_webhooks_in(
        &self,
        db: &impl ConnectionTrait,
        events: &[EventPayload],
    ) -> Result<usize> {
        let mut written = 0;
        for payload in events {
            let Some((kind, conversation_id)) = classify(payload) else {
                continue;
            };
            if !self.webhook_subscribed(db, kind).await? {
                continue;
            }
            let Some(data) = event_data(db, payload, conversation_id).await? else {
                continue;
            };
            written += self
                .enqueue_webhook(db, kind, Some(conversation_key(conversation_id)), data)
                .await?;
        }
        Ok(written)
    }

    /// Whether some active subscription wants `kind` (cached, see
    /// [`WebhookRuntime`]; read through `db`, the caller's transaction).
    async fn webhook_subscribed(
        &self,
        db: &impl ConnectionTrait,
        kind: WebhookEventType,
    ) -> Result<bool> {
        let fresh = |cache: &Option<(std::time::Instant, Vec<WebhookEventType>)>| {
            cache
                .as_ref()
                .filter(|(at, _)| at.elapsed() < SUBSCRIBED_TTL)
                .map(|(_, kinds)| kinds.contains(&kind))
        };
        let lock = || {
            self.webhooks
                .subscribed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        };
        if let Some(known) = fresh(&lock()) {
            return Ok(known);
        }
        let kinds: Vec<WebhookEventType> = webhook_subscription::Entity::find()
            .filter(webhook_subscription::Column::IsActive.eq(true))
            .all(db)
            .await?
            .iter()
            .flat_map(event_types)
            .collect();
        let wanted = kinds.contains(&kind);
        *lock() = Some((std::time::Instant::now(), kinds));
        Ok(wanted)
    }

    // ---------------------------------------------------------------- delivery

    /// Sends what is due now, round after round until nothing more can go.
    /// The worker calls it on every tick and wake-up; tests call it directly.
    pub async fn run_webhooks_once(&self) -> Result<WebhookRun> {
        let mut total = WebhookRun::default();
        for _ in 0..MAX_ROUNDS {
            let round = self.webhook_round().await?;
            total += round;
            if round.delivered + round.failed == 0 {
                break;
            }
        }
        Ok(total)
    }

    async fn webhook_round(&self) -> Result<WebhookRun> {
        let now = self.clock.now();
        let ids = self.webhook_heads(now).await?;
        let mut run = WebhookRun::default();
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut tasks = JoinSet::new();
        for id in ids {
            let domain = self.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (id, domain.deliver_webhook(id).await)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(Outcome::Delivered))) => run.delivered += 1,
                Ok((_, Ok(Outcome::Retried { disabled }))) => {
                    run.retried += 1;
                    run.disabled += usize::from(disabled);
                }
                Ok((_, Ok(Outcome::Failed { disabled }))) => {
                    run.failed += 1;
                    run.disabled += usize::from(disabled);
                }
                Ok((_, Ok(Outcome::Skipped))) => {}
                // The claim expires and the delivery is tried again.
                Ok((id, Err(e))) => {
                    tracing::warn!(delivery_id = id, error = %e, "webhook delivery failed")
                }
                Err(e) => tracing::error!(error = %e, "webhook task panicked"),
            }
        }
        Ok(run)
    }

    /// Due deliveries of active subscriptions that are the oldest pending one
    /// of their (subscription, ordering key).
    async fn webhook_heads(&self, now: DateTime<Utc>) -> Result<Vec<i64>> {
        let due: Vec<(i64, i64, Option<String>)> = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::Id)
            .column(webhook_delivery::Column::SubscriptionId)
            .column(webhook_delivery::Column::OrderingKey)
            .join(
                JoinType::InnerJoin,
                webhook_delivery::Relation::Subscription.def(),
            )
            .filter(webhook_subscription::Column::IsActive.eq(true))
            .filter(webhook_delivery::Column::Status.eq(DeliveryState::Pending))
            .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
            .order_by_asc(webhook_delivery::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut keys: Vec<String> = due.iter().filter_map(|(_, _, k)| k.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        let heads: HashMap<(i64, String), i64> = if keys.is_empty() {
            HashMap::new()
        } else {
            let mut subs: Vec<i64> = due.iter().map(|(_, s, _)| *s).collect();
            subs.sort_unstable();
            subs.dedup();
            webhook_delivery::Entity::find()
                .select_only()
                .column(webhook_delivery::Column::SubscriptionId)
                .column(webhook_delivery::Column::OrderingKey)
                .expr(Func::min(Expr::col((
                    webhook_delivery::Entity,
                    webhook_delivery::Column::Id,
                ))))
                .filter(webhook_delivery::Column::Status.eq(DeliveryState::Pending))
                .filter(webhook_delivery::Column::SubscriptionId.is_in(subs))
                .filter(webhook_delivery::Column::OrderingKey.is_in(keys))
                .group_by(webhook_delivery::Column::SubscriptionId)
                .group_by(webhook_delivery::Column::OrderingKey)
                .into_tuple::<(i64, String, i64)>()
                .all(&self.db)
                .await?
                .into_iter()
                .map(|(s, k, id)| ((s, k), id))
                .collect()
        };
        Ok(due
            .into_iter()
            .filter(|(id, s, k)| match k {
                None => true,
                Some(k) => heads.get(&(*s, k.clone())) == Some(id),
            })
            .map(|(id, _, _)| id)
            .collect())
    }

    async fn deliver_webhook(&self, id: i64) -> Result<Outcome> {
        let now = self.clock.now();
        let claimed = webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::NextAttemptAt,
                Expr::value(now + CLAIM_FOR),
            )
            .filter(webhook_delivery::Column::Id.eq(id))
            .filter(webhook_delivery::Column::Status.eq(DeliveryState::Pending))
            .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
            .exec(&self.db)
            .await?;
        if claimed.rows_affected != 1 {
            return Ok(Outcome::Skipped);
        }
        let Some((row, Some(sub))) = webhook_delivery::Entity::find_by_id(id)
            .find_also_related(webhook_subscription::Entity)
            .one(&self.db)
            .await?
        else {
            return Ok(Outcome::Skipped);
        };
        let attempt = row.attempts + 1;
        let body = json!({
            "id": row.event_id,
            "type": row.event_type,
            "timestamp": now.timestamp(),
            "occurredAt": row.payload.get("occurredAt"),
            "attempt": attempt,
            "data": row.payload.get("data"),
        })
        .to_string();
        let request = WebhookRequest {
            url: sub.url.clone(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                (ID_HEADER.into(), row.event_id.clone()),
                (TIMESTAMP_HEADER.into(), now.timestamp().to_string()),
                (EVENT_HEADER.into(), row.event_type.clone()),
                (
                    SIGNATURE_HEADER.into(),
                    format!("sha256={}", sign(&sub.secret, &body)),
                ),
            ],
            body,
        };
        let started = std::time::Instant::now();
        let result = self.webhooks.sender.post(&request).await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let (status, error) = match result {
            Ok(s) if (200..300).contains(&s) => (Some(i32::from(s)), None),
            Ok(s) => (Some(i32::from(s)), Some(format!("HTTP {s}"))),
            Err(reason) => (None, Some(reason)),
        };
        let done = |q: sea_orm::UpdateMany<webhook_delivery::Entity>| {
            q.col_expr(webhook_delivery::Column::Attempts, Expr::value(attempt))
                .col_expr(
                    webhook_delivery::Column::ResponseStatus,
                    Expr::value(status),
                )
                .col_expr(webhook_delivery::Column::LatencyMs, Expr::value(latency_ms))
                .filter(webhook_delivery::Column::Id.eq(id))
                .filter(webhook_delivery::Column::Status.eq(DeliveryState::Pending))
        };
        let Some(error) = error else {
            let txn = self.db.begin().await?;
            done(webhook_delivery::Entity::update_many())
                .col_expr(
                    webhook_delivery::Column::Status,
                    Expr::value(DeliveryState::Delivered),
                )
                .col_expr(webhook_delivery::Column::DeliveredAt, Expr::value(now))
                .col_expr(
                    webhook_delivery::Column::LastError,
                    Expr::value(None::<String>),
                )
                .exec(&txn)
                .await?;
            webhook_subscription::Entity::update_many()
                .col_expr(
                    webhook_subscription::Column::ConsecutiveFailures,
                    Expr::value(0),
                )
                .filter(webhook_subscription::Column::Id.eq(sub.id))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            return Ok(Outcome::Delivered);
        };
        let give_up = now - row.created_at >= self.webhooks.config.retry_for;
        let error = truncate(&error);
        let txn = self.db.begin().await?;
        let mut update = done(webhook_delivery::Entity::update_many()).col_expr(
            webhook_delivery::Column::LastError,
            Expr::value(error.clone()),
        );
        update = if give_up {
            update.col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DeliveryState::Failed),
            )
        } else {
            update.col_expr(
                webhook_delivery::Column::NextAttemptAt,
                Expr::value(now + backoff(attempt)),
            )
        };
        update.exec(&txn).await?;
        webhook_subscription::Entity::update_many()
            .col_expr(
                webhook_subscription::Column::ConsecutiveFailures,
                Expr::col(webhook_subscription::Column::ConsecutiveFailures).add(1),
            )
            .filter(webhook_subscription::Column::Id.eq(sub.id))
            .exec(&txn)
            .await?;
        let failures = webhook_subscription::Entity::find_by_id(sub.id)
            .one(&txn)
            .await?
            .map(|s| s.consecutive_failures)
            .unwrap_or_default();
        let limit = self.webhooks.config.disable_after_failures;
        let reason = if give_up {
            Some(format!(
                "event {} could not be delivered for {} h; last error: {error}",
                row.event_id,
                self.webhooks.config.retry_for.num_hours()
            ))
        } else if failures >= limit {
            Some(format!(
                "{failures} failed attempts in a row; last error: {error}"
            ))
        } else {
            None
        };
        let mut disabled = false;
        if let Some(reason) = reason {
            let reason = truncate(&reason);
            let moved = webhook_subscription::Entity::update_many()
                .col_expr(webhook_subscription::Column::IsActive, Expr::value(false))
                .col_expr(
                    webhook_subscription::Column::DisabledReason,
                    Expr::value(reason.clone()),
                )
                .col_expr(webhook_subscription::Column::UpdatedAt, Expr::value(now))
                .filter(webhook_subscription::Column::Id.eq(sub.id))
                .filter(webhook_subscription::Column::IsActive.eq(true))
                .exec(&txn)
                .await?;
            if moved.rows_affected == 1 {
                disabled = true;
                audit::record(
                    &txn,
                    &Actor::system(),
                    now,
                    Change::new(
                        "webhook_subscription.disable",
                        "webhook_subscription",
                        sub.id,
                    )
                    .after(&json!({"isActive": false, "disabledReason": reason})),
                )
                .await?;
            }
        }
        txn.commit().await?;
        if disabled {
            tracing::warn!(subscription_id = sub.id, "webhook subscription disabled");
        }
        Ok(if give_up {
            Outcome::Failed { disabled }
        } else {
            Outcome::Retried { disabled }
        })
    }
}

/// The webhook type and conversation of a domain event, when it has one.
pub fn classify(payload: &EventPayload) -> Option<(WebhookEventType, i64)> {
    use entity::{DeliveryStatus, Direction};
    match payload {
        EventPayload::ConversationUpdated { scope, change, .. } => {
            let kind = match change.as_str() {
                "created" => WebhookEventType::ConversationCreated,
                "assigned" | "reassigned" | "transferred" => WebhookEventType::ConversationAssigned,
                "resolved" => WebhookEventType::ConversationResolved,
                "survey" => WebhookEventType::SurveyAnswered,
                _ => return None,
            };
            Some((kind, scope.conversation_id))
        }
        EventPayload::MessageAdded {
            scope,
            direction,
            status,
            ..
        } => match (direction, status) {
            (Direction::Inbound, _) => {
                Some((WebhookEventType::MessageInbound, scope.conversation_id))
            }
            // Once, when the agent's message is written (later events are
            // delivery statuses of the same message).
            (Direction::Outbound, DeliveryStatus::Queued) => {
                Some((WebhookEventType::MessageOutbound, scope.conversation_id))
            }
            _ => None,
        },
        EventPayload::SlaAlert { scope, level, .. } if level == "breach" => {
            Some((WebhookEventType::SlaBreached, scope.conversation_id))
        }
        _ => None,
    }
}

/// The `data` of a domain event's deliveries, read through `db`; `None` when
/// the row it is about is gone.
async fn event_data(
    db: &impl ConnectionTrait,
    payload: &EventPayload,
    conversation_id: i64,
) -> Result<Option<Value>> {
    Ok(match payload {
        EventPayload::MessageAdded { message_id, .. } => message::Entity::find_by_id(*message_id)
            .one(db)
            .await?
            .map(|m| message_data(&m)),
        EventPayload::SlaAlert {
            kind, level, cycle, ..
        } => {
            let c = conversation::Entity::find_by_id(conversation_id)
                .one(db)
                .await?;
            let mut d = c
                .as_ref()
                .map(conversation_data)
                .unwrap_or_else(|| json!({"conversationId": conversation_id.to_string()}));
            d["slaKind"] = json!(kind);
            d["slaLevel"] = json!(level);
            d["slaCycle"] = json!(cycle);
            Some(d)
        }
        EventPayload::ConversationUpdated { change, .. } if change == "survey" => {
            entity::survey::Entity::find()
                .filter(entity::survey::Column::ConversationId.eq(conversation_id))
                .filter(entity::survey::Column::AnsweredAt.is_not_null())
                .order_by_desc(entity::survey::Column::AnsweredAt)
                .order_by_desc(entity::survey::Column::Id)
                .one(db)
                .await?
                .map(|s| survey_data(&s))
        }
        _ => conversation::Entity::find_by_id(conversation_id)
            .one(db)
            .await?
            .map(|c| conversation_data(&c)),
    })
}

/// What a CRM gets about an answered survey.
pub fn survey_data(s: &entity::survey::Model) -> Value {
    json!({
        "conversationId": s.conversation_id.to_string(),
        "surveyId": s.id.to_string(),
        "kind": s.kind,
        "score": s.score,
        "agentId": s.agent_id.map(|a| a.to_string()),
        "answeredAt": s.answered_at.map(|t| t.to_rfc3339()),
    })
}

/// What a CRM gets about a conversation.
pub fn conversation_data(c: &conversation::Model) -> Value {
    json!({
        "conversationId": c.id.to_string(),
        "contactId": c.contact_id.to_string(),
        "channelId": c.channel_id.to_string(),
        "status": c.status,
        "priority": c.priority,
        "topic": c.topic,
        "departmentId": c.department_id.map(|d| d.to_string()),
        "assigneeId": c.assignee_id.map(|a| a.to_string()),
        "createdAt": c.created_at.to_rfc3339(),
        "resolvedAt": c.resolved_at.map(|t| t.to_rfc3339()),
    })
}

/// What a CRM gets about a contact.
pub fn contact_data(c: &entity::contact::Model) -> Value {
    json!({
        "contactId": c.id.to_string(),
        "externalId": c.external_id,
        "waId": c.wa_id,
        "phone": c.phone,
        "name": c.name,
        "profileName": c.profile_name,
        "language": c.language,
        "priority": c.priority,
        "isVip": c.is_vip,
        "consent": c.consent,
        "fields": c.fields,
        "updatedAt": c.updated_at.to_rfc3339(),
    })
}

/// The ordering key of a contact's own events.
pub fn contact_key(contact_id: i64) -> String {
    format!("contact:{contact_id}")
}

/// What a CRM gets about a message.
pub fn message_data(m: &message::Model) -> Value {
    json!({
        "messageId": m.id.to_string(),
        "conversationId": m.conversation_id.to_string(),
        "direction": m.direction,
        "senderKind": m.sender_kind,
        "type": m.message_type,
        "text": m.body,
        "createdAt": m.created_at.to_rfc3339(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_unless_allowed_for_loopback() {
        assert!(validate_url("https://crm.example.com/hook", false).is_ok());
        assert!(validate_url("http://crm.example.com/hook", false).is_err());
        assert!(validate_url("http://127.0.0.1:9000/hook", false).is_err());
        assert!(validate_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(validate_url("http://crm.example.com/hook", true).is_err());
        assert!(validate_url("ftp://x", true).is_err());
        assert!(validate_url("https://user:pw@x.example", false).is_err());
        assert!(validate_url("https:///path", false).is_err());
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for _ in 0..50 {
            let first = backoff(1);
            assert!(first >= Duration::seconds(5) && first <= Duration::seconds(10));
            assert!(backoff(30) <= Duration::seconds(BACKOFF_MAX_SECS));
        }
    }

    #[test]
    fn domain_events_map_to_the_subscribable_types() {
        use crate::events::Scope;
        use entity::{ConversationStatus, DeliveryStatus, Direction, Priority};
        let scope = Scope {
            conversation_id: 7,
            assignee_id: None,
            department_id: None,
        };
        let updated = |change: &str| EventPayload::ConversationUpdated {
            scope,
            status: ConversationStatus::Open,
            priority: Priority::Normal,
            change: change.into(),
        };
        let message = |direction, status| EventPayload::MessageAdded {
            scope,
            message_id: 1,
            direction,
            status,
        };
        let kind = |p: &EventPayload| classify(p).map(|(k, c)| (k.as_str(), c));
        assert_eq!(kind(&updated("created")), Some(("conversation.created", 7)));
        for change in ["assigned", "reassigned", "transferred"] {
            assert_eq!(kind(&updated(change)), Some(("conversation.assigned", 7)));
        }
        assert_eq!(
            kind(&updated("resolved")),
            Some(("conversation.resolved", 7))
        );
        assert_eq!(kind(&updated("survey")), Some(("survey.answered", 7)));
        assert_eq!(kind(&updated("tags")), None);
        assert_eq!(
            kind(&message(Direction::Inbound, DeliveryStatus::Received)),
            Some(("message.inbound", 7))
        );
        assert_eq!(
            kind(&message(Direction::Outbound, DeliveryStatus::Queued)),
            Some(("message.outbound", 7))
        );
        assert_eq!(
            kind(&message(Direction::Outbound, DeliveryStatus::Read)),
            None
        );
        let sla = |level: &str| EventPayload::SlaAlert {
            scope,
            kind: "first_response".into(),
            level: level.into(),
            cycle: 0,
        };
        assert_eq!(kind(&sla("breach")), Some(("sla.breached", 7)));
        assert_eq!(kind(&sla("warning")), None);
    }

    #[test]
    fn event_types_round_trip() {
        for t in WebhookEventType::ALL {
            assert_eq!(WebhookEventType::parse(t.as_str()), Some(t));
        }
    }
}
