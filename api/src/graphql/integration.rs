//! Integration: outbound webhooks (subscriptions and their delivery log),
//! contact import/export, retention and one contact's data (export, erase).

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::contact_io::{ContactSegment, DataFormat, ImportReport};
use domain::pagination::PageRequest;
use domain::retention::{ErasureReport, RetentionAction};
use domain::webhooks_out::{
    self, WebhookDeliveryFilter, WebhookEventType as DomainEventType, WebhookSubscriptionForCreate,
    WebhookSubscriptionForUpdate,
};
use entity::{ConsentState, DeliveryState, webhook_delivery, webhook_subscription};

use super::context::{ContextExt, parse_id};
use super::error::IntoGql;
use super::types::connection;

/// What a webhook subscription listens to (the body's `type` is the
/// dotted lower-case form, e.g. `conversation.created`).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
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

impl From<WebhookEventType> for DomainEventType {
    fn from(t: WebhookEventType) -> Self {
        match t {
            WebhookEventType::ConversationCreated => Self::ConversationCreated,
            WebhookEventType::ConversationAssigned => Self::ConversationAssigned,
            WebhookEventType::ConversationResolved => Self::ConversationResolved,
            WebhookEventType::MessageInbound => Self::MessageInbound,
            WebhookEventType::MessageOutbound => Self::MessageOutbound,
            WebhookEventType::SlaBreached => Self::SlaBreached,
            WebhookEventType::SurveyAnswered => Self::SurveyAnswered,
            WebhookEventType::ContactUpdated => Self::ContactUpdated,
        }
    }
}

impl From<DomainEventType> for WebhookEventType {
    fn from(t: DomainEventType) -> Self {
        match t {
            DomainEventType::ConversationCreated => Self::ConversationCreated,
            DomainEventType::ConversationAssigned => Self::ConversationAssigned,
            DomainEventType::ConversationResolved => Self::ConversationResolved,
            DomainEventType::MessageInbound => Self::MessageInbound,
            DomainEventType::MessageOutbound => Self::MessageOutbound,
            DomainEventType::SlaBreached => Self::SlaBreached,
            DomainEventType::SurveyAnswered => Self::SurveyAnswered,
            DomainEventType::ContactUpdated => Self::ContactUpdated,
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl From<ExportFormat> for DataFormat {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Csv => Self::Csv,
            ExportFormat::Json => Self::Json,
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum RetentionMode {
    /// Keep the conversations for reports, marked archived.
    Archive,
    /// Delete them with their messages, notes and surveys.
    Purge,
}

pub struct WebhookSubscription(pub webhook_subscription::Model);

#[Object]
impl WebhookSubscription {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn event_types(&self) -> Vec<WebhookEventType> {
        webhooks_out::event_types(&self.0)
            .into_iter()
            .map(Into::into)
            .collect()
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    /// Why it was disabled (repeated failures, or by an admin).
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// Failed attempts since the last success.
    async fn consecutive_failures(&self) -> i32 {
        self.0.consecutive_failures
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A new subscription and its signing secret, shown only once.
#[derive(SimpleObject)]
pub struct CreatedWebhookSubscription {
    subscription: WebhookSubscription,
    /// Deliveries carry `X-Helpdesk-Signature: sha256=<hex HMAC-SHA256 of
    /// the body with this secret>`.
    secret: String,
}

pub struct WebhookDelivery(pub webhook_delivery::Model);

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn subscription_id(&self) -> ID {
        ID(self.0.subscription_id.to_string())
    }
    /// The event id (`X-Helpdesk-Id`), the same on every attempt.
    async fn event_id(&self) -> &str {
        &self.0.event_id
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn status(&self) -> DeliveryState {
        self.0.status
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == DeliveryState::Pending).then_some(self.0.next_attempt_at)
    }
    /// HTTP status of the last attempt (none when no answer came).
    async fn response_status(&self) -> Option<i32> {
        self.0.response_status
    }
    /// Latency of the last attempt, in milliseconds.
    async fn latency_ms(&self) -> Option<i32> {
        self.0.latency_ms
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    /// `{occurredAt, data}` as queued.
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }
}

#[derive(InputObject)]
pub struct WebhookSubscriptionCreateInput {
    name: String,
    /// `https://…` (plain http only to loopback hosts when the server allows it).
    url: String,
    event_types: Vec<WebhookEventType>,
}

#[derive(InputObject)]
pub struct WebhookSubscriptionUpdateInput {
    name: Option<String>,
    url: Option<String>,
    event_types: Option<Vec<WebhookEventType>>,
    /// `true` re-enables a disabled subscription and clears its failures.
    is_active: Option<bool>,
}

#[derive(InputObject, Default)]
pub struct ContactSegmentInput {
    tag_id: Option<ID>,
    consent: Option<ConsentState>,
    /// Contacts created at or after.
    from: Option<DateTime<Utc>>,
    /// Contacts created before.
    to: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct ImportRowError {
    /// CSV line (the header is line 1), or position in the JSON array.
    line: i32,
    field: Option<String>,
    reason: String,
}

#[derive(SimpleObject)]
pub struct ContactImportResult {
    created: i32,
    updated: i32,
    /// Rows not imported; every other row was.
    errors: Vec<ImportRowError>,
}

impl From<ImportReport> for ContactImportResult {
    fn from(r: ImportReport) -> Self {
        let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        Self {
            created: n(r.created),
            updated: n(r.updated),
            errors: r
                .errors
                .into_iter()
                .map(|e| ImportRowError {
                    line: n(e.line),
                    field: e.field,
                    reason: e.reason,
                })
                .collect(),
        }
    }
}

#[derive(SimpleObject)]
pub struct ContactErasure {
    conversations: i32,
    messages: i32,
    notes: i32,
    surveys: i32,
    audit_rows: i32,
    webhook_deliveries: i32,
}

impl From<ErasureReport> for ContactErasure {
    fn from(r: ErasureReport) -> Self {
        let n = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        Self {
            conversations: n(r.conversations),
            messages: n(r.messages),
            notes: n(r.notes),
            surveys: n(r.surveys),
            audit_rows: n(r.audit_rows),
            webhook_deliveries: n(r.webhook_deliveries),
        }
    }
}

#[derive(Default)]
pub struct IntegrationQuery;

#[Object]
impl IntegrationQuery {
    /// Admin.
    async fn webhook_subscriptions(&self, ctx: &Context<'_>) -> Result<Vec<WebhookSubscription>> {
        Ok(ctx
            .domain()
            .webhook_subscriptions(ctx.actor()?)
            .await
            .gql()?
            .into_iter()
            .map(WebhookSubscription)
            .collect())
    }

    /// The delivery log, newest first. Admin.
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        subscription_id: Option<ID>,
        status: Option<DeliveryState>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, WebhookDelivery>> {
        let filter = WebhookDeliveryFilter {
            subscription_id: subscription_id
                .map(|s| parse_id(&s, "subscriptionId"))
                .transpose()?,
            status,
        };
        let page = ctx
            .domain()
            .webhook_deliveries(ctx.actor()?, filter, PageRequest::new(first, after))
            .await
            .gql()?;
        Ok(connection(page, WebhookDelivery))
    }

    /// A segment of contacts (tag, consent state, creation period) as CSV
    /// or JSON text. Admin or Editor.
    async fn export_contacts(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        segment: Option<ContactSegmentInput>,
    ) -> Result<String> {
        let s = segment.unwrap_or_default();
        let segment = ContactSegment {
            tag_id: s.tag_id.map(|t| parse_id(&t, "tagId")).transpose()?,
            consent: s.consent,
            from: s.from,
            to: s.to,
        };
        ctx.domain()
            .export_contacts(ctx.actor()?, format.into(), segment)
            .await
            .gql()
    }

    /// Conversations created in `[from, to)` with their messages, as CSV
    /// (one line per message) or JSON. Admin or Editor.
    async fn export_conversations(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<String> {
        ctx.domain()
            .export_conversations(ctx.actor()?, format.into(), from, to)
            .await
            .gql()
    }
}

#[derive(Default)]
pub struct IntegrationMutation;

#[Object]
impl IntegrationMutation {
    /// Admin.
    async fn create_webhook_subscription(
        &self,
        ctx: &Context<'_>,
        input: WebhookSubscriptionCreateInput,
    ) -> Result<CreatedWebhookSubscription> {
        let (subscription, secret) = ctx
            .domain()
            .create_webhook_subscription(
                ctx.actor()?,
                WebhookSubscriptionForCreate {
                    name: input.name,
                    url: input.url,
                    event_types: input.event_types.into_iter().map(Into::into).collect(),
                },
            )
            .await
            .gql()?;
        Ok(CreatedWebhookSubscription {
            subscription: WebhookSubscription(subscription),
            secret,
        })
    }

    /// Admin.
    async fn update_webhook_subscription(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: WebhookSubscriptionUpdateInput,
    ) -> Result<WebhookSubscription> {
        let id = parse_id(&id, "id")?;
        let input = WebhookSubscriptionForUpdate {
            name: input.name,
            url: input.url,
            event_types: input
                .event_types
                .map(|t| t.into_iter().map(Into::into).collect()),
            is_active: input.is_active,
        };
        Ok(WebhookSubscription(
            ctx.domain()
                .update_webhook_subscription(ctx.actor()?, id, input)
                .await
                .gql()?,
        ))
    }

    /// Deletes the subscription and its delivery log. Admin.
    async fn delete_webhook_subscription(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let id = parse_id(&id, "id")?;
        ctx.domain()
            .delete_webhook_subscription(ctx.actor()?, id)
            .await
            .gql()?;
        Ok(true)
    }

    /// Queues a delivery again, due now. Admin.
    async fn redeliver_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookDelivery> {
        let id = parse_id(&id, "id")?;
        Ok(WebhookDelivery(
            ctx.domain()
                .redeliver_webhook(ctx.actor()?, id)
                .await
                .gql()?,
        ))
    }

    /// Imports contacts from CSV or JSON text (at most 2 MB, 10,000 rows);
    /// every row is validated and written on its own. Admin or Editor.
    async fn import_contacts(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        data: String,
    ) -> Result<ContactImportResult> {
        Ok(ctx
            .domain()
            .import_contacts(ctx.actor()?, format.into(), &data)
            .await
            .gql()?
            .into())
    }

    /// Archives or purges conversations resolved or closed more than
    /// `olderThanDays` ago (at most 500 per call). Returns how many. Admin.
    async fn apply_retention(
        &self,
        ctx: &Context<'_>,
        older_than_days: i32,
        mode: RetentionMode,
    ) -> Result<i32> {
        let action = match mode {
            RetentionMode::Archive => RetentionAction::Archive,
            RetentionMode::Purge => RetentionAction::Purge,
        };
        let n = ctx
            .domain()
            .apply_retention(ctx.actor()?, i64::from(older_than_days), action)
            .await
            .gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Everything stored about one contact, as one JSON document. Audited.
    /// Admin.
    async fn export_contact_data(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
    ) -> Result<Json<serde_json::Value>> {
        let id = parse_id(&contact_id, "contactId")?;
        Ok(Json(
            ctx.domain()
                .export_contact_data(ctx.actor()?, id)
                .await
                .gql()?,
        ))
    }

    /// Erases one contact's data (messages, notes, surveys; the contact and
    /// the audit rows about it anonymised). Irreversible. Audited. Admin.
    async fn erase_contact(&self, ctx: &Context<'_>, contact_id: ID) -> Result<ContactErasure> {
        let id = parse_id(&contact_id, "contactId")?;
        Ok(ctx
            .domain()
            .erase_contact(ctx.actor()?, id)
            .await
            .gql()?
            .into())
    }
}
