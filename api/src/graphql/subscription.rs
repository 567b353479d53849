//! Live events for agent apps, filtered by what the subscriber may see.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, ID, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use domain::events::{EventPayload, QueueChange, Scope};
use domain::{Actor, Capability, Event};
use entity::{conversation, message, note};
use futures_util::{Stream, StreamExt, stream};
use sea_orm::EntityTrait;
use tokio::sync::broadcast::error::RecvError;

use super::context::{ContextExt, parse_id};
use super::error::{IntoGql, to_graphql};
use super::types::{Conversation, Message, Note, Staff};
use crate::events::InProcessBus;

/// An event stream that tells a slow subscriber it missed events instead of
/// silently skipping them.
fn events(ctx: &Context<'_>) -> impl Stream<Item = Result<Arc<Event>>> + use<> {
    let rx = ctx.data_unchecked::<InProcessBus>().subscribe();
    stream::unfold(rx, |mut rx| async move {
        let item = match rx.recv().await {
            Ok(event) => Ok(event),
            Err(RecvError::Lagged(missed)) => Err(async_graphql::Error::new(format!(
                "lagged: {missed} events were missed; refetch the current state"
            ))
            .extend_with(|_, e| e.set("code", "LAGGED"))),
            Err(RecvError::Closed) => return None,
        };
        Some((item, rx))
    })
}

fn visible(actor: &Actor, scope: &Scope) -> bool {
    actor.sees_all_conversations()
        || scope
            .assignee_id
            .is_some_and(|a| Some(a) == actor.user_id())
}

fn conversation_stream_actor(ctx: &Context<'_>) -> Result<Actor> {
    let actor = ctx.actor()?.clone();
    actor.require(Capability::HandleConversations).gql()?;
    Ok(actor)
}

#[derive(SimpleObject)]
pub struct ConversationEvent {
    /// What changed: created, assigned, status, tags, priority…
    change: String,
    conversation: Conversation,
}

#[derive(SimpleObject)]
pub struct LockEvent {
    conversation_id: ID,
    holder: Option<Staff>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct QueueEvent {
    department_id: Option<ID>,
    conversation_id: ID,
    change: QueueChangeKind,
    /// Conversations waiting in this department's queue after the change.
    queue_length: i64,
}

#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
pub enum QueueChangeKind {
    Entered,
    Assigned,
    Left,
}

impl From<QueueChange> for QueueChangeKind {
    fn from(c: QueueChange) -> Self {
        match c {
            QueueChange::Entered => Self::Entered,
            QueueChange::Assigned => Self::Assigned,
            QueueChange::Left => Self::Left,
        }
    }
}

fn optional_id(id: Option<ID>, field: &str) -> Result<Option<i64>> {
    id.map(|i| parse_id(&i, field)).transpose()
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Changes to conversations the caller may see (one, or all).
    async fn conversation_updated(
        &self,
        ctx: &Context<'_>,
        conversation_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<ConversationEvent>>> {
        let actor = conversation_stream_actor(ctx)?;
        let only = optional_id(conversation_id, "conversationId")?;
        let db = ctx.domain().db.clone();
        Ok(events(ctx).filter_map(move |item| {
            let (actor, db) = (actor.clone(), db.clone());
            async move {
                let event = match item {
                    Ok(e) => e,
                    Err(e) => return Some(Err(e)),
                };
                let EventPayload::ConversationUpdated { scope, change, .. } = &event.payload else {
                    return None;
                };
                if !visible(&actor, scope) || only.is_some_and(|id| id != scope.conversation_id) {
                    return None;
                }
                let row = conversation::Entity::find_by_id(scope.conversation_id)
                    .one(&db)
                    .await;
                match row {
                    Ok(Some(c)) => Some(Ok(ConversationEvent {
                        change: change.clone(),
                        conversation: Conversation(c),
                    })),
                    Ok(None) => None,
                    Err(e) => Some(Err(to_graphql(e.into()))),
                }
            }
        }))
    }

    /// Messages added to (or changing status in) conversations the caller may see.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        conversation_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<Message>>> {
        let actor = conversation_stream_actor(ctx)?;
        let only = optional_id(conversation_id, "conversationId")?;
        let db = ctx.domain().db.clone();
        Ok(events(ctx).filter_map(move |item| {
            let (actor, db) = (actor.clone(), db.clone());
            async move {
                let event = match item {
                    Ok(e) => e,
                    Err(e) => return Some(Err(e)),
                };
                let EventPayload::MessageAdded {
                    scope, message_id, ..
                } = &event.payload
                else {
                    return None;
                };
                if !visible(&actor, scope) || only.is_some_and(|id| id != scope.conversation_id) {
                    return None;
                }
                match message::Entity::find_by_id(*message_id).one(&db).await {
                    Ok(Some(m)) => Some(Ok(Message(m))),
                    Ok(None) => None,
                    Err(e) => Some(Err(to_graphql(e.into()))),
                }
            }
        }))
    }

    /// Notes added to a conversation the caller may see.
    async fn note_added(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> Result<impl Stream<Item = Result<Note>>> {
        let actor = conversation_stream_actor(ctx)?;
        let only = parse_id(&conversation_id, "conversationId")?;
        let db = ctx.domain().db.clone();
        Ok(events(ctx).filter_map(move |item| {
            let (actor, db) = (actor.clone(), db.clone());
            async move {
                let event = match item {
                    Ok(e) => e,
                    Err(e) => return Some(Err(e)),
                };
                let EventPayload::NoteAdded { scope, note_id } = &event.payload else {
                    return None;
                };
                if !visible(&actor, scope) || scope.conversation_id != only {
                    return None;
                }
                match note::Entity::find_by_id(*note_id).one(&db).await {
                    Ok(Some(n)) => Some(Ok(Note(n))),
                    Ok(None) => None,
                    Err(e) => Some(Err(to_graphql(e.into()))),
                }
            }
        }))
    }

    /// Lock taken, renewed or released.
    async fn lock_changed(
        &self,
        ctx: &Context<'_>,
        conversation_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<LockEvent>>> {
        let actor = conversation_stream_actor(ctx)?;
        let only = optional_id(conversation_id, "conversationId")?;
        let db = ctx.domain().db.clone();
        Ok(events(ctx).filter_map(move |item| {
            let (actor, db) = (actor.clone(), db.clone());
            async move {
                let event = match item {
                    Ok(e) => e,
                    Err(e) => return Some(Err(e)),
                };
                let EventPayload::LockChanged {
                    scope,
                    holder_id,
                    expires_at,
                } = &event.payload
                else {
                    return None;
                };
                if !visible(&actor, scope) || only.is_some_and(|id| id != scope.conversation_id) {
                    return None;
                }
                let holder = match holder_id {
                    Some(h) => match entity::user::Entity::find_by_id(*h).one(&db).await {
                        Ok(u) => u.map(Staff),
                        Err(e) => return Some(Err(to_graphql(e.into()))),
                    },
                    None => None,
                };
                Some(Ok(LockEvent {
                    conversation_id: ID(scope.conversation_id.to_string()),
                    holder,
                    expires_at: *expires_at,
                }))
            }
        }))
    }

    /// Queue movements; an Agent sees only its departments' queues.
    async fn queue_changed(
        &self,
        ctx: &Context<'_>,
        department_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<QueueEvent>>> {
        let actor = conversation_stream_actor(ctx)?;
        let only = optional_id(department_id, "departmentId")?;
        let mine = match actor.user_id() {
            Some(u) if !actor.sees_all_conversations() => {
                Some(ctx.domain().department_ids_of(u).await.gql()?)
            }
            _ => None,
        };
        Ok(events(ctx).filter_map(move |item| {
            let mine = mine.clone();
            async move {
                let event = match item {
                    Ok(e) => e,
                    Err(e) => return Some(Err(e)),
                };
                let EventPayload::QueueChanged {
                    department_id,
                    conversation_id,
                    change,
                    queue_length,
                } = &event.payload
                else {
                    return None;
                };
                let allowed = match &mine {
                    None => true,
                    Some(deps) => department_id.is_some_and(|d| deps.contains(&d)),
                };
                if !allowed || (only.is_some() && only != *department_id) {
                    return None;
                }
                Some(Ok(QueueEvent {
                    department_id: department_id.map(|d| ID(d.to_string())),
                    conversation_id: ID(conversation_id.to_string()),
                    change: (*change).into(),
                    queue_length: *queue_length,
                }))
            }
        }))
    }
}
