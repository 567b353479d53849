//! Live events for agent apps, filtered by what the subscriber may see.
//!
//! Every subscription reads this process's local bus (which Redis feeds with
//! the other instances' events when configured) and filters each event by
//! permission using what the event itself carries (`Scope`: conversation,
//! assignee, department), so filtering costs no database read. Rows a result
//! needs are read through the event's shared cache ([`LiveEvent`]): once per
//! event, whatever the number of subscribers. Rows only some selections need
//! (a lock's holder, an alert's conversation, a presence change's agent) are
//! read only when selected.
//!
//! Who sees what: Admin and Editor every conversation; an Agent the
//! conversations assigned to it, and the queues and colleagues' presence of
//! its departments; an Analyst (and any API token) none of the conversation
//! streams.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_graphql::{
    ComplexObject, Context, Enum, ErrorExtensions, ID, InputObject, Result, SimpleObject,
    Subscription,
};
use chrono::{DateTime, Utc};
use domain::events::{EventPayload, QueueChange, Scope};
use domain::{Actor, Capability, DomainError};
use entity::{ConversationStatus, Presence, Priority, conversation};
use futures_util::{Stream, StreamExt, stream};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use tokio::sync::broadcast::{self, error::RecvError};

use super::context::{ContextExt, parse_id};
use super::error::{IntoGql, to_graphql};
use super::types::{Conversation, Message, Note, Staff};
use crate::events::{BusMetrics, InProcessBus, LiveEvent};

/// One subscriber's stream of the local bus. A subscriber that fell behind
/// gets a LAGGED error telling it how many events it missed, and goes on.
fn events(
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    metrics: Arc<BusMetrics>,
) -> impl Stream<Item = Result<Arc<LiveEvent>>> {
    stream::unfold(rx, move |mut rx| {
        let metrics = metrics.clone();
        async move {
            let item = match rx.recv().await {
                Ok(event) => Ok(event),
                Err(RecvError::Lagged(missed)) => {
                    metrics.lagged.fetch_add(missed, Ordering::Relaxed);
                    Err(async_graphql::Error::new(format!(
                        "lagged: {missed} events were missed; refetch the current state"
                    ))
                    .extend_with(|_, e| e.set("code", "LAGGED")))
                }
                Err(RecvError::Closed) => return None,
            };
            Some((item, rx))
        }
    })
}

/// The events one subscription selects and turns into results, from now on.
fn live<T, F, Fut>(ctx: &Context<'_>, select: F) -> impl Stream<Item = Result<T>> + use<T, F, Fut>
where
    F: FnMut(Arc<LiveEvent>) -> Option<Fut> + Send + 'static,
    Fut: Future<Output = Option<Result<T>>> + Send + 'static,
    T: Send + 'static,
{
    let bus = ctx.data_unchecked::<InProcessBus>();
    live_from(bus.subscribe(), bus.metrics().clone(), select)
}

/// `select` returns None to skip an event, or the future of its result
/// (which may still skip it); errors such as LAGGED pass through.
fn live_from<T, F, Fut>(
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    metrics: Arc<BusMetrics>,
    mut select: F,
) -> impl Stream<Item = Result<T>>
where
    F: FnMut(Arc<LiveEvent>) -> Option<Fut> + Send + 'static,
    Fut: Future<Output = Option<Result<T>>> + Send + 'static,
    T: Send + 'static,
{
    events(rx, metrics.clone())
        .filter_map(move |item| {
            let work = item.map(&mut select);
            async move {
                match work {
                    Err(e) => Some(Err(e)),
                    Ok(None) => None,
                    Ok(Some(fut)) => fut.await,
                }
            }
        })
        .inspect(move |item| {
            if item.is_ok() {
                metrics.delivered.fetch_add(1, Ordering::Relaxed);
            }
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

/// The departments an Agent is limited to (None: every department).
async fn limited_departments(ctx: &Context<'_>, actor: &Actor) -> Result<Option<Vec<i64>>> {
    match actor.user_id() {
        Some(u) if !actor.sees_all_conversations() => {
            Ok(Some(ctx.domain().department_ids_of(u).await.gql()?))
        }
        _ => Ok(None),
    }
}

fn id(v: i64) -> ID {
    ID(v.to_string())
}

fn optional_id(id: Option<ID>, field: &str) -> Result<Option<i64>> {
    id.map(|i| parse_id(&i, field)).transpose()
}

fn db_error(e: sea_orm::DbErr) -> async_graphql::Error {
    to_graphql(DomainError::from(e))
}

#[derive(SimpleObject)]
pub struct ConversationEvent {
    /// What changed: created, assigned, transferred, status, tags, priority…
    change: String,
    conversation: Conversation,
    /// When it changed.
    at: DateTime<Utc>,
}

/// Narrows `conversationUpdated`; every condition is checked against the
/// event itself, without reading the database.
#[derive(InputObject, Default)]
pub struct ConversationEventFilter {
    conversation_id: Option<ID>,
    department_id: Option<ID>,
    assignee_id: Option<ID>,
    /// true: only conversations nobody is assigned to; false: only assigned ones.
    unassigned: Option<bool>,
    status: Option<Vec<ConversationStatus>>,
    priority: Option<Vec<Priority>>,
    /// Only these changes (created, assigned, transferred, status, tags…).
    changes: Option<Vec<String>>,
}

struct ConversationMatch {
    conversation_id: Option<i64>,
    department_id: Option<i64>,
    assignee_id: Option<i64>,
    unassigned: Option<bool>,
    status: Option<Vec<ConversationStatus>>,
    priority: Option<Vec<Priority>>,
    changes: Option<Vec<String>>,
}

impl ConversationEventFilter {
    fn parse(self, conversation_id: Option<i64>) -> Result<ConversationMatch> {
        let filter_id = optional_id(self.conversation_id, "filter.conversationId")?;
        Ok(ConversationMatch {
            conversation_id: conversation_id.or(filter_id),
            department_id: optional_id(self.department_id, "filter.departmentId")?,
            assignee_id: optional_id(self.assignee_id, "filter.assigneeId")?,
            unassigned: self.unassigned,
            status: self.status,
            priority: self.priority,
            changes: self.changes,
        })
    }
}

impl ConversationMatch {
    fn matches(
        &self,
        scope: &Scope,
        status: ConversationStatus,
        priority: Priority,
        change: &str,
    ) -> bool {
        let is = |want: Option<i64>, got: Option<i64>| want.is_none() || want == got;
        is(self.conversation_id, Some(scope.conversation_id))
            && is(self.department_id, scope.department_id)
            && is(self.assignee_id, scope.assignee_id)
            && self
                .unassigned
                .is_none_or(|u| u == scope.assignee_id.is_none())
            && self.status.as_ref().is_none_or(|s| s.contains(&status))
            && self.priority.as_ref().is_none_or(|p| p.contains(&priority))
            && self
                .changes
                .as_ref()
                .is_none_or(|c| c.iter().any(|c| c == change))
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LockEvent {
    conversation_id: ID,
    expires_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
    #[graphql(skip)]
    live: Arc<LiveEvent>,
}

#[ComplexObject]
impl LockEvent {
    /// Who holds the lock now; null when it was released.
    async fn holder(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        let user = self
            .live
            .staff(&ctx.domain().read)
            .await
            .map_err(db_error)?;
        Ok(user.cloned().map(Staff))
    }
}

#[derive(SimpleObject)]
pub struct QueueEvent {
    department_id: Option<ID>,
    conversation_id: ID,
    change: QueueChangeKind,
    /// Conversations waiting in this department's queue after the change.
    queue_length: i64,
    at: DateTime<Utc>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
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

/// An SLA warning, breach or escalation.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SlaAlertEvent {
    conversation_id: ID,
    department_id: Option<ID>,
    assignee_id: Option<ID>,
    /// Which clock: e.g. first_response, resolution.
    kind: String,
    /// How far: e.g. warning (80 %), breach, escalation.
    level: String,
    /// 0 for the first clock; each reopen starts a new resolution cycle.
    cycle: i32,
    at: DateTime<Utc>,
    #[graphql(skip)]
    live: Arc<LiveEvent>,
}

#[ComplexObject]
impl SlaAlertEvent {
    async fn conversation(&self, ctx: &Context<'_>) -> Result<Option<Conversation>> {
        let row = self
            .live
            .conversation(&ctx.domain().read)
            .await
            .map_err(db_error)?;
        Ok(row.cloned().map(Conversation))
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AgentPresenceEvent {
    agent_id: ID,
    presence: Presence,
    department_ids: Vec<ID>,
    at: DateTime<Utc>,
    #[graphql(skip)]
    live: Arc<LiveEvent>,
}

#[ComplexObject]
impl AgentPresenceEvent {
    async fn agent(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        let user = self
            .live
            .staff(&ctx.domain().read)
            .await
            .map_err(db_error)?;
        Ok(user.cloned().map(Staff))
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AssignmentEventKind {
    /// The conversation is now the caller's.
    Assigned,
    /// It no longer is (unassigned, or transferred to someone else).
    Unassigned,
}

#[derive(SimpleObject)]
pub struct AssignmentEvent {
    kind: AssignmentEventKind,
    /// The change as the domain named it: assigned, unassigned, transferred…
    change: String,
    conversation_id: ID,
    /// The conversation as it is now; null once it is no longer the caller's.
    conversation: Option<Conversation>,
    at: DateTime<Utc>,
}

/// Changes that move a conversation to someone (as `domain::assignment` names them).
const ASSIGNING: [&str; 4] = ["assigned", "reassigned", "claimed", "transferred"];

/// Whether a conversation event moves a conversation to or away from `me`.
/// `mine` is the set of conversations known to be assigned to me; it is
/// kept up to date, so that a conversation taken away (whose event names the
/// new assignee, or none) is recognised.
fn assignment_change(
    me: i64,
    mine: &mut HashSet<i64>,
    scope: &Scope,
    change: &str,
) -> Option<AssignmentEventKind> {
    let id = scope.conversation_id;
    if scope.assignee_id == Some(me) {
        if change == "unassigned" {
            // An emitter that reports the former assignee.
            mine.remove(&id);
            return Some(AssignmentEventKind::Unassigned);
        }
        let new = mine.insert(id);
        (new || ASSIGNING.contains(&change)).then_some(AssignmentEventKind::Assigned)
    } else if mine.remove(&id) {
        Some(AssignmentEventKind::Unassigned)
    } else {
        None
    }
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Changes to conversations the caller may see (one, or those matching the filter).
    async fn conversation_updated(
        &self,
        ctx: &Context<'_>,
        conversation_id: Option<ID>,
        filter: Option<ConversationEventFilter>,
    ) -> Result<impl Stream<Item = Result<ConversationEvent>>> {
        let actor = conversation_stream_actor(ctx)?;
        let only = optional_id(conversation_id, "conversationId")?;
        let wanted = filter.unwrap_or_default().parse(only)?;
        let db = ctx.domain().read.clone();
        Ok(live(ctx, move |live| {
            let EventPayload::ConversationUpdated {
                scope,
                status,
                priority,
                change,
            } = live.payload()
            else {
                return None;
            };
            if !visible(&actor, scope) || !wanted.matches(scope, *status, *priority, change) {
                return None;
            }
            let db = db.clone();
            Some(async move {
                let EventPayload::ConversationUpdated { change, .. } = live.payload() else {
                    return None;
                };
                match live.conversation(&db).await {
                    Ok(Some(c)) => Some(Ok(ConversationEvent {
                        change: change.clone(),
                        conversation: Conversation(c.clone()),
                        at: live.event.at,
                    })),
                    Ok(None) => None,
                    Err(e) => Some(Err(db_error(e))),
                }
            })
        }))
    }

    /// Messages added to (inbound or outbound), or changing delivery status
    /// in, conversations the caller may see.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        conversation_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<Message>>> {
        let actor = conversation_stream_actor(ctx)?;
        let only = optional_id(conversation_id, "conversationId")?;
        let db = ctx.domain().read.clone();
        Ok(live(ctx, move |live| {
            let EventPayload::MessageAdded { scope, .. } = live.payload() else {
                return None;
            };
            if !visible(&actor, scope) || only.is_some_and(|id| id != scope.conversation_id) {
                return None;
            }
            let db = db.clone();
            Some(async move {
                match live.message(&db).await {
                    Ok(Some(m)) => Some(Ok(Message(m.clone()))),
                    Ok(None) => None,
                    Err(e) => Some(Err(db_error(e))),
                }
            })
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
        let db = ctx.domain().read.clone();
        Ok(live(ctx, move |live| {
            let EventPayload::NoteAdded { scope, .. } = live.payload() else {
                return None;
            };
            if !visible(&actor, scope) || scope.conversation_id != only {
                return None;
            }
            let db = db.clone();
            Some(async move {
                match live.note(&db).await {
                    Ok(Some(n)) => Some(Ok(Note(n.clone()))),
                    Ok(None) => None,
                    Err(e) => Some(Err(db_error(e))),
                }
            })
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
        Ok(live(ctx, move |live| {
            let EventPayload::LockChanged {
                scope, expires_at, ..
            } = live.payload()
            else {
                return None;
            };
            if !visible(&actor, scope) || only.is_some_and(|id| id != scope.conversation_id) {
                return None;
            }
            let event = LockEvent {
                conversation_id: id(scope.conversation_id),
                expires_at: *expires_at,
                at: live.event.at,
                live: live.clone(),
            };
            Some(async move { Some(Ok(event)) })
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
        let mine = limited_departments(ctx, &actor).await?;
        Ok(live(ctx, move |live| {
            let EventPayload::QueueChanged {
                department_id,
                conversation_id,
                change,
                queue_length,
            } = live.payload()
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
            let event = QueueEvent {
                department_id: department_id.map(id),
                conversation_id: id(*conversation_id),
                change: (*change).into(),
                queue_length: *queue_length,
                at: live.event.at,
            };
            Some(async move { Some(Ok(event)) })
        }))
    }

    /// SLA warnings, breaches and escalations on conversations the caller may see.
    async fn sla_alert(
        &self,
        ctx: &Context<'_>,
        department_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<SlaAlertEvent>>> {
        let actor = conversation_stream_actor(ctx)?;
        let only = optional_id(department_id, "departmentId")?;
        Ok(live(ctx, move |live| {
            let EventPayload::SlaAlert {
                scope,
                kind,
                level,
                cycle,
            } = live.payload()
            else {
                return None;
            };
            if !visible(&actor, scope) || (only.is_some() && only != scope.department_id) {
                return None;
            }
            let event = SlaAlertEvent {
                conversation_id: id(scope.conversation_id),
                department_id: scope.department_id.map(id),
                assignee_id: scope.assignee_id.map(id),
                kind: kind.clone(),
                level: level.clone(),
                cycle: *cycle,
                at: live.event.at,
                live: live.clone(),
            };
            Some(async move { Some(Ok(event)) })
        }))
    }

    /// Agents going online, away or offline. An Agent sees its departments'
    /// colleagues; Admin and Editor everyone.
    async fn agent_presence_changed(
        &self,
        ctx: &Context<'_>,
        department_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<AgentPresenceEvent>>> {
        let actor = ctx.actor()?.clone();
        actor.require(Capability::ListStaff).gql()?;
        let only = optional_id(department_id, "departmentId")?;
        let mine = limited_departments(ctx, &actor).await?;
        Ok(live(ctx, move |live| {
            let EventPayload::AgentPresenceChanged {
                user_id,
                presence,
                department_ids,
            } = live.payload()
            else {
                return None;
            };
            let allowed = match &mine {
                None => true,
                Some(deps) => department_ids.iter().any(|d| deps.contains(d)),
            };
            if !allowed || only.is_some_and(|d| !department_ids.contains(&d)) {
                return None;
            }
            let event = AgentPresenceEvent {
                agent_id: id(*user_id),
                presence: *presence,
                department_ids: department_ids.iter().copied().map(id).collect(),
                at: live.event.at,
                live: live.clone(),
            };
            Some(async move { Some(Ok(event)) })
        }))
    }

    /// Conversations assigned to the caller, or taken away from it
    /// (unassigned or transferred to someone else): an agent app's inbox.
    async fn my_assignments(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<AssignmentEvent>>> {
        let actor = conversation_stream_actor(ctx)?;
        let me = actor.user_id().ok_or_else(|| {
            to_graphql(DomainError::forbidden("assignments belong to staff users"))
        })?;
        // Subscribe before reading what is mine, so no change falls in between.
        let bus = ctx.data_unchecked::<InProcessBus>();
        let rx = bus.subscribe();
        let db = ctx.domain().read.clone();
        let mut mine: HashSet<i64> = conversation::Entity::find()
            .select_only()
            .column(conversation::Column::Id)
            .filter(conversation::Column::AssigneeId.eq(me))
            .into_tuple::<i64>()
            .all(&db)
            .await
            .map_err(db_error)?
            .into_iter()
            .collect();
        Ok(live_from(rx, bus.metrics().clone(), move |live| {
            let EventPayload::ConversationUpdated { scope, change, .. } = live.payload() else {
                return None;
            };
            let kind = assignment_change(me, &mut mine, scope, change)?;
            let db = db.clone();
            Some(async move {
                let EventPayload::ConversationUpdated { scope, change, .. } = live.payload() else {
                    return None;
                };
                let conversation = match kind {
                    AssignmentEventKind::Unassigned => None,
                    AssignmentEventKind::Assigned => match live.conversation(&db).await {
                        Ok(row) => row
                            .filter(|c| c.assignee_id == Some(me))
                            .cloned()
                            .map(Conversation),
                        Err(e) => return Some(Err(db_error(e))),
                    },
                };
                Some(Ok(AssignmentEvent {
                    kind,
                    change: change.clone(),
                    conversation_id: id(scope.conversation_id),
                    conversation,
                    at: live.event.at,
                }))
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(conversation_id: i64, assignee_id: Option<i64>) -> Scope {
        Scope {
            conversation_id,
            assignee_id,
            department_id: Some(1),
        }
    }

    #[test]
    fn an_assignment_to_me_and_a_transfer_away_are_both_seen() {
        let mut mine = HashSet::new();
        let got = assignment_change(7, &mut mine, &scope(1, Some(7)), "assigned");
        assert_eq!(got, Some(AssignmentEventKind::Assigned));
        // Transferred to someone else: the event names the new assignee.
        let got = assignment_change(7, &mut mine, &scope(1, Some(8)), "transferred");
        assert_eq!(got, Some(AssignmentEventKind::Unassigned));
        assert!(mine.is_empty());
    }

    #[test]
    fn an_unassignment_is_seen_whichever_assignee_the_event_names() {
        let mut mine = HashSet::from([1, 2]);
        let none = assignment_change(7, &mut mine, &scope(1, None), "unassigned");
        let former = assignment_change(7, &mut mine, &scope(2, Some(7)), "unassigned");
        assert_eq!(none, Some(AssignmentEventKind::Unassigned));
        assert_eq!(former, Some(AssignmentEventKind::Unassigned));
        assert!(mine.is_empty());
    }

    #[test]
    fn other_changes_and_other_agents_conversations_are_not_assignments() {
        let mut mine = HashSet::from([1]);
        assert_eq!(
            assignment_change(7, &mut mine, &scope(1, Some(7)), "tags"),
            None
        );
        assert_eq!(
            assignment_change(7, &mut mine, &scope(2, Some(8)), "assigned"),
            None
        );
        // Created already assigned to me (e.g. by routing): mine from now on.
        assert_eq!(
            assignment_change(7, &mut mine, &scope(3, Some(7)), "created"),
            Some(AssignmentEventKind::Assigned)
        );
    }

    #[test]
    fn the_conversation_filter_is_checked_against_the_event_alone() {
        let wanted = ConversationEventFilter {
            department_id: Some(ID("1".into())),
            status: Some(vec![ConversationStatus::Open]),
            changes: Some(vec!["tags".into()]),
            unassigned: Some(false),
            ..Default::default()
        }
        .parse(None)
        .unwrap();
        let open = ConversationStatus::Open;
        let normal = Priority::Normal;
        assert!(wanted.matches(&scope(1, Some(7)), open, normal, "tags"));
        assert!(!wanted.matches(&scope(1, None), open, normal, "tags"));
        assert!(!wanted.matches(&scope(1, Some(7)), open, normal, "status"));
        assert!(!wanted.matches(
            &scope(1, Some(7)),
            ConversationStatus::Closed,
            normal,
            "tags"
        ));
    }
}
