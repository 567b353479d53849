//! Conversations, their messages, notes, tags and lock.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use domain::conversations::{ConversationFilter, ConversationSort, ConversationSortField};
use domain::pagination::PageRequest;
use entity::{ConversationStatus, Priority};

use super::context::{ContextExt, parse_id, parse_ids};
use super::error::IntoGql;
use super::types::{Conversation, Message, Note, connection};

#[derive(InputObject, Default)]
pub struct ConversationFilterInput {
    status: Option<Vec<ConversationStatus>>,
    department_id: Option<ID>,
    assignee_id: Option<ID>,
    /// `true`: only the queue (nobody assigned); `false`: only assigned ones.
    unassigned: Option<bool>,
    tag_id: Option<ID>,
    priority: Option<Priority>,
    topic: Option<String>,
    channel_id: Option<ID>,
    contact_id: Option<ID>,
    /// Contact name or number, or text in any message.
    search: Option<String>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
}

impl ConversationFilterInput {
    fn into_domain(self) -> Result<ConversationFilter> {
        let opt = |id: Option<ID>, field: &str| id.map(|i| parse_id(&i, field)).transpose();
        Ok(ConversationFilter {
            status: self.status,
            department_id: opt(self.department_id, "departmentId")?,
            assignee_id: opt(self.assignee_id, "assigneeId")?,
            unassigned: self.unassigned,
            tag_id: opt(self.tag_id, "tagId")?,
            priority: self.priority,
            topic: self.topic,
            channel_id: opt(self.channel_id, "channelId")?,
            contact_id: opt(self.contact_id, "contactId")?,
            search: self.search,
            created_from: self.created_from,
            created_to: self.created_to,
        })
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum ConversationOrder {
    #[default]
    LastMessageAtDesc,
    LastMessageAtAsc,
    CreatedAtDesc,
    CreatedAtAsc,
    UpdatedAtDesc,
}

impl From<ConversationOrder> for ConversationSort {
    fn from(o: ConversationOrder) -> Self {
        use ConversationOrder::*;
        let (field, descending) = match o {
            LastMessageAtDesc => (ConversationSortField::LastMessageAt, true),
            LastMessageAtAsc => (ConversationSortField::LastMessageAt, false),
            CreatedAtDesc => (ConversationSortField::CreatedAt, true),
            CreatedAtAsc => (ConversationSortField::CreatedAt, false),
            UpdatedAtDesc => (ConversationSortField::UpdatedAt, true),
        };
        Self { field, descending }
    }
}

#[derive(Default)]
pub struct ConversationQuery;

#[Object]
impl ConversationQuery {
    /// Conversations the caller may see (an Agent: those assigned to it).
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        filter: Option<ConversationFilterInput>,
        #[graphql(default)] order: ConversationOrder,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Conversation>> {
        let filter = filter.unwrap_or_default().into_domain()?;
        let page = ctx
            .domain()
            .conversations(
                ctx.actor()?,
                filter,
                order.into(),
                PageRequest::new(first, after),
            )
            .await
            .gql()?;
        Ok(connection(page, Conversation))
    }

    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> Result<Conversation> {
        let id = parse_id(&id, "id")?;
        Ok(Conversation(
            ctx.domain().conversation(ctx.actor()?, id).await.gql()?,
        ))
    }

    /// A conversation's messages, oldest first.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Message>> {
        let id = parse_id(&conversation_id, "conversationId")?;
        let page = ctx
            .domain()
            .messages(ctx.actor()?, id, PageRequest::new(first, after))
            .await
            .gql()?;
        Ok(connection(page, Message))
    }
}

#[derive(Default)]
pub struct ConversationMutation;

#[Object]
impl ConversationMutation {
    /// Takes the conversation's lock for the caller (7 minutes by default).
    /// `CONFLICT` with the holder and expiry when someone else holds it.
    async fn open_conversation(&self, ctx: &Context<'_>, id: ID) -> Result<Conversation> {
        let id = parse_id(&id, "id")?;
        Ok(Conversation(
            ctx.domain()
                .open_conversation(ctx.actor()?, id)
                .await
                .gql()?,
        ))
    }

    /// Extends the caller's lock by a full lock period.
    async fn renew_lock(&self, ctx: &Context<'_>, id: ID) -> Result<Conversation> {
        let id = parse_id(&id, "id")?;
        Ok(Conversation(
            ctx.domain().renew_lock(ctx.actor()?, id).await.gql()?,
        ))
    }

    /// Releases the lock (the holder's own; an Editor or Admin may release anyone's).
    async fn release_lock(&self, ctx: &Context<'_>, id: ID) -> Result<Conversation> {
        let id = parse_id(&id, "id")?;
        Ok(Conversation(
            ctx.domain().release_lock(ctx.actor()?, id).await.gql()?,
        ))
    }

    /// Adds an internal note (at most 300 characters).
    async fn add_note(&self, ctx: &Context<'_>, conversation_id: ID, body: String) -> Result<Note> {
        let id = parse_id(&conversation_id, "conversationId")?;
        Ok(Note(
            ctx.domain().add_note(ctx.actor()?, id, &body).await.gql()?,
        ))
    }

    /// Adds and removes tags on a conversation.
    async fn set_conversation_tags(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        #[graphql(default)] add: Vec<ID>,
        #[graphql(default)] remove: Vec<ID>,
    ) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        let add = parse_ids(&add, "add")?;
        let remove = parse_ids(&remove, "remove")?;
        let d = ctx.domain();
        let actor = ctx.actor()?;
        d.set_conversation_tags(actor, id, &add, &remove)
            .await
            .gql()?;
        Ok(Conversation(d.conversation(actor, id).await.gql()?))
    }

    /// Deletes a conversation and its history (Admin only).
    async fn delete_conversation(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let id = parse_id(&id, "id")?;
        ctx.domain()
            .delete_conversation(ctx.actor()?, id)
            .await
            .gql()?;
        Ok(ID(id.to_string()))
    }
}
