//! The SLA clocks of a conversation: started when it is created from an
//! inbound message, paused while waiting on the customer (when the policy
//! says so), resumed when the customer writes, recomputed when priority,
//! topic, department or status change. Due times are stored on the row.
//!
//! Recomputing keeps the business time already used: with a new target the
//! remaining time is `new target - used`, counted from now in the new
//! calendar. No pause total needs storing: a resume shifts the due times by
//! the business time spent waiting.

use chrono::{DateTime, Duration, Utc};
use entity::{ConversationStatus, conversation};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::policy::{Effective, Rules};
use super::schedule;
use crate::assignment::ACTIVE;
use crate::audit::{self, Change};
use crate::events::{EventPayload, Scope};
use crate::{Actor, Domain, DomainError, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
struct Due {
    policy_id: Option<i64>,
    first_response: Option<DateTime<Utc>>,
    resolution: Option<DateTime<Utc>>,
    important_wait: Option<DateTime<Utc>>,
    paused_at: Option<DateTime<Utc>>,
}

impl Due {
    fn of(c: &conversation::Model) -> Self {
        Self {
            policy_id: c.sla_policy_id,
            first_response: c.first_response_due_at,
            resolution: c.resolution_due_at,
            important_wait: c.important_wait_due_at,
            paused_at: c.sla_paused_at,
        }
    }
}

/// Stores the due times and the sweep's next check they give (`eff`: the
/// rules of `due.policy_id`).
async fn store(
    db: &impl ConnectionTrait,
    c: &conversation::Model,
    due: Due,
    eff: &Effective,
    now: DateTime<Utc>,
) -> Result<conversation::Model> {
    let after = with_due(c, due, eff, now);
    if due == Due::of(c) && after.sla_next_at == c.sla_next_at {
        return Ok(after);
    }
    conversation::Entity::update_many()
        .col_expr(
            conversation::Column::SlaPolicyId,
            Expr::value(due.policy_id),
        )
        .col_expr(
            conversation::Column::FirstResponseDueAt,
            Expr::value(due.first_response),
        )
        .col_expr(
            conversation::Column::ResolutionDueAt,
            Expr::value(due.resolution),
        )
        .col_expr(
            conversation::Column::ImportantWaitDueAt,
            Expr::value(due.important_wait),
        )
        .col_expr(
            conversation::Column::SlaPausedAt,
            Expr::value(due.paused_at),
        )
        .col_expr(
            conversation::Column::SlaNextAt,
            Expr::value(after.sla_next_at),
        )
        .filter(conversation::Column::Id.eq(c.id))
        .exec(db)
        .await?;
    Ok(after)
}

/// `c` with the due times and the sweep's next check they give.
fn with_due(
    c: &conversation::Model,
    due: Due,
    eff: &Effective,
    now: DateTime<Utc>,
) -> conversation::Model {
    let mut after = c.clone();
    after.sla_policy_id = due.policy_id;
    after.first_response_due_at = due.first_response;
    after.resolution_due_at = due.resolution;
    after.important_wait_due_at = due.important_wait;
    after.sla_paused_at = due.paused_at;
    after.sla_next_at = schedule::next_check(&after, eff, now);
    after
}

/// Moves a due time to a new target, keeping the business time already used.
fn retarget(
    old: &Effective,
    new: &Effective,
    due: DateTime<Utc>,
    old_target: Duration,
    new_target: Duration,
    from: DateTime<Utc>,
) -> DateTime<Utc> {
    let left = old.calendar.between(from, due) + (new_target - old_target);
    if left > Duration::zero() {
        new.calendar.add(from, left)
    } else {
        // Already late: keep how late it is, in wall time.
        from + left
    }
}

/// A conversation not yet stored with its clocks started: ingest inserts
/// new conversations with them.
pub fn started(rules: &Rules, c: &conversation::Model, now: DateTime<Utc>) -> conversation::Model {
    let eff = rules.fitting(c);
    with_due(c, start_due(c, &eff, now), &eff, now)
}

fn start_due(c: &conversation::Model, eff: &Effective, now: DateTime<Utc>) -> Due {
    let unanswered = c.first_response_at.is_none();
    Due {
        policy_id: eff.policy_id,
        first_response: unanswered.then(|| eff.calendar.add(now, eff.first_response)),
        resolution: Some(eff.calendar.add(now, eff.resolution)),
        // Stored for every priority: a later raise to high counts from the start.
        important_wait: unanswered.then(|| eff.calendar.add(now, super::IMPORTANT_WAIT)),
        paused_at: None,
    }
}

/// Called from ingest with the stored conversation an inbound message landed
/// in: resumes paused clocks (new conversations are inserted with theirs
/// started, see [`started`]).
pub async fn on_inbound(
    db: &impl ConnectionTrait,
    rules: &Rules,
    c: conversation::Model,
    now: DateTime<Utc>,
) -> Result<conversation::Model> {
    if c.sla_paused_at.is_some() && c.status == ConversationStatus::Open {
        return resume(db, rules, &c, now).await;
    }
    Ok(c)
}

/// Shifts the due times by the business time spent paused.
async fn resume(
    db: &impl ConnectionTrait,
    rules: &Rules,
    c: &conversation::Model,
    now: DateTime<Utc>,
) -> Result<conversation::Model> {
    let Some(paused_at) = c.sla_paused_at else {
        return Ok(c.clone());
    };
    let eff = rules.of(c);
    let shift = |due: Option<DateTime<Utc>>| {
        due.map(|d| {
            let left = eff.calendar.between(paused_at, d);
            if left > Duration::zero() {
                eff.calendar.add(now, left)
            } else {
                d
            }
        })
    };
    let unanswered = c.first_response_at.is_none();
    let due = Due {
        policy_id: c.sla_policy_id,
        first_response: if unanswered {
            shift(c.first_response_due_at)
        } else {
            c.first_response_due_at
        },
        resolution: shift(c.resolution_due_at),
        important_wait: if unanswered {
            shift(c.important_wait_due_at)
        } else {
            c.important_wait_due_at
        },
        paused_at: None,
    };
    store(db, c, due, &eff, now).await
}

/// After a priority, topic, department or status change (assignment
/// services, in their transaction): recomputes the due times. Conversations
/// whose clocks never started are left alone.
pub async fn on_change(
    db: &impl ConnectionTrait,
    before: &conversation::Model,
    after: conversation::Model,
    now: DateTime<Utc>,
) -> Result<conversation::Model> {
    if after.first_response_due_at.is_none() && after.resolution_due_at.is_none() {
        return Ok(after);
    }
    let was_active = ACTIVE.contains(&before.status);
    let is_active = ACTIVE.contains(&after.status);
    let reopened = !was_active && is_active;
    let moved = before.priority != after.priority
        || before.topic != after.topic
        || before.department_id != after.department_id
        || before.channel_id != after.channel_id;
    if !(reopened || (is_active && moved)) {
        return Ok(after);
    }
    let rules = Rules::load(db).await?;
    if reopened {
        // Reopened: a fresh resolution clock under the policy that fits now.
        let eff = rules.fitting(&after);
        let due = Due {
            policy_id: eff.policy_id,
            first_response: after.first_response_due_at,
            resolution: Some(eff.calendar.add(now, eff.resolution)),
            important_wait: after.important_wait_due_at,
            paused_at: None,
        };
        return store(db, &after, due, &eff, now).await;
    }
    let old = rules.of(before);
    let new = rules.fitting(&after);
    let from = after.sla_paused_at.unwrap_or(now);
    let due = Due {
        policy_id: new.policy_id,
        first_response: match (after.first_response_at, after.first_response_due_at) {
            (None, Some(d)) => Some(retarget(
                &old,
                &new,
                d,
                old.first_response,
                new.first_response,
                from,
            )),
            (_, d) => d,
        },
        resolution: after
            .resolution_due_at
            .map(|d| retarget(&old, &new, d, old.resolution, new.resolution, from)),
        // Same 5 minutes, possibly in another calendar.
        important_wait: match (after.first_response_at, after.important_wait_due_at) {
            (None, Some(d)) => Some(retarget(
                &old,
                &new,
                d,
                super::IMPORTANT_WAIT,
                super::IMPORTANT_WAIT,
                from,
            )),
            (_, d) => d,
        },
        paused_at: after.sla_paused_at,
    };
    store(db, &after, due, &new, now).await
}

impl Domain {
    /// The rules in force for a conversation (its policy, or the one that
    /// would apply if its clock started now).
    pub async fn sla_rules_for(&self, c: &conversation::Model) -> Result<Effective> {
        let rules = Rules::load(&self.db).await?;
        Ok(
            if c.first_response_due_at.is_some() || c.resolution_due_at.is_some() {
                rules.of(c)
            } else {
                rules.fitting(c)
            },
        )
    }

    /// The first-response target promised to the customer of `c`, e.g. for
    /// an acknowledgement ("we will reply within 10 minutes").
    pub async fn first_response_target(&self, c: &conversation::Model) -> Result<Duration> {
        Ok(self.sla_rules_for(c).await?.first_response)
    }

    /// The same in whole minutes, rounded up (at least 1).
    pub async fn first_response_target_minutes(&self, c: &conversation::Model) -> Result<i64> {
        Ok(super::whole_minutes(self.first_response_target(c).await?))
    }

    /// The acknowledgement sentence in the conversation's language.
    pub async fn first_response_target_text(&self, c: &conversation::Model) -> Result<String> {
        let minutes = self.first_response_target_minutes(c).await?;
        Ok(super::first_response_target_text(
            minutes,
            c.language.as_deref(),
        ))
    }

    /// Marks a conversation as waiting on the customer (`pending`, the SLA
    /// clocks pause when the policy says so) or back to `open` (they resume).
    pub async fn set_waiting_on_customer(
        &self,
        actor: &Actor,
        id: i64,
        waiting: bool,
    ) -> Result<conversation::Model> {
        let before = self.conversation_for_action(actor, id).await?;
        if !ACTIVE.contains(&before.status) {
            return Err(DomainError::Conflict(
                "the conversation is resolved: reopen it first".into(),
            ));
        }
        let status = if waiting {
            ConversationStatus::Pending
        } else {
            ConversationStatus::Open
        };
        if before.status == status {
            return Ok(before);
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let done = conversation::Entity::update_many()
            .col_expr(conversation::Column::Status, Expr::value(status))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(id))
            .filter(conversation::Column::Status.eq(before.status))
            .exec(&txn)
            .await?;
        if done.rows_affected != 1 {
            txn.rollback().await?;
            return Err(DomainError::Conflict(
                "the conversation changed meanwhile: reload it".into(),
            ));
        }
        let mut after = before.clone();
        after.status = status;
        after.updated_at = now;
        let started = after.first_response_due_at.is_some() || after.resolution_due_at.is_some();
        if waiting && started {
            let rules = Rules::load(&txn).await?;
            let eff = rules.of(&after);
            if eff.pause_when_pending {
                let due = Due {
                    paused_at: Some(now),
                    ..Due::of(&after)
                };
                after = store(&txn, &after, due, &eff, now).await?;
            }
        } else if !waiting && after.sla_paused_at.is_some() {
            let rules = Rules::load(&txn).await?;
            after = resume(&txn, &rules, &after, now).await?;
        }
        self.touch_lock_activity(&txn, actor, &before).await?;
        let state = |c: &conversation::Model| {
            serde_json::json!({
                "status": c.status,
                "slaPausedAt": c.sla_paused_at,
                "firstResponseDueAt": c.first_response_due_at,
                "resolutionDueAt": c.resolution_due_at,
            })
        };
        audit::record(
            &txn,
            actor,
            now,
            Change::new("conversation.waiting", "conversation", id)
                .before(&state(&before))
                .after(&state(&after)),
        )
        .await?;
        txn.commit().await?;
        self.emit(EventPayload::ConversationUpdated {
            scope: Scope::from(&after),
            status: after.status,
            priority: after.priority,
            change: "status".into(),
        });
        Ok(after)
    }
}

/// After an edit of policies or business hours: the running clocks under
/// `policies` get their next check now, since the stored one may be later than
/// the new rules say; the next sweep looks at each once and stores the real
/// one.
pub async fn recheck(
    db: &impl ConnectionTrait,
    policies: Vec<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    if policies.is_empty() {
        return Ok(());
    }
    conversation::Entity::update_many()
        .col_expr(conversation::Column::SlaNextAt, Expr::value(now))
        .filter(conversation::Column::SlaNextAt.gt(now))
        .filter(conversation::Column::SlaPolicyId.is_in(policies))
        .exec(db)
        .await?;
    Ok(())
}
