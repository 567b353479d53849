//! Assignment: who works on a conversation. Manual `assign` (Editor/Admin),
//! `claim` from one's department queue, `transfer` to an agent or a
//! department (counted: transfer rate is a KPI), `unassign`, `resolve`,
//! `reopen`, priority and topic, and the department queues themselves.
//!
//! Every assignment goes through [`assign_if`]: one conditional UPDATE that
//! succeeds only while the conversation is still where the caller saw it and
//! the agent is below capacity, so no conversation is assigned twice and no
//! agent goes over its `max_concurrent`, whatever runs concurrently. Every
//! change is audited in its transaction and published after commit.
//!
//! Handing a conversation on (assign to someone else, transfer, unassign,
//! resolve) releases the actor's own lock so the next person can open it;
//! other changes by the lock holder count as lock activity. A live lock held
//! by someone else refuses the change with `CONFLICT`.

use chrono::{DateTime, Utc};
use entity::{
    AssignmentKind, ConversationStatus, Priority, assignment, conversation, department, user,
};
use sea_orm::sea_query::{Expr, ExprTrait, LockType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    Order, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;

use crate::events::{EventPayload, QueueChange, Scope};
use crate::lock::{clear_lock, live_holder};
use crate::pagination::{Page, PageRequest};
use crate::permissions::allows;
use crate::routing::{priority_rank, queued_since};
use crate::{Actor, Capability, Domain, DomainError, Result, audit};

/// Statuses in which a conversation is worked on and counts toward load.
pub const ACTIVE: [ConversationStatus; 2] = [ConversationStatus::Open, ConversationStatus::Pending];
/// Longest transfer reason.
pub const MAX_REASON_CHARS: usize = 300;
/// Longest topic.
pub const MAX_TOPIC_CHARS: usize = 60;

/// Changes made together with an assignment.
#[derive(Debug, Default, Clone, Copy)]
pub struct AssignExtra {
    /// Moves the conversation to this department (`Some(None)`: to none).
    pub department: Option<Option<i64>>,
    /// Counts a transfer.
    pub count_transfer: bool,
}

fn is_active(status: ConversationStatus) -> bool {
    ACTIVE.contains(&status)
}

/// `(SELECT count(*) FROM conversations WHERE assignee_id = :agent AND status IN ('open','pending'))`
fn load_of(agent: i64) -> Expr {
    Expr::SubQuery(
        None,
        Box::new(
            Query::select()
                .expr(Expr::col(conversation::Column::Id).count())
                .from(conversation::Entity)
                .and_where(conversation::Column::AssigneeId.eq(agent))
                .and_where(conversation::Column::Status.is_in(ACTIVE))
                .to_owned()
                .into(),
        ),
    )
}

/// `(SELECT max_concurrent FROM users WHERE id = :agent AND is_active)`: NULL,
/// so never greater than a count, for a missing or deactivated user.
fn capacity_of(agent: i64) -> Expr {
    Expr::SubQuery(
        None,
        Box::new(
            Query::select()
                .column(user::Column::MaxConcurrent)
                .from(user::Entity)
                .and_where(user::Column::Id.eq(agent))
                .and_where(user::Column::IsActive.eq(true))
                .to_owned()
                .into(),
        ),
    )
}

/// Locks the agent's `users` row for the rest of the transaction, so that
/// everything that adds to its load takes turns (PostgreSQL; SQLite
/// serialises writers anyway and sea-query leaves the clause out there).
///
/// `FOR NO KEY UPDATE`, not `FOR UPDATE`: the two conflict with each other
/// alike, but `FOR UPDATE` also conflicts with the `FOR KEY SHARE` lock that
/// PostgreSQL's foreign-key checks take on `users` rows. A transaction that
/// updates a conversation row and then has its FK to this user checked (say
/// `openConversation` setting `lock_holder_id`) would then wait for us while
/// we wait for its conversation row: a deadlock. Returns false when there is
/// no such user.
pub async fn lock_agent(txn: &DatabaseTransaction, agent: i64) -> Result<bool> {
    // SQLite has one writer and no row locks: sea-query leaves the clause out.
    Ok(user::Entity::find_by_id(agent)
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await?
        .is_some())
}

/// Assigns conversation `id` to `agent` if, at the moment of the UPDATE, it is
/// still assigned to `expected` (`None`: queued), open or pending, and the
/// agent has fewer open/pending conversations than its capacity. Returns
/// whether it did. Must run inside a transaction: the agent's row is locked
/// first ([`lock_agent`]) so that two workers assigning two conversations to
/// the same agent take turns, and the second one's count sees the first one's
/// row (READ COMMITTED gives each statement a fresh snapshot, taken after the
/// lock was granted). Two workers assigning the same conversation: the second
/// UPDATE waits for the first one's row lock, then re-checks
/// `assignee_id IS NULL` on the new row version and changes nothing.
pub async fn assign_if(
    txn: &DatabaseTransaction,
    id: i64,
    agent: i64,
    expected: Option<i64>,
    now: DateTime<Utc>,
    extra: AssignExtra,
) -> Result<bool> {
    if !lock_agent(txn, agent).await? {
        return Ok(false);
    }
    let mut update = conversation::Entity::update_many()
        .col_expr(conversation::Column::AssigneeId, Expr::value(agent))
        .col_expr(conversation::Column::AssignedAt, Expr::value(now))
        .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
        .filter(conversation::Column::Id.eq(id))
        .filter(conversation::Column::Status.is_in(ACTIVE))
        .filter(match expected {
            None => conversation::Column::AssigneeId.is_null(),
            Some(a) => conversation::Column::AssigneeId.eq(a),
        })
        .filter(load_of(agent).lt(capacity_of(agent)));
    if let Some(dep) = extra.department {
        update = update.col_expr(conversation::Column::DepartmentId, Expr::value(dep));
    }
    if extra.count_transfer {
        update = update.col_expr(
            conversation::Column::TransferCount,
            Expr::col(conversation::Column::TransferCount).add(1),
        );
    }
    if update.exec(txn).await?.rows_affected != 1 {
        return Ok(false);
    }
    user::Entity::update_many()
        .col_expr(user::Column::LastAssignedAt, Expr::value(now))
        .filter(user::Column::Id.eq(agent))
        .exec(txn)
        .await?;
    Ok(true)
}

/// One row of the assignment history.
pub async fn record_history(
    db: &impl ConnectionTrait,
    actor: &Actor,
    before: &conversation::Model,
    after: &conversation::Model,
    kind: AssignmentKind,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    assignment::ActiveModel {
        conversation_id: Set(after.id),
        kind: Set(kind),
        from_user_id: Set(before.assignee_id),
        to_user_id: Set(after.assignee_id),
        from_department_id: Set(before.department_id),
        to_department_id: Set(after.department_id),
        reason: Set(reason),
        actor_id: Set(actor.user_id()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// What the audit trail keeps of an assignment change.
pub fn assignment_state(c: &conversation::Model) -> serde_json::Value {
    json!({
        "assigneeId": c.assignee_id,
        "departmentId": c.department_id,
        "status": c.status,
        "priority": c.priority,
        "topic": c.topic,
        "transferCount": c.transfer_count,
        "reopenCount": c.reopen_count,
    })
}

/// How a change moved a conversation between queues: `(department, change)`.
pub fn queue_moves(
    before: &conversation::Model,
    after: &conversation::Model,
) -> Vec<(Option<i64>, QueueChange)> {
    let was = before.assignee_id.is_none() && is_active(before.status);
    let is = after.assignee_id.is_none() && is_active(after.status);
    match (was, is) {
        (true, false) if after.assignee_id.is_some() => {
            vec![(before.department_id, QueueChange::Assigned)]
        }
        (true, false) => vec![(before.department_id, QueueChange::Left)],
        (false, true) => vec![(after.department_id, QueueChange::Entered)],
        (true, true) if before.department_id != after.department_id => vec![
            (before.department_id, QueueChange::Left),
            (after.department_id, QueueChange::Entered),
        ],
        _ => vec![],
    }
}

/// Normalises a topic: trimmed, lower case, at most 60 characters; empty clears it.
pub fn parse_topic(topic: Option<&str>) -> Result<Option<String>> {
    let Some(t) = topic.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > MAX_TOPIC_CHARS {
        return Err(DomainError::invalid(
            "topic",
            format!("at most {MAX_TOPIC_CHARS} characters"),
        ));
    }
    Ok(Some(t.to_lowercase()))
}

fn parse_reason(reason: Option<&str>) -> Result<Option<String>> {
    let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(DomainError::invalid(
            "reason",
            format!("at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(Some(r.to_string()))
}

fn queue_cursor(c: &conversation::Model) -> String {
    let key = c.queued_at.unwrap_or(c.created_at).timestamp_micros();
    hex::encode(format!("{}:{key}:{}", rank(c.priority), c.id))
}

fn parse_queue_cursor(cursor: &str) -> Result<(i32, DateTime<Utc>, i64)> {
    let bad = || DomainError::invalid("after", "not a cursor from this list");
    let raw = hex::decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let mut parts = raw.split(':');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<i64>().ok())
            .ok_or_else(bad)
    };
    let (r, key, id) = (next()?, next()?, next()?);
    let at = DateTime::from_timestamp_micros(key).ok_or_else(bad)?;
    Ok((i32::try_from(r).map_err(|_| bad())?, at, id))
}

fn rank(p: Priority) -> i32 {
    match p {
        Priority::Urgent => 3,
        Priority::High => 2,
        Priority::Normal => 1,
        Priority::Low => 0,
    }
}

fn changed_meanwhile() -> DomainError {
    DomainError::Conflict("the conversation changed meanwhile: reload it and try again".into())
}

impl Domain {
    /// Conversations waiting in a queue, in the order routing serves them. An
    /// Agent sees only the queues of its departments (all of them when
    /// `department_id` is omitted); Editors and Admins see every queue,
    /// including conversations without a department.
    pub async fn queue(
        &self,
        actor: &Actor,
        department_id: Option<i64>,
        page: PageRequest,
    ) -> Result<Page<conversation::Model>> {
        actor.require(Capability::HandleConversations)?;
        page.validate()?;
        let mut q = conversation::Entity::find()
            .filter(conversation::Column::AssigneeId.is_null())
            .filter(conversation::Column::Status.is_in(ACTIVE));
        if !actor.sees_all_conversations() {
            let user_id = actor
                .user_id()
                .ok_or_else(|| DomainError::forbidden("queues belong to staff users"))?;
            let mine = self.department_ids_of(user_id).await?;
            match department_id {
                Some(d) if !mine.contains(&d) => {
                    return Err(DomainError::forbidden(
                        "you can only see your departments' queues",
                    ));
                }
                Some(_) => {}
                None => q = q.filter(conversation::Column::DepartmentId.is_in(mine)),
            }
        }
        if let Some(d) = department_id {
            q = q.filter(conversation::Column::DepartmentId.eq(d));
        }
        if let Some(after) = page.after.as_deref() {
            let (r, at, id) = parse_queue_cursor(after)?;
            q = q.filter(
                Condition::any().add(priority_rank().lt(r)).add(
                    Condition::all().add(priority_rank().eq(r)).add(
                        Condition::any().add(queued_since().gt(at)).add(
                            Condition::all()
                                .add(queued_since().eq(at))
                                .add(conversation::Column::Id.gt(id)),
                        ),
                    ),
                ),
            );
        }
        let rows = q
            .order_by(priority_rank(), Order::Desc)
            .order_by(queued_since(), Order::Asc)
            .order_by(conversation::Column::Id, Order::Asc)
            .limit(page.limit() + 1)
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(rows, &page, queue_cursor))
    }

    /// Conversations waiting in a department's queue (`None`: no department).
    /// Open conversations nobody is assigned to, in a department (or in none).
    pub async fn queue_length(&self, department_id: Option<i64>) -> Result<i64> {
        use sea_orm::PaginatorTrait;
        let q = conversation::Entity::find()
            .filter(conversation::Column::AssigneeId.is_null())
            .filter(conversation::Column::Status.is_in(ACTIVE))
            .filter(match department_id {
                Some(d) => conversation::Column::DepartmentId.eq(d),
                None => conversation::Column::DepartmentId.is_null(),
            });
        Ok(i64::try_from(q.count(&self.read).await?).unwrap_or(i64::MAX))
    }

    /// Who had the conversation, oldest first.
    pub async fn assignment_history(
        &self,
        actor: &Actor,
        conversation_id: i64,
    ) -> Result<Vec<assignment::Model>> {
        self.conversation(actor, conversation_id).await?;
        Ok(assignment::Entity::find()
            .filter(assignment::Column::ConversationId.eq(conversation_id))
            .order_by_asc(assignment::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Publishes what a committed change did: queue moves (with the new queue
    /// lengths), the conversation update, and the lock when it changed.
    pub(crate) async fn publish_changes(
        &self,
        before: &conversation::Model,
        after: &conversation::Model,
        change: &str,
    ) {
        for (department_id, queue_change) in queue_moves(before, after) {
            let queue_length = self.queue_length(department_id).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not count a queue for an event");
                -1
            });
            self.emit(EventPayload::QueueChanged {
                department_id,
                conversation_id: after.id,
                change: queue_change,
                queue_length,
            });
        }
        self.emit_about(conversation_updated(after, change), after);
        if before.lock_holder_id != after.lock_holder_id {
            self.emit_lock(after);
        }
    }

    /// Queues the CRM webhooks of the change (`change`, then `also`) in its
    /// transaction, commits, then publishes the same events.
    pub(crate) async fn commit_change(
        &self,
        txn: DatabaseTransaction,
        before: &conversation::Model,
        after: &conversation::Model,
        change: &str,
        also: Vec<EventPayload>,
    ) -> Result<()> {
        let events: Vec<EventPayload> = std::iter::once(conversation_updated(after, change))
            .chain(also)
            .collect();
        self.enqueue_webhooks_in(&txn, &events).await?;
        txn.commit().await?;
        self.publish_changes(before, after, change).await;
        for event in events.into_iter().skip(1) {
            self.emit(event);
        }
        Ok(())
    }

    /// Reads the row after the change, records history and audit.
    pub(crate) async fn record_change(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        before: &conversation::Model,
        action: &str,
        history: Option<(AssignmentKind, Option<String>)>,
        now: DateTime<Utc>,
    ) -> Result<conversation::Model> {
        let after = conversation::Entity::find_by_id(before.id)
            .one(txn)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", before.id))?;
        // SLA (domain::sla): due times follow priority, topic, department and status.
        let after = crate::sla::clock::on_change(txn, before, after, now).await?;
        if let Some((kind, reason)) = history {
            record_history(txn, actor, before, &after, kind, reason, now).await?;
        }
        audit::record(
            txn,
            actor,
            now,
            audit::Change::new(action, "conversation", before.id)
                .before(&assignment_state(before))
                .after(&assignment_state(&after)),
        )
        .await?;
        Ok(after)
    }

    /// The actor hands the conversation on: its own lock goes back to the pool.
    async fn release_own_lock(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        c: &conversation::Model,
    ) -> Result<()> {
        if let Some(user_id) = actor.user_id().filter(|u| c.lock_holder_id == Some(*u)) {
            clear_lock(
                txn,
                Condition::all()
                    .add(conversation::Column::Id.eq(c.id))
                    .add(conversation::Column::LockHolderId.eq(user_id)),
            )
            .await?;
        }
        Ok(())
    }

    /// A staff member who may be given conversations.
    async fn handler(&self, id: i64, field: &str) -> Result<user::Model> {
        match user::Entity::find_by_id(id).one(&self.db).await? {
            Some(u) if u.is_active && allows(u.role, Capability::HandleConversations) => Ok(u),
            _ => Err(DomainError::invalid(
                field,
                "is not an active staff member who handles conversations",
            )),
        }
    }

    /// Why `assign_if` refused: the conversation moved, or the agent is full.
    async fn assign_refusal(
        &self,
        before: &conversation::Model,
        agent: &user::Model,
    ) -> DomainError {
        let current = conversation::Entity::find_by_id(before.id)
            .one(&self.db)
            .await;
        match current {
            Ok(Some(c)) if c.assignee_id == before.assignee_id && is_active(c.status) => {
                let load = crate::routing::loads_of(&self.db, &[agent.id])
                    .await
                    .ok()
                    .and_then(|l| l.get(&agent.id).copied())
                    .unwrap_or_default();
                DomainError::Conflict(format!(
                    "{} is at capacity ({load} of {} conversations)",
                    agent.name, agent.max_concurrent
                ))
            }
            Ok(_) => changed_meanwhile(),
            Err(e) => e.into(),
        }
    }

    fn require_active(c: &conversation::Model) -> Result<()> {
        if is_active(c.status) {
            Ok(())
        } else {
            Err(DomainError::Conflict(
                "the conversation is resolved: reopen it first".into(),
            ))
        }
    }

    /// Assigns a conversation to a staff member (Editor/Admin), within the
    /// agent's capacity.
    pub async fn assign(
        &self,
        actor: &Actor,
        id: i64,
        agent_id: i64,
    ) -> Result<conversation::Model> {
        actor.require(Capability::ManageConversations)?;
        let before = self.conversation_for_action(actor, id).await?;
        let agent = self.handler(agent_id, "agentId").await?;
        Self::require_active(&before)?;
        if before.assignee_id == Some(agent_id) {
            return Ok(before);
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        if !assign_if(
            &txn,
            id,
            agent_id,
            before.assignee_id,
            now,
            AssignExtra::default(),
        )
        .await?
        {
            txn.rollback().await?;
            return Err(self.assign_refusal(&before, &agent).await);
        }
        if actor.user_id() != Some(agent_id) {
            self.release_own_lock(&txn, actor, &before).await?;
        }
        let after = self
            .record_change(
                &txn,
                actor,
                &before,
                "conversation.assign",
                Some((AssignmentKind::Manual, None)),
                now,
            )
            .await?;
        let change = if before.assignee_id.is_some() {
            "reassigned"
        } else {
            "assigned"
        };
        self.commit_change(txn, &before, &after, change, vec![])
            .await?;
        Ok(after)
    }

    /// Takes a queued conversation for oneself: an Agent from the queues of its
    /// departments, an Editor or Admin from any queue.
    pub async fn claim_conversation(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        actor.require(Capability::HandleConversations)?;
        let user_id = actor
            .user_id()
            .ok_or_else(|| DomainError::forbidden("conversations are claimed by staff users"))?;
        let before = conversation::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", id))?;
        if !actor.sees_all_conversations() && before.assignee_id != Some(user_id) {
            let mine = self.department_ids_of(user_id).await?;
            if !before.department_id.is_some_and(|d| mine.contains(&d)) {
                return Err(DomainError::forbidden(
                    "you can only claim from your departments' queues",
                ));
            }
        }
        let now = self.clock.now();
        if live_holder(&before, now, self.config.lock_idle).is_some_and(|h| h != user_id) {
            return Err(self.lock_held_error(id, now).await);
        }
        match before.assignee_id {
            Some(a) if a == user_id => return Ok(before),
            Some(_) => {
                return Err(DomainError::Conflict(
                    "the conversation is already assigned".into(),
                ));
            }
            None => {}
        }
        Self::require_active(&before)?;
        let me = self.handler(user_id, "conversationId").await?;
        let txn = self.db.begin().await?;
        if !assign_if(&txn, id, user_id, None, now, AssignExtra::default()).await? {
            txn.rollback().await?;
            return Err(self.assign_refusal(&before, &me).await);
        }
        self.touch_lock_activity(&txn, actor, &before).await?;
        let after = self
            .record_change(
                &txn,
                actor,
                &before,
                "conversation.claim",
                Some((AssignmentKind::Claim, None)),
                now,
            )
            .await?;
        self.commit_change(txn, &before, &after, "assigned", vec![])
            .await?;
        Ok(after)
    }

    /// Moves a conversation to another agent and/or department, with a reason.
    /// Agents may transfer their own conversations; Editors and Admins any.
    /// To a department alone, the conversation goes back to that queue.
    pub async fn transfer(
        &self,
        actor: &Actor,
        id: i64,
        to_agent: Option<i64>,
        to_department: Option<i64>,
        reason: Option<&str>,
    ) -> Result<conversation::Model> {
        actor.require(Capability::HandleConversations)?;
        if to_agent.is_none() && to_department.is_none() {
            return Err(DomainError::invalid(
                "toAgentId",
                "give toAgentId, toDepartmentId or both",
            ));
        }
        let reason = parse_reason(reason)?;
        let before = self.conversation_for_action(actor, id).await?;
        Self::require_active(&before)?;
        if let Some(d) = to_department {
            department::Entity::find_by_id(d)
                .one(&self.db)
                .await?
                .ok_or_else(|| DomainError::invalid("toDepartmentId", "no such department"))?;
        }
        let agent = match to_agent {
            Some(a) => Some(self.handler(a, "toAgentId").await?),
            None => None,
        };
        let department = to_department.or(before.department_id);
        let same_department = department == before.department_id;
        if same_department && to_agent == before.assignee_id {
            let field = if to_agent.is_some() {
                "toAgentId"
            } else {
                "toDepartmentId"
            };
            return Err(DomainError::invalid(
                field,
                "the conversation is already there",
            ));
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        match &agent {
            Some(agent) => {
                let extra = AssignExtra {
                    department: Some(department),
                    count_transfer: true,
                };
                if !assign_if(&txn, id, agent.id, before.assignee_id, now, extra).await? {
                    txn.rollback().await?;
                    return Err(self.assign_refusal(&before, agent).await);
                }
            }
            None => {
                let none: Option<i64> = None;
                let never: Option<DateTime<Utc>> = None;
                let moved = conversation::Entity::update_many()
                    .col_expr(conversation::Column::AssigneeId, Expr::value(none))
                    .col_expr(conversation::Column::AssignedAt, Expr::value(never))
                    .col_expr(conversation::Column::DepartmentId, Expr::value(department))
                    .col_expr(conversation::Column::QueuedAt, Expr::value(now))
                    .col_expr(
                        conversation::Column::TransferCount,
                        Expr::col(conversation::Column::TransferCount).add(1),
                    )
                    .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
                    .filter(conversation::Column::Id.eq(id))
                    .filter(conversation::Column::Status.is_in(ACTIVE))
                    .filter(match before.assignee_id {
                        Some(a) => conversation::Column::AssigneeId.eq(a),
                        None => conversation::Column::AssigneeId.is_null(),
                    })
                    .exec(&txn)
                    .await?;
                if moved.rows_affected != 1 {
                    txn.rollback().await?;
                    return Err(changed_meanwhile());
                }
            }
        }
        if actor.user_id() != to_agent {
            self.release_own_lock(&txn, actor, &before).await?;
        }
        let after = self
            .record_change(
                &txn,
                actor,
                &before,
                "conversation.transfer",
                Some((AssignmentKind::Transfer, reason)),
                now,
            )
            .await?;
        self.commit_change(txn, &before, &after, "transferred", vec![])
            .await?;
        Ok(after)
    }

    /// Puts a conversation back in its department's queue. Agents may give
    /// back their own; Editors and Admins any.
    pub async fn unassign(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        let before = self.conversation_for_action(actor, id).await?;
        let Some(assignee) = before.assignee_id else {
            return Ok(before);
        };
        Self::require_active(&before)?;
        let now = self.clock.now();
        let none: Option<i64> = None;
        let never: Option<DateTime<Utc>> = None;
        let txn = self.db.begin().await?;
        let done = conversation::Entity::update_many()
            .col_expr(conversation::Column::AssigneeId, Expr::value(none))
            .col_expr(conversation::Column::AssignedAt, Expr::value(never))
            .col_expr(conversation::Column::QueuedAt, Expr::value(now))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(id))
            .filter(conversation::Column::AssigneeId.eq(assignee))
            .filter(conversation::Column::Status.is_in(ACTIVE))
            .exec(&txn)
            .await?;
        if done.rows_affected != 1 {
            txn.rollback().await?;
            return Err(changed_meanwhile());
        }
        self.release_own_lock(&txn, actor, &before).await?;
        let after = self
            .record_change(
                &txn,
                actor,
                &before,
                "conversation.unassign",
                Some((AssignmentKind::Unassign, None)),
                now,
            )
            .await?;
        self.commit_change(txn, &before, &after, "unassigned", vec![])
            .await?;
        Ok(after)
    }

    /// Resolves a conversation, freeing its agent's capacity (routing then
    /// serves the queue). Agents may resolve their own; Editors and Admins any.
    pub async fn resolve(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        let before = self.conversation_for_action(actor, id).await?;
        if !is_active(before.status) {
            return Err(DomainError::Conflict(
                "the conversation is already resolved".into(),
            ));
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let done = conversation::Entity::update_many()
            .col_expr(
                conversation::Column::Status,
                Expr::value(ConversationStatus::Resolved),
            )
            .col_expr(conversation::Column::ResolvedAt, Expr::value(now))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(id))
            .filter(conversation::Column::Status.is_in(ACTIVE))
            .exec(&txn)
            .await?;
        if done.rows_affected != 1 {
            txn.rollback().await?;
            return Err(changed_meanwhile());
        }
        self.release_own_lock(&txn, actor, &before).await?;
        // Automation: the CSAT survey, queued with the resolution.
        let survey = self.queue_resolution_survey(&txn, &before, now).await?;
        let after = self
            .record_change(&txn, actor, &before, "conversation.resolve", None, now)
            .await?;
        self.commit_change(txn, &before, &after, "resolved", survey.events)
            .await?;
        if survey.queued {
            self.outbox.wake.notify_one();
        }
        Ok(after)
    }

    /// Reopens a resolved or closed conversation (`reopenCount` + 1). It stays
    /// with its assignee while the assignee has room; otherwise it goes back to
    /// the queue.
    pub async fn reopen(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        let before = self.conversation_for_action(actor, id).await?;
        if is_active(before.status) {
            return Err(DomainError::Conflict(
                "the conversation is not resolved".into(),
            ));
        }
        let now = self.clock.now();
        let never: Option<DateTime<Utc>> = None;
        let reopen = || {
            conversation::Entity::update_many()
                .col_expr(
                    conversation::Column::Status,
                    Expr::value(ConversationStatus::Open),
                )
                .col_expr(conversation::Column::ResolvedAt, Expr::value(never))
                .col_expr(conversation::Column::ClosedAt, Expr::value(never))
                .col_expr(
                    conversation::Column::ReopenCount,
                    Expr::col(conversation::Column::ReopenCount).add(1),
                )
                .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
                .filter(conversation::Column::Id.eq(id))
                .filter(conversation::Column::Status.is_not_in(ACTIVE))
        };
        let txn = self.db.begin().await?;
        let mut kept = false;
        if let Some(assignee) = before.assignee_id {
            lock_agent(&txn, assignee).await?;
            kept = reopen()
                .filter(load_of(assignee).lt(capacity_of(assignee)))
                .exec(&txn)
                .await
                .map_err(reopen_error)?
                .rows_affected
                == 1;
        }
        let mut history = None;
        if !kept {
            let none: Option<i64> = None;
            let done = reopen()
                .col_expr(conversation::Column::AssigneeId, Expr::value(none))
                .col_expr(conversation::Column::AssignedAt, Expr::value(never))
                .col_expr(conversation::Column::QueuedAt, Expr::value(now))
                .exec(&txn)
                .await
                .map_err(reopen_error)?;
            if done.rows_affected != 1 {
                txn.rollback().await?;
                return Err(changed_meanwhile());
            }
            if before.assignee_id.is_some() {
                history = Some((
                    AssignmentKind::Unassign,
                    Some("reopened while the assignee was at capacity".to_string()),
                ));
            }
        }
        self.touch_lock_activity(&txn, actor, &before).await?;
        let after = self
            .record_change(&txn, actor, &before, "conversation.reopen", history, now)
            .await?;
        self.commit_change(txn, &before, &after, "reopened", vec![])
            .await?;
        Ok(after)
    }

    /// Sets the priority (the queue serves urgent first).
    pub async fn set_priority(
        &self,
        actor: &Actor,
        id: i64,
        priority: Priority,
    ) -> Result<conversation::Model> {
        let before = self.conversation_for_action(actor, id).await?;
        if before.priority == priority {
            return Ok(before);
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        conversation::Entity::update_many()
            .col_expr(conversation::Column::Priority, Expr::value(priority))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        self.touch_lock_activity(&txn, actor, &before).await?;
        let after = self
            .record_change(&txn, actor, &before, "conversation.priority", None, now)
            .await?;
        self.commit_change(txn, &before, &after, "priority", vec![])
            .await?;
        Ok(after)
    }

    /// Sets the topic (matched against agents' skills); `None` or blank clears it.
    pub async fn set_topic(
        &self,
        actor: &Actor,
        id: i64,
        topic: Option<&str>,
    ) -> Result<conversation::Model> {
        let topic = parse_topic(topic)?;
        let before = self.conversation_for_action(actor, id).await?;
        if before.topic == topic {
            return Ok(before);
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        conversation::Entity::update_many()
            .col_expr(conversation::Column::Topic, Expr::value(topic))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        self.touch_lock_activity(&txn, actor, &before).await?;
        let after = self
            .record_change(&txn, actor, &before, "conversation.topic", None, now)
            .await?;
        self.commit_change(txn, &before, &after, "topic", vec![])
            .await?;
        Ok(after)
    }
}

/// The event of a conversation change (`change`: "assigned", "resolved"…).
pub(crate) fn conversation_updated(after: &conversation::Model, change: &str) -> EventPayload {
    EventPayload::ConversationUpdated {
        scope: Scope::from(after),
        status: after.status,
        priority: after.priority,
        change: change.to_string(),
    }
}

/// Reopening must not make a second open conversation for the same contact.
fn reopen_error(err: sea_orm::DbErr) -> DomainError {
    match DomainError::from(err) {
        DomainError::Conflict(_) => DomainError::Conflict(
            "the contact already has an open conversation on this channel".into(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(
        assignee: Option<i64>,
        dep: Option<i64>,
        status: ConversationStatus,
    ) -> conversation::Model {
        let now = Utc::now();
        conversation::Model {
            id: 1,
            channel_id: 1,
            contact_id: 1,
            status,
            priority: Priority::Normal,
            topic: None,
            language: None,
            department_id: dep,
            assignee_id: assignee,
            lock_holder_id: None,
            lock_acquired_at: None,
            lock_last_activity_at: None,
            lock_expires_at: None,
            sla_policy_id: None,
            first_response_due_at: None,
            resolution_due_at: None,
            sla_paused_at: None,
            important_wait_due_at: None,
            sla_next_at: None,
            escalation_level: 0,
            transfer_count: 0,
            reopen_count: 0,
            queued_at: None,
            assigned_at: None,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            last_message_at: None,
            last_inbound_at: None,
            csat: None,
            nps: None,
            converted_at: None,
            conversion_amount_micros: None,
            archived_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn queue_moves_follow_the_assignee_and_department() {
        use ConversationStatus::*;
        let queued = conv(None, Some(1), Open);
        assert_eq!(
            queue_moves(&queued, &conv(Some(5), Some(1), Open)),
            vec![(Some(1), QueueChange::Assigned)]
        );
        assert_eq!(
            queue_moves(&queued, &conv(None, Some(1), Resolved)),
            vec![(Some(1), QueueChange::Left)]
        );
        assert_eq!(
            queue_moves(&conv(Some(5), Some(1), Open), &conv(None, Some(2), Open)),
            vec![(Some(2), QueueChange::Entered)]
        );
        assert_eq!(
            queue_moves(&queued, &conv(None, Some(2), Open)),
            vec![
                (Some(1), QueueChange::Left),
                (Some(2), QueueChange::Entered)
            ]
        );
        assert!(queue_moves(&conv(Some(5), None, Open), &conv(Some(6), None, Open)).is_empty());
    }

    #[test]
    fn topics_are_normalised_and_bounded() {
        assert_eq!(
            parse_topic(Some(" Billing ")).unwrap(),
            Some("billing".into())
        );
        assert_eq!(parse_topic(Some("  ")).unwrap(), None);
        assert!(parse_topic(Some(&"x".repeat(61))).is_err());
    }

    #[test]
    fn a_queue_cursor_round_trips() {
        let mut c = conv(None, None, ConversationStatus::Open);
        c.priority = Priority::High;
        let (r, at, id) = parse_queue_cursor(&queue_cursor(&c)).unwrap();
        assert_eq!((r, id), (2, 1));
        assert_eq!(at.timestamp_micros(), c.created_at.timestamp_micros());
    }
}
