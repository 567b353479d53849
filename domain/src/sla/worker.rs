//! The SLA sweep. Each conversation stores when it next reaches a level
//! (`sla_next_at`, see [`super::schedule`]), so a tick reads only the
//! conversations due now — an index range `sla_next_at <= now` — and, page by
//! page in one transaction each:
//!
//! - remaining business time ≤ (100 − warn) % of the target: a `warning` row
//!   and an `escalation` row (hierarchical: notify and, if configured,
//!   reassign to a senior/manager; functional: move to the specialist
//!   department's queue and tell the customer);
//! - due time passed: a `breach` row with how late, and a notice to the
//!   customer if the policy says so;
//! - important (high/urgent) conversations unanswered for 5 minutes of
//!   business time (`important_wait_due_at`, stored like the other due
//!   times, so pauses and calendars count the same): an `alert` row;
//! - then the page's next checks, in one statement.
//!
//! Exactly once, on any number of instances: a page's rows are locked first
//! (row locks on PostgreSQL, the write lock on SQLite) and re-read, so a
//! second instance waits and then finds their next checks moved; the unique
//! index (conversation, kind, level, cycle) stays the last guard. The cycle is
//! the reopen count for resolution clocks, so each reopen can warn, escalate
//! and breach again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{
    AssignmentKind, DeliveryStatus, Direction, MessageType, OutboxStatus, SenderKind, SlaKind,
    SlaLevel, contact, conversation, department, message, outbox, sla_event,
};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait, TryInsertResult,
};
use serde_json::json;

use super::policy::{Effective, Rules};
use super::schedule::{self, Running};
use crate::assignment::{assignment_state, record_history};
use crate::events::{EventPayload, QueueChange, Scope};
use crate::lock::clear_lock;
use crate::outbound::{OutboundContent, new_customer};
use crate::{Actor, Domain, Result, audit, window};

/// Conversations decided per transaction: bounds how long their rows stay
/// locked and the statements' parameter counts.
const BATCH: u64 = 200;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Conversations due for a check, read from the database.
    pub examined: usize,
    pub warnings: usize,
    pub escalations: usize,
    pub breaches: usize,
    pub alerts: usize,
    /// Messages queued to customers (transfers, breach notices).
    pub notices: usize,
}

pub fn kind_name(kind: SlaKind) -> &'static str {
    match kind {
        SlaKind::FirstResponse => "first_response",
        SlaKind::Resolution => "resolution",
        SlaKind::ImportantWait => "important_wait",
    }
}

pub fn level_name(level: SlaLevel) -> &'static str {
    match level {
        SlaLevel::Warning => "warning",
        SlaLevel::Escalation => "escalation",
        SlaLevel::Breach => "breach",
        SlaLevel::Alert => "alert",
    }
}

/// The cycle a clock's rows belong to: each reopen starts a new resolution
/// clock (a new cycle); first response and the important-wait alert happen
/// once per conversation (their due times are not restarted on reopen).
pub fn cycle_of(c: &conversation::Model, kind: SlaKind) -> i32 {
    match kind {
        SlaKind::Resolution => c.reopen_count,
        SlaKind::FirstResponse | SlaKind::ImportantWait => 0,
    }
}

/// One page of the conversations due for a check at `now`, after `(at, id)`,
/// in index order (public for the benchmark's query plan).
pub fn due_page(
    now: DateTime<Utc>,
    after: Option<(DateTime<Utc>, i64)>,
) -> sea_orm::Select<conversation::Entity> {
    let col = conversation::Column::SlaNextAt;
    let mut q = conversation::Entity::find().filter(col.lte(now));
    if let Some((at, id)) = after {
        q = q.filter(
            Condition::any().add(col.gt(at)).add(
                Condition::all()
                    .add(col.eq(at))
                    .add(conversation::Column::Id.gt(id)),
            ),
        );
    }
    q.order_by_asc(col)
        .order_by_asc(conversation::Column::Id)
        .limit(BATCH)
}

/// Whether an escalation under `eff` moves `c` (to another department or a
/// senior); the others only count and notify, in one statement per page.
fn moves(eff: &Effective, c: &conversation::Model) -> bool {
    let esc = eff.escalation;
    match (esc.kind, esc.to_department_id, esc.to_user_id) {
        (entity::EscalationKind::Functional, Some(dep), _) => c.department_id != Some(dep),
        (entity::EscalationKind::Hierarchical, _, Some(user)) => c.assignee_id != Some(user),
        _ => false,
    }
}

fn reason(eff: &Effective, kind: SlaKind) -> String {
    format!(
        "SLA {} at {} % of the target",
        kind_name(kind).replace('_', " "),
        eff.warn_percent
    )
}

/// Escalations that move nothing, for a whole page: the escalation level
/// counts up, an audit row each, an update event each.
async fn escalate_in_place(
    txn: &DatabaseTransaction,
    escalated: &[(conversation::Model, String)],
    now: DateTime<Utc>,
    after: &mut After,
) -> Result<()> {
    if escalated.is_empty() {
        return Ok(());
    }
    // A conversation may escalate twice in a page (both clocks at 80 %).
    let mut times: HashMap<i64, i32> = HashMap::new();
    for (c, _) in escalated {
        *times.entry(c.id).or_default() += 1;
    }
    let mut by_times: HashMap<i32, Vec<i64>> = HashMap::new();
    for (id, n) in &times {
        by_times.entry(*n).or_default().push(*id);
    }
    for (n, ids) in by_times {
        conversation::Entity::update_many()
            .col_expr(
                conversation::Column::EscalationLevel,
                Expr::col(conversation::Column::EscalationLevel).add(n),
            )
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.is_in(ids))
            .exec(txn)
            .await?;
    }
    let system = Actor::system();
    audit::record_all(
        txn,
        &system,
        now,
        escalated.iter().map(|(c, reason)| {
            let state = assignment_state(c);
            audit::Change::new("sla.escalate", "conversation", c.id)
                .before(&state)
                .after(&state)
                .with_extra("reason", reason)
        }),
    )
    .await?;
    for (c, _) in escalated {
        after.events.push(EventPayload::ConversationUpdated {
            scope: Scope::from(c),
            status: c.status,
            priority: c.priority,
            change: "escalated".into(),
        });
    }
    Ok(())
}

/// A level one transaction records.
struct Claim {
    clock: Running,
    level: SlaLevel,
}

/// Work to publish once a transaction commits.
#[derive(Default)]
struct After {
    events: Vec<EventPayload>,
    queue: Vec<(Option<i64>, i64, QueueChange)>,
    wake_outbox: bool,
}

impl Domain {
    /// One pass over the conversations whose next SLA check is due.
    #[tracing::instrument(skip(self))]
    pub async fn run_sla_sweep(&self) -> Result<SweepReport> {
        let now = self.clock.now();
        let rules = Rules::load(&self.db).await?;
        let mut report = SweepReport::default();
        let mut after = None;
        loop {
            let page: Vec<(i64, Option<DateTime<Utc>>)> = due_page(now, after)
                .select_only()
                .column(conversation::Column::Id)
                .column(conversation::Column::SlaNextAt)
                .into_tuple()
                .all(&self.db)
                .await?;
            let Some(&(last, Some(at))) = page.last() else {
                return Ok(report);
            };
            after = Some((at, last));
            let ids: Vec<i64> = page.iter().map(|(id, _)| *id).collect();
            self.sweep_page(&rules, &ids, now, &mut report).await?;
            if (page.len() as u64) < BATCH {
                return Ok(report);
            }
        }
    }

    /// Decides one page of conversations in one transaction.
    async fn sweep_page(
        &self,
        rules: &Rules,
        ids: &[i64],
        now: DateTime<Utc>,
        report: &mut SweepReport,
    ) -> Result<()> {
        let txn = self.db.begin().await?;
        let by_id = || conversation::Column::Id.is_in(ids.iter().copied());
        if txn.get_database_backend() == DbBackend::Sqlite {
            // Write first: SQLite then waits for the lock instead of failing
            // to upgrade a read.
            conversation::Entity::update_many()
                .col_expr(
                    conversation::Column::SlaNextAt,
                    Expr::col(conversation::Column::SlaNextAt),
                )
                .filter(by_id())
                .exec(&txn)
                .await?;
        }
        // Locked in id order (FOR UPDATE on PostgreSQL) and re-read: another
        // instance on the same page waits here, then sees the checks moved.
        let rows = conversation::Entity::find()
            .filter(by_id())
            .filter(conversation::Column::SlaNextAt.lte(now))
            .order_by_asc(conversation::Column::Id)
            .lock_exclusive()
            .all(&txn)
            .await?;
        report.examined += rows.len();
        if rows.is_empty() {
            txn.rollback().await?;
            return Ok(());
        }
        let locked: Vec<i64> = rows.iter().map(|c| c.id).collect();
        let recorded: HashSet<(i64, SlaKind, SlaLevel, i32)> = sla_event::Entity::find()
            .select_only()
            .column(sla_event::Column::ConversationId)
            .column(sla_event::Column::Kind)
            .column(sla_event::Column::Level)
            .column(sla_event::Column::Cycle)
            .filter(sla_event::Column::ConversationId.is_in(locked.iter().copied()))
            .into_tuple()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let mut next = CaseStatement::new();
        let mut plans = vec![];
        for c in rows {
            let eff = rules.of(&c);
            let plan = schedule::plan(&c, &eff, now, |kind, level| {
                recorded.contains(&(c.id, kind, level, cycle_of(&c, kind)))
            });
            next = next.case(conversation::Column::Id.eq(c.id), Expr::val(plan.next_at));
            let claims: Vec<Claim> = plan
                .fire
                .into_iter()
                .map(|(clock, level)| Claim { clock, level })
                .collect();
            if !claims.is_empty() {
                plans.push((c, eff, claims));
            }
        }
        let won = Self::record_levels(&txn, &plans, now).await?;
        let mut after = After::default();
        let mut in_place = vec![];
        let mut alerts = vec![];
        for (c, eff, claims) in plans {
            let mut current = c;
            for claim in claims {
                let (kind, level) = (claim.clock.kind, claim.level);
                if !won.contains(&(current.id, kind, level)) {
                    continue;
                }
                match level {
                    SlaLevel::Warning => report.warnings += 1,
                    SlaLevel::Escalation => {
                        report.escalations += 1;
                        if eff.escalation.kind == entity::EscalationKind::Functional
                            && eff.escalation.to_department_id.is_some()
                            && eff.escalation.to_department_id != current.department_id
                        {
                            report.notices += 1;
                        }
                        if moves(&eff, &current) {
                            current = self
                                .escalate(&txn, &current, &eff, kind, now, &mut after)
                                .await?;
                        } else {
                            in_place.push((current.clone(), reason(&eff, kind)));
                        }
                    }
                    SlaLevel::Breach => {
                        report.breaches += 1;
                        if eff.notify_customer_on_breach {
                            report.notices += 1;
                            let text = super::breach_text(current.language.as_deref());
                            self.queue_notice(&txn, &current, text, now, &mut after)
                                .await?;
                        }
                    }
                    SlaLevel::Alert => report.alerts += 1,
                }
                alerts.push(EventPayload::SlaAlert {
                    scope: Scope::from(&current),
                    kind: kind_name(kind).into(),
                    level: level_name(level).into(),
                    cycle: cycle_of(&current, kind),
                });
            }
        }
        escalate_in_place(&txn, &in_place, now, &mut after).await?;
        conversation::Entity::update_many()
            .col_expr(conversation::Column::SlaNextAt, next.into())
            .filter(conversation::Column::Id.is_in(locked))
            .exec(&txn)
            .await?;
        self.enqueue_webhooks_in(&txn, &[&alerts[..], &after.events].concat())
            .await?;
        txn.commit().await?;
        for alert in alerts {
            self.emit(alert);
        }
        self.publish_after(after).await;
        Ok(())
    }

    /// Inserts the page's event rows (`ON CONFLICT DO NOTHING` on the unique
    /// index); returns the (conversation, kind, level) this call recorded.
    async fn record_levels(
        txn: &DatabaseTransaction,
        plans: &[(conversation::Model, Effective, Vec<Claim>)],
        now: DateTime<Utc>,
    ) -> Result<HashSet<(i64, SlaKind, SlaLevel)>> {
        let rows: Vec<sla_event::ActiveModel> = plans
            .iter()
            .flat_map(|(c, eff, claims)| {
                claims.iter().map(move |claim| {
                    let (kind, level, due) = (claim.clock.kind, claim.level, claim.clock.due);
                    let late = (level == SlaLevel::Breach)
                        .then(|| std::cmp::max((now - due).num_seconds(), 0));
                    sla_event::ActiveModel {
                        conversation_id: Set(c.id),
                        kind: Set(kind),
                        level: Set(level),
                        target_at: Set(due),
                        occurred_at: Set(now),
                        late_secs: Set(late),
                        cycle: Set(cycle_of(c, kind)),
                        details: Set(Some(json!({
                            "policyId": eff.policy_id,
                            "policy": eff.name,
                            "warnPercent": eff.warn_percent,
                        }))),
                        ..Default::default()
                    }
                })
            })
            .collect();
        let mut won = HashSet::new();
        // 9 parameters a row: well under SQLite's limit per statement.
        for chunk in rows.chunks(500) {
            let inserted = sla_event::Entity::insert_many(chunk.to_vec())
                .on_conflict_do_nothing_on([
                    sla_event::Column::ConversationId,
                    sla_event::Column::Kind,
                    sla_event::Column::Level,
                    sla_event::Column::Cycle,
                ])
                .exec_with_returning_many(txn)
                .await?;
            if let TryInsertResult::Inserted(models) = inserted {
                won.extend(
                    models
                        .into_iter()
                        .map(|e| (e.conversation_id, e.kind, e.level)),
                );
            }
        }
        Ok(won)
    }

    /// Escalation at the warning threshold, inside the page's transaction.
    async fn escalate(
        &self,
        txn: &DatabaseTransaction,
        c: &conversation::Model,
        eff: &Effective,
        kind: SlaKind,
        now: DateTime<Utc>,
        after: &mut After,
    ) -> Result<conversation::Model> {
        let esc = eff.escalation;
        let reason = reason(eff, kind);
        let mut update = conversation::Entity::update_many()
            .col_expr(
                conversation::Column::EscalationLevel,
                Expr::col(conversation::Column::EscalationLevel).add(1),
            )
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(c.id));
        let mut history = false;
        let mut team = None;
        match (esc.kind, esc.to_department_id, esc.to_user_id) {
            (entity::EscalationKind::Functional, Some(dep), _) if c.department_id != Some(dep) => {
                let none: Option<i64> = None;
                let never: Option<DateTime<Utc>> = None;
                update = update
                    .col_expr(conversation::Column::DepartmentId, Expr::value(dep))
                    .col_expr(conversation::Column::AssigneeId, Expr::value(none))
                    .col_expr(conversation::Column::AssignedAt, Expr::value(never))
                    .col_expr(conversation::Column::QueuedAt, Expr::value(now));
                history = true;
                team = department::Entity::find_by_id(dep)
                    .one(txn)
                    .await?
                    .map(|d| d.name);
                clear_lock(txn, Condition::all().add(conversation::Column::Id.eq(c.id))).await?;
            }
            (entity::EscalationKind::Hierarchical, _, Some(user))
                if c.assignee_id != Some(user) =>
            {
                update = update
                    .col_expr(conversation::Column::AssigneeId, Expr::value(user))
                    .col_expr(conversation::Column::AssignedAt, Expr::value(now));
                history = true;
                clear_lock(txn, Condition::all().add(conversation::Column::Id.eq(c.id))).await?;
            }
            _ => {}
        }
        update.exec(txn).await?;
        let moved = conversation::Entity::find_by_id(c.id)
            .one(txn)
            .await?
            .unwrap_or_else(|| c.clone());
        let system = Actor::system();
        if history {
            record_history(
                txn,
                &system,
                c,
                &moved,
                AssignmentKind::Escalation,
                Some(reason.clone()),
                now,
            )
            .await?;
        }
        audit::record(
            txn,
            &system,
            now,
            audit::Change::new("sla.escalate", "conversation", c.id)
                .before(&assignment_state(c))
                .after(&assignment_state(&moved))
                .with_extra("reason", &reason),
        )
        .await?;
        if let Some(team) = team {
            let text = super::transferred_text(&team, c.language.as_deref());
            self.queue_notice(txn, &moved, text, now, after).await?;
        }
        for (dep, change) in crate::assignment::queue_moves(c, &moved) {
            after.queue.push((dep, moved.id, change));
        }
        after.events.push(EventPayload::ConversationUpdated {
            scope: Scope::from(&moved),
            status: moved.status,
            priority: moved.priority,
            change: "escalated".into(),
        });
        Ok(moved)
    }

    /// Queues a service notice to the customer through the outbox, inside the
    /// customer-service window only (outside it Meta would need a template).
    async fn queue_notice(
        &self,
        txn: &DatabaseTransaction,
        c: &conversation::Model,
        text: String,
        now: DateTime<Utc>,
        after: &mut After,
    ) -> Result<Option<message::Model>> {
        let Some(customer) = contact::Entity::find_by_id(c.contact_id).one(txn).await? else {
            return Ok(None);
        };
        if customer.wa_id.is_none() || customer.erased_at.is_some() {
            return Ok(None);
        }
        let last = window::last_customer_message(c, Some(&customer));
        if !window::is_inside(last, self.config.messaging.service_window, now) {
            tracing::info!(
                conversation = c.id,
                "SLA notice skipped: outside the window"
            );
            return Ok(None);
        }
        let per_minute = self.config.messaging.new_customer_messages_per_minute;
        if new_customer::wait_before_next(txn, &customer, c, per_minute, None, now)
            .await?
            .is_some()
        {
            tracing::info!(
                conversation = c.id,
                "SLA notice skipped: new-customer sending limit"
            );
            return Ok(None);
        }
        let content = OutboundContent::Text {
            body: text.clone(),
            preview_url: false,
        };
        let payload = serde_json::to_value(&content).map_err(crate::DomainError::internal)?;
        let created = message::ActiveModel {
            conversation_id: Set(c.id),
            channel_id: Set(c.channel_id),
            direction: Set(Direction::Outbound),
            sender_kind: Set(SenderKind::System),
            message_type: Set(MessageType::Text),
            body: Set(Some(text)),
            payload: Set(Some(payload)),
            status: Set(DeliveryStatus::Queued),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        outbox::ActiveModel {
            message_id: Set(created.id),
            channel_id: Set(c.channel_id),
            status: Set(OutboxStatus::Pending),
            attempts: Set(0),
            next_attempt_at: Set(now),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        after.events.push(EventPayload::MessageAdded {
            scope: Scope::from(c),
            message_id: created.id,
            direction: Direction::Outbound,
            status: DeliveryStatus::Queued,
        });
        after.wake_outbox = true;
        Ok(Some(created))
    }

    async fn publish_after(&self, after: After) {
        for e in after.events {
            self.emit(e);
        }
        for (department_id, conversation_id, change) in after.queue {
            let queue_length = self.queue_length(department_id).await.unwrap_or(-1);
            self.emit(EventPayload::QueueChanged {
                department_id,
                conversation_id,
                change,
                queue_length,
            });
        }
        if after.wake_outbox {
            self.outbox.wake.notify_one();
        }
    }
}
