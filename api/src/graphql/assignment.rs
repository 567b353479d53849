//! Assignment, queues, transfers and presence: who works on what.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use domain::pagination::PageRequest;
use domain::presence::ONLINE_TARGET_SECS;
use entity::{AssignmentKind, Presence, Priority, assignment};

use super::context::{ContextExt, parse_id};
use super::error::IntoGql;
use super::loaders::loaders;
use super::types::{Conversation, Department, Staff, connection};

fn optional_id(id: Option<ID>, field: &str) -> Result<Option<i64>> {
    id.map(|i| parse_id(&i, field)).transpose()
}

/// One entry of a conversation's assignment history.
pub struct AssignmentRecord(pub assignment::Model);

// `fromAgent`/`fromDepartment` are GraphQL field names, not conversions.
#[allow(clippy::wrong_self_convention)]
#[Object]
impl AssignmentRecord {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// AUTO (routing), MANUAL (assign), CLAIM, TRANSFER, UNASSIGN, ESCALATION.
    async fn kind(&self) -> AssignmentKind {
        self.0.kind
    }
    async fn from_agent(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        let Some(id) = self.0.from_user_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).users.load_one(id).await?.map(Staff))
    }
    async fn to_agent(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        let Some(id) = self.0.to_user_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).users.load_one(id).await?.map(Staff))
    }
    async fn from_department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.0.from_department_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).departments.load_one(id).await?.map(Department))
    }
    async fn to_department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.0.to_department_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).departments.load_one(id).await?.map(Department))
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// The staff member who acted; empty for the routing worker.
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<Staff>> {
        let Some(id) = self.0.actor_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).users.load_one(id).await?.map(Staff))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Online time on one local day.
#[derive(SimpleObject)]
pub struct OnlineDay {
    pub date: NaiveDate,
    pub online_seconds: i64,
    /// At least the 6.5 h daily target.
    pub meets_target: bool,
}

/// A staff member's online time per day (KPI: 6.5 h a day).
#[derive(SimpleObject)]
pub struct OnlineTime {
    pub user_id: ID,
    pub time_zone: String,
    pub target_seconds_per_day: i64,
    pub total_online_seconds: i64,
    pub days: Vec<OnlineDay>,
}

#[derive(Default)]
pub struct AssignmentQuery;

#[Object]
impl AssignmentQuery {
    /// Conversations waiting for an agent, in the order routing serves them
    /// (urgent first, then oldest). Without `departmentId`: every queue the
    /// caller may see (an Agent: its departments' queues only).
    async fn queue(
        &self,
        ctx: &Context<'_>,
        department_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Conversation>> {
        let department_id = optional_id(department_id, "departmentId")?;
        let page = ctx
            .domain()
            .queue(ctx.actor()?, department_id, PageRequest::new(first, after))
            .await
            .gql()?;
        Ok(connection(page, Conversation))
    }

    /// Who had a conversation and why, oldest first.
    async fn assignment_history(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> Result<Vec<AssignmentRecord>> {
        let id = parse_id(&conversation_id, "conversationId")?;
        let rows = ctx
            .domain()
            .assignment_history(ctx.actor()?, id)
            .await
            .gql()?;
        Ok(rows.into_iter().map(AssignmentRecord).collect())
    }

    /// Online time per local day in `[from, to)` (at most 93 days). Without
    /// `userId`, the caller's own; someone else's needs metrics access.
    async fn online_time(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default_with = "String::from(\"UTC\")")] time_zone: String,
    ) -> Result<OnlineTime> {
        let actor = ctx.actor()?;
        let user_id = match optional_id(user_id, "userId")? {
            Some(id) => id,
            None => actor.user_id().ok_or_else(|| {
                super::error::to_graphql(domain::DomainError::invalid(
                    "userId",
                    "is required for API tokens",
                ))
            })?,
        };
        let days = ctx
            .domain()
            .online_time(actor, user_id, from, to, &time_zone)
            .await
            .gql()?;
        Ok(OnlineTime {
            user_id: ID(user_id.to_string()),
            time_zone,
            target_seconds_per_day: ONLINE_TARGET_SECS,
            total_online_seconds: days.iter().map(|d| d.online_seconds).sum(),
            days: days
                .into_iter()
                .map(|d| OnlineDay {
                    date: d.date,
                    online_seconds: d.online_seconds,
                    meets_target: d.online_seconds >= ONLINE_TARGET_SECS,
                })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct AssignmentMutation;

#[Object]
impl AssignmentMutation {
    /// Records the caller's activity; with `status`, sets its presence.
    /// Online lasts 5 minutes after the last activity (any request counts).
    async fn heartbeat(&self, ctx: &Context<'_>, status: Option<Presence>) -> Result<Staff> {
        Ok(Staff(
            ctx.domain().heartbeat(ctx.actor()?, status).await.gql()?,
        ))
    }

    /// The lock holder is typing a reply: keeps its lock from going idle.
    async fn typing(&self, ctx: &Context<'_>, conversation_id: ID) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        Ok(Conversation(
            ctx.domain().typing(ctx.actor()?, id).await.gql()?,
        ))
    }

    /// Assigns a conversation to a staff member (Editor/Admin), within the
    /// agent's capacity (`CONFLICT` when full).
    async fn assign(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        agent_id: ID,
    ) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        let agent = parse_id(&agent_id, "agentId")?;
        Ok(Conversation(
            ctx.domain().assign(ctx.actor()?, id, agent).await.gql()?,
        ))
    }

    /// Takes a queued conversation for oneself (an Agent: from its departments' queues).
    async fn claim(&self, ctx: &Context<'_>, conversation_id: ID) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        Ok(Conversation(
            ctx.domain()
                .claim_conversation(ctx.actor()?, id)
                .await
                .gql()?,
        ))
    }

    /// Moves a conversation to another agent and/or department (counted in
    /// `transferCount`). To a department alone, it waits in that queue.
    async fn transfer(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        to_agent_id: Option<ID>,
        to_department_id: Option<ID>,
        reason: Option<String>,
    ) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        let to_agent = optional_id(to_agent_id, "toAgentId")?;
        let to_department = optional_id(to_department_id, "toDepartmentId")?;
        Ok(Conversation(
            ctx.domain()
                .transfer(ctx.actor()?, id, to_agent, to_department, reason.as_deref())
                .await
                .gql()?,
        ))
    }

    /// Puts a conversation back in its department's queue.
    async fn unassign(&self, ctx: &Context<'_>, conversation_id: ID) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        Ok(Conversation(
            ctx.domain().unassign(ctx.actor()?, id).await.gql()?,
        ))
    }

    /// Resolves a conversation, freeing its agent for the next one.
    async fn resolve(&self, ctx: &Context<'_>, conversation_id: ID) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        Ok(Conversation(
            ctx.domain().resolve(ctx.actor()?, id).await.gql()?,
        ))
    }

    /// Reopens a resolved conversation; it stays with its agent when the agent
    /// has room, else it goes back to the queue.
    async fn reopen(&self, ctx: &Context<'_>, conversation_id: ID) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        Ok(Conversation(
            ctx.domain().reopen(ctx.actor()?, id).await.gql()?,
        ))
    }

    async fn set_priority(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        priority: Priority,
    ) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        Ok(Conversation(
            ctx.domain()
                .set_priority(ctx.actor()?, id, priority)
                .await
                .gql()?,
        ))
    }

    /// Sets the issue type (matched against agents' skills); null clears it.
    async fn set_topic(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        topic: Option<String>,
    ) -> Result<Conversation> {
        let id = parse_id(&conversation_id, "conversationId")?;
        Ok(Conversation(
            ctx.domain()
                .set_topic(ctx.actor()?, id, topic.as_deref())
                .await
                .gql()?,
        ))
    }
}
