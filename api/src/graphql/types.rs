//! GraphQL object types: thin views over entity rows. Children are resolved
//! through the DataLoaders; secrets never have a field.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ComplexObject, Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::pagination::{Page, PageRequest};
use entity::*;
use serde_json::Value;

use super::context::ContextExt;
use super::error::IntoGql;
use super::loaders::loaders;

fn id(v: i64) -> ID {
    ID(v.to_string())
}

/// Turns a domain page into a Relay connection.
pub fn connection<M, T: async_graphql::OutputType>(
    page: Page<M>,
    wrap: impl Fn(M) -> T,
) -> Connection<String, T> {
    let mut conn = Connection::new(page.has_previous_page, page.has_next_page);
    conn.edges.extend(
        page.items
            .into_iter()
            .map(|(cursor, m)| Edge::new(cursor, wrap(m))),
    );
    conn
}

pub struct Staff(pub user::Model);

#[Object]
impl Staff {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> Role {
        self.0.role
    }
    async fn skills(&self) -> Vec<String> {
        serde_json::from_value(self.0.skills.clone()).unwrap_or_default()
    }
    /// Most conversations assigned at once.
    async fn max_concurrent(&self) -> i32 {
        self.0.max_concurrent
    }
    async fn presence(&self) -> Presence {
        self.0.presence
    }
    async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_seen_at
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    async fn departments(&self, ctx: &Context<'_>) -> Result<Vec<Department>> {
        let d = ctx.domain();
        let ids = d.department_ids_of(self.0.id).await.gql()?;
        let found = loaders(ctx).departments.load_many(ids).await?;
        Ok(found.into_values().map(Department).collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct Department(pub department::Model);

#[Object]
impl Department {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Words that route a conversation here (case- and accent-insensitive).
    async fn keywords(&self) -> Vec<String> {
        serde_json::from_value(self.0.keywords.clone()).unwrap_or_default()
    }
    async fn routing_strategy(&self) -> RoutingStrategy {
        self.0.routing_strategy
    }
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<Staff>> {
        let d = ctx.domain();
        let actor = ctx.actor()?;
        actor.require(domain::Capability::ListStaff).gql()?;
        Ok(d.department_members(self.0.id)
            .await
            .gql()?
            .into_iter()
            .map(Staff)
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(SimpleObject)]
pub struct Tag {
    pub id: ID,
    pub name: String,
    pub color: Option<String>,
}

impl From<tag::Model> for Tag {
    fn from(t: tag::Model) -> Self {
        Self {
            id: id(t.id),
            name: t.name,
            color: t.color,
        }
    }
}

pub struct Channel(pub channel::Model);

#[Object]
impl Channel {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Meta's id of the business number: webhooks are routed on it.
    async fn phone_number_id(&self) -> &str {
        &self.0.phone_number_id
    }
    async fn display_phone_number(&self) -> Option<&str> {
        self.0.display_phone_number.as_deref()
    }
    async fn waba_id(&self) -> Option<&str> {
        self.0.waba_id.as_deref()
    }
    /// Pricing region of the billing ledger.
    async fn region(&self) -> &str {
        &self.0.region
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    /// Whether an app secret is set (the secret itself is never returned).
    async fn has_app_secret(&self) -> bool {
        self.0.app_secret.is_some()
    }
    /// Whether an access token is set (the token itself is never returned).
    async fn has_access_token(&self) -> bool {
        self.0.access_token.is_some()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct Contact(pub contact::Model);

#[Object]
impl Contact {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// WhatsApp id (the phone number in international format, without +).
    async fn wa_id(&self) -> Option<&str> {
        self.0.wa_id.as_deref()
    }
    /// Business-scoped user id, for users known only by username.
    async fn user_id(&self) -> Option<&str> {
        self.0.user_id.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    /// The name the customer set in WhatsApp.
    async fn profile_name(&self) -> Option<&str> {
        self.0.profile_name.as_deref()
    }
    /// The best name to show: ours, else the profile's, else the number.
    async fn display_name(&self) -> String {
        let c = &self.0;
        c.name
            .clone()
            .or_else(|| c.profile_name.clone())
            .or_else(|| c.wa_id.clone())
            .or_else(|| c.user_id.clone())
            .unwrap_or_else(|| format!("contact {}", c.id))
    }
    async fn language(&self) -> Option<&str> {
        self.0.language.as_deref()
    }
    async fn priority(&self) -> Priority {
        self.0.priority
    }
    async fn is_vip(&self) -> bool {
        self.0.is_vip
    }
    async fn consent(&self) -> ConsentState {
        self.0.consent
    }
    /// Structured fields (address, tax code, preferences…).
    async fn fields(&self) -> &Value {
        &self.0.fields
    }
    /// The contact's id in the CRM.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<Tag>> {
        let tags = ctx.domain().tags_of_contact(self.0.id).await.gql()?;
        Ok(tags.into_iter().map(Tag::from).collect())
    }
    async fn last_inbound_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_inbound_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Who holds a conversation's lock, and until when.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Lock {
    #[graphql(skip)]
    pub holder_id: i64,
    pub acquired_at: Option<DateTime<Utc>>,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl Lock {
    async fn holder(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        Ok(loaders(ctx)
            .users
            .load_one(self.holder_id)
            .await?
            .map(Staff))
    }
}

pub struct Conversation(pub conversation::Model);

#[Object]
impl Conversation {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn status(&self) -> ConversationStatus {
        self.0.status
    }
    async fn priority(&self) -> Priority {
        self.0.priority
    }
    async fn topic(&self) -> Option<&str> {
        self.0.topic.as_deref()
    }
    async fn language(&self) -> Option<&str> {
        self.0.language.as_deref()
    }
    async fn channel(&self, ctx: &Context<'_>) -> Result<Option<Channel>> {
        Ok(loaders(ctx)
            .channels
            .load_one(self.0.channel_id)
            .await?
            .map(Channel))
    }
    async fn contact(&self, ctx: &Context<'_>) -> Result<Option<Contact>> {
        Ok(loaders(ctx)
            .contacts
            .load_one(self.0.contact_id)
            .await?
            .map(Contact))
    }
    async fn department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(dep) = self.0.department_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)
            .departments
            .load_one(dep)
            .await?
            .map(Department))
    }
    async fn assignee(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        let Some(user) = self.0.assignee_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).users.load_one(user).await?.map(Staff))
    }
    /// The current lock, when someone holds it.
    async fn lock(&self, ctx: &Context<'_>) -> Option<Lock> {
        let d = ctx.domain();
        let holder = domain::lock::live_holder(&self.0, d.clock.now(), d.config.lock_idle)?;
        Some(Lock {
            holder_id: holder,
            acquired_at: self.0.lock_acquired_at,
            last_activity_at: self.0.lock_last_activity_at,
            expires_at: self.0.lock_expires_at,
        })
    }
    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<Tag>> {
        let tags = loaders(ctx).conversation_tags.load_one(self.0.id).await?;
        Ok(tags
            .unwrap_or_default()
            .into_iter()
            .map(Tag::from)
            .collect())
    }
    /// Messages, oldest first.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Message>> {
        let page = ctx
            .domain()
            .messages_page(self.0.id, PageRequest::new(first, after))
            .await
            .gql()?;
        Ok(connection(page, Message))
    }
    /// The newest `last` messages (default 5, at most 20), newest first: the
    /// preview of a queue page, loaded for the whole page in one query.
    async fn recent_messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5)] last: i32,
    ) -> Result<Vec<Message>> {
        if !(1..=20).contains(&last) {
            return Err(domain::DomainError::invalid(
                "last",
                "must be between 1 and 20",
            ))
            .gql();
        }
        let rows = loaders(ctx)
            .recent_messages
            .load_one((self.0.id, last as u64))
            .await?;
        Ok(rows.unwrap_or_default().into_iter().map(Message).collect())
    }
    /// Internal notes, oldest first.
    async fn notes(&self, ctx: &Context<'_>) -> Result<Vec<Note>> {
        let notes = ctx.domain().notes(ctx.actor()?, self.0.id).await.gql()?;
        Ok(notes.into_iter().map(Note).collect())
    }
    async fn first_response_due_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_response_due_at
    }
    async fn resolution_due_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolution_due_at
    }
    /// SLA clocks: policy, due times, business time left, warning and breach.
    async fn sla(&self, ctx: &Context<'_>) -> Result<super::sla::SlaState> {
        let state = ctx.domain().sla_state_of(&self.0).await.gql()?;
        Ok(super::sla::SlaState(state))
    }
    async fn escalation_level(&self) -> i32 {
        self.0.escalation_level
    }
    async fn transfer_count(&self) -> i32 {
        self.0.transfer_count
    }
    async fn reopen_count(&self) -> i32 {
        self.0.reopen_count
    }
    async fn queued_at(&self) -> Option<DateTime<Utc>> {
        self.0.queued_at
    }
    async fn assigned_at(&self) -> Option<DateTime<Utc>> {
        self.0.assigned_at
    }
    async fn first_response_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_response_at
    }
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    /// Customer satisfaction answer, 1–5.
    async fn csat(&self) -> Option<i32> {
        self.0.csat
    }
    /// Net promoter answer, 0–10.
    async fn nps(&self) -> Option<i32> {
        self.0.nps
    }
    async fn last_message_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_message_at
    }
    /// When the customer-service window closes (24 h after the customer's last
    /// message); after it only templates can be sent. Empty when the customer
    /// never wrote.
    async fn window_expires_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        let contact = loaders(ctx).contacts.load_one(self.0.contact_id).await?;
        let last = domain::window::last_customer_message(&self.0, contact.as_ref());
        let d = ctx.domain();
        Ok(domain::window::expires_at(
            last,
            d.config.messaging.service_window,
        ))
    }
    /// Whether free-form messages can be sent now.
    async fn inside_window(&self, ctx: &Context<'_>) -> Result<bool> {
        let contact = loaders(ctx).contacts.load_one(self.0.contact_id).await?;
        let last = domain::window::last_customer_message(&self.0, contact.as_ref());
        let d = ctx.domain();
        Ok(domain::window::is_inside(
            last,
            d.config.messaging.service_window,
            d.clock.now(),
        ))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct Message(pub message::Model);

#[Object]
impl Message {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn direction(&self) -> Direction {
        self.0.direction
    }
    async fn sender_kind(&self) -> SenderKind {
        self.0.sender_kind
    }
    /// The staff member who sent it, for agent messages.
    async fn sender(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        let Some(user) = self.0.sender_user_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).users.load_one(user).await?.map(Staff))
    }
    #[graphql(name = "type")]
    async fn message_type(&self) -> MessageType {
        self.0.message_type
    }
    /// The readable text: body, caption, button title…
    async fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }
    /// Media metadata (id, mime type, caption, file name…).
    async fn media(&self) -> Option<&Value> {
        self.0.media.as_ref()
    }
    /// The type-specific object as WhatsApp sent it or we sent it.
    async fn payload(&self) -> Option<&Value> {
        self.0.payload.as_ref()
    }
    async fn wa_message_id(&self) -> Option<&str> {
        self.0.wa_message_id.as_deref()
    }
    async fn status(&self) -> DeliveryStatus {
        self.0.status
    }
    async fn error_code(&self) -> Option<i32> {
        self.0.error_code
    }
    async fn error_title(&self) -> Option<&str> {
        self.0.error_title.as_deref()
    }
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
    async fn failed_at(&self) -> Option<DateTime<Utc>> {
        self.0.failed_at
    }
    /// The WhatsApp id of the message this one answers.
    async fn context_wa_message_id(&self) -> Option<&str> {
        self.0.context_wa_id.as_deref()
    }
    /// What sending it cost in the billing ledger, micro-USD (outbound, once sent).
    async fn cost_micros(&self) -> Option<i64> {
        self.0.cost_micros
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct Note(pub note::Model);

#[Object]
impl Note {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        Ok(loaders(ctx)
            .users
            .load_one(self.0.author_id)
            .await?
            .map(Staff))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct AuditEntry(pub audit_log::Model);

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn actor_kind(&self) -> ActorKind {
        self.0.actor_kind
    }
    /// The staff user or API token that acted; empty for the system.
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor_id.map(id)
    }
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        match (self.0.actor_kind, self.0.actor_id) {
            (ActorKind::User, Some(user)) => {
                Ok(loaders(ctx).users.load_one(user).await?.map(Staff))
            }
            _ => Ok(None),
        }
    }
    /// e.g. `conversation.assign`, `note.create`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn entity_type(&self) -> &str {
        &self.0.entity_type
    }
    async fn entity_id(&self) -> Option<&str> {
        self.0.entity_id.as_deref()
    }
    async fn before(&self) -> Option<&Value> {
        self.0.before.as_ref()
    }
    async fn after(&self) -> Option<&Value> {
        self.0.after.as_ref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct ApiToken(pub api_token::Model);

#[Object]
impl ApiToken {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> Role {
        self.0.role
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
