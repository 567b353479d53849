//! The SLA sweep. For each policy (and the built-in defaults) it asks the
//! database only for conversations whose due time falls before "now plus the
//! policy's largest warning lead" in business time — an index range scan on
//! `first_response_due_at` / `resolution_due_at` with an anti-join on the
//! breach row — then decides exactly in Rust:
//!
//! - remaining business time ≤ (100 − warn) % of the target: a `warning` row
//!   and an `escalation` row (hierarchical: notify and, if configured,
//!   reassign to a senior/manager; functional: move to the specialist
//!   department's queue and tell the customer);
//! - due time passed: a `breach` row with how late, and a notice to the
//!   customer if the policy says so;
//! - important (high/urgent) conversations unanswered for 5 minutes: an
//!   `alert` row.
//!
//! Every row is inserted with `ON CONFLICT DO NOTHING` on the unique index
//! (conversation, kind, level); the side effects run in the same transaction
//! only when this instance's insert won, so two workers never double-escalate.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use entity::{
    AssignmentKind, DeliveryStatus, Direction, MessageType, OutboxStatus, Priority, SenderKind,
    SlaKind, SlaLevel, contact, conversation, department, message, outbox, sla_event, sla_policy,
};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;

use super::policy::{Effective, Rules};
use crate::assignment::{ACTIVE, assignment_state, record_history};
use crate::events::{EventPayload, QueueChange, Scope};
use crate::lock::clear_lock;
use crate::outbound::{OutboundContent, new_customer};
use crate::{Actor, Domain, Result, audit, window};

/// Conversations read per query page.
const BATCH: u64 = 500;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Candidates read from the database.
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

/// No row of this kind and level yet for the conversation.
fn lacks(kind: SlaKind, level: SlaLevel) -> Condition {
    Condition::all().add(
        Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(sla_event::Entity)
                .and_where(
                    Expr::col((sla_event::Entity, sla_event::Column::ConversationId))
                        .equals((conversation::Entity, conversation::Column::Id)),
                )
                .and_where(sla_event::Column::Kind.eq(kind))
                .and_where(sla_event::Column::Level.eq(level))
                .to_owned(),
        )
        .not(),
    )
}

fn policy_filter(policy: Option<&sla_policy::Model>) -> Condition {
    match policy {
        Some(p) => Condition::all().add(conversation::Column::SlaPolicyId.eq(p.id)),
        None => Condition::all().add(conversation::Column::SlaPolicyId.is_null()),
    }
}

/// The column a clock's candidates are read in order of (its partial index
/// of running clocks, migration `m20261202_000001`).
pub fn order_column(kind: SlaKind) -> conversation::Column {
    match kind {
        SlaKind::FirstResponse => conversation::Column::FirstResponseDueAt,
        SlaKind::Resolution => conversation::Column::ResolutionDueAt,
        SlaKind::ImportantWait => conversation::Column::CreatedAt,
    }
}

/// The candidate query of one policy and clock, up to `horizon` (public for
/// the benchmark's query plan).
pub fn candidates(
    policy: Option<&sla_policy::Model>,
    kind: SlaKind,
    horizon: DateTime<Utc>,
) -> sea_orm::Select<conversation::Entity> {
    let q = conversation::Entity::find()
        .filter(policy_filter(policy))
        .filter(conversation::Column::Status.is_in(ACTIVE))
        .filter(conversation::Column::SlaPausedAt.is_null())
        .filter(conversation::Column::ResolvedAt.is_null())
        .filter(order_column(kind).lte(horizon));
    match kind {
        SlaKind::FirstResponse => q
            .filter(conversation::Column::FirstResponseAt.is_null())
            .filter(lacks(kind, SlaLevel::Breach)),
        SlaKind::Resolution => q.filter(lacks(kind, SlaLevel::Breach)),
        SlaKind::ImportantWait => q
            .filter(conversation::Column::Priority.is_in([Priority::High, Priority::Urgent]))
            .filter(conversation::Column::FirstResponseAt.is_null())
            .filter(conversation::Column::FirstResponseDueAt.is_not_null())
            .filter(lacks(kind, SlaLevel::Alert)),
    }
}

/// One page of candidates after `(at, id)`, in index order.
pub fn candidates_page(
    policy: Option<&sla_policy::Model>,
    kind: SlaKind,
    horizon: DateTime<Utc>,
    after: Option<(DateTime<Utc>, i64)>,
) -> sea_orm::Select<conversation::Entity> {
    let col = order_column(kind);
    let mut q = candidates(policy, kind, horizon);
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

fn order_key(c: &conversation::Model, kind: SlaKind) -> Option<DateTime<Utc>> {
    match kind {
        SlaKind::FirstResponse => c.first_response_due_at,
        SlaKind::Resolution => c.resolution_due_at,
        SlaKind::ImportantWait => Some(c.created_at),
    }
}

/// Whether the conversation still runs this clock (re-checked in the
/// transaction: an agent may have answered since the candidate was read).
fn still_running(c: &conversation::Model, kind: SlaKind) -> bool {
    ACTIVE.contains(&c.status)
        && c.sla_paused_at.is_none()
        && match kind {
            SlaKind::FirstResponse | SlaKind::ImportantWait => c.first_response_at.is_none(),
            SlaKind::Resolution => c.resolved_at.is_none(),
        }
}

/// Work to publish once a transaction commits.
#[derive(Default)]
struct After {
    events: Vec<EventPayload>,
    queue: Vec<(Option<i64>, i64, QueueChange)>,
    wake_outbox: bool,
}

impl Domain {
    /// One pass over every running SLA clock.
    #[tracing::instrument(skip(self))]
    pub async fn run_sla_sweep(&self) -> Result<SweepReport> {
        let now = self.clock.now();
        let rules = Rules::load(&self.db).await?;
        let mut report = SweepReport::default();
        let groups: Vec<Option<&sla_policy::Model>> =
            rules.policies.iter().map(Some).chain([None]).collect();
        for policy in groups {
            let calendar = rules.calendar_of(policy);
            let (first_lead, resolution_lead) = rules.max_leads(policy);
            for (kind, lead) in [
                (SlaKind::FirstResponse, first_lead),
                (SlaKind::Resolution, resolution_lead),
            ] {
                let horizon = calendar.add(now, lead);
                self.sweep_clock(&rules, policy, kind, horizon, now, &mut report)
                    .await?;
            }
            let waited = now - super::IMPORTANT_WAIT;
            self.sweep_clock(
                &rules,
                policy,
                SlaKind::ImportantWait,
                waited,
                now,
                &mut report,
            )
            .await?;
        }
        Ok(report)
    }

    async fn sweep_clock(
        &self,
        rules: &Rules,
        policy: Option<&sla_policy::Model>,
        kind: SlaKind,
        horizon: DateTime<Utc>,
        now: DateTime<Utc>,
        report: &mut SweepReport,
    ) -> Result<()> {
        let mut after = None;
        loop {
            let page = candidates_page(policy, kind, horizon, after)
                .all(&self.db)
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = order_key(last, kind).map(|at| (at, last.id));
            let full = page.len() as u64 == BATCH;
            report.examined += page.len();
            // Levels already recorded are skipped without a transaction (the
            // unique index still decides when two instances race).
            let recorded: HashSet<(i64, SlaLevel)> = sla_event::Entity::find()
                .select_only()
                .column(sla_event::Column::ConversationId)
                .column(sla_event::Column::Level)
                .filter(sla_event::Column::ConversationId.is_in(page.iter().map(|c| c.id)))
                .filter(sla_event::Column::Kind.eq(kind))
                .into_tuple::<(i64, SlaLevel)>()
                .all(&self.db)
                .await?
                .into_iter()
                .collect();
            for c in page {
                let eff = rules.of(&c);
                self.judge(&c, &eff, kind, now, &recorded, report).await?;
            }
            if !full || after.is_none() {
                return Ok(());
            }
        }
    }

    /// Decides which levels a candidate has reached and records each once.
    async fn judge(
        &self,
        c: &conversation::Model,
        eff: &Effective,
        kind: SlaKind,
        now: DateTime<Utc>,
        recorded: &HashSet<(i64, SlaLevel)>,
        report: &mut SweepReport,
    ) -> Result<()> {
        let new = |level: SlaLevel| !recorded.contains(&(c.id, level));
        let (due, target) = match kind {
            SlaKind::FirstResponse => (c.first_response_due_at, eff.first_response),
            SlaKind::Resolution => (c.resolution_due_at, eff.resolution),
            SlaKind::ImportantWait => (Some(c.created_at), Duration::zero()),
        };
        let Some(due) = due else {
            return Ok(());
        };
        let mut levels = vec![];
        if kind == SlaKind::ImportantWait {
            if now - c.created_at >= super::IMPORTANT_WAIT {
                levels.push(SlaLevel::Alert);
            }
        } else {
            if eff.calendar.between(now, due) <= eff.warning_lead(target) {
                levels.extend([SlaLevel::Warning, SlaLevel::Escalation]);
            }
            if now >= due {
                levels.push(SlaLevel::Breach);
            }
        }
        levels.retain(|l| new(*l));
        if levels.is_empty() {
            return Ok(());
        }
        for level in self.fire(c, eff, kind, &levels, due, now).await? {
            match level {
                SlaLevel::Warning => report.warnings += 1,
                SlaLevel::Escalation => {
                    report.escalations += 1;
                    if eff.escalation.kind == entity::EscalationKind::Functional
                        && eff.escalation.to_department_id.is_some()
                        && eff.escalation.to_department_id != c.department_id
                    {
                        report.notices += 1;
                    }
                }
                SlaLevel::Breach => {
                    report.breaches += 1;
                    if eff.notify_customer_on_breach {
                        report.notices += 1;
                    }
                }
                SlaLevel::Alert => report.alerts += 1,
            }
        }
        Ok(())
    }

    /// Records the given levels of one clock, each at most once, in one
    /// transaction; returns those this call recorded. Levels are always
    /// claimed in the same order (warning, escalation, breach), so two
    /// instances wait for each other instead of deadlocking.
    async fn fire(
        &self,
        c: &conversation::Model,
        eff: &Effective,
        kind: SlaKind,
        levels: &[SlaLevel],
        target_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SlaLevel>> {
        // The inserts come first: each claims its level (the unique index
        // makes a second instance wait, then do nothing) and they make this a
        // write transaction from its first statement (SQLite then waits for
        // the lock instead of failing to upgrade a read).
        let txn = self.db.begin().await?;
        let mut won = vec![];
        for &level in levels {
            let late = (level == SlaLevel::Breach)
                .then(|| std::cmp::max((now - target_at).num_seconds(), 0));
            let row = sla_event::ActiveModel {
                conversation_id: Set(c.id),
                kind: Set(kind),
                level: Set(level),
                target_at: Set(target_at),
                occurred_at: Set(now),
                late_secs: Set(late),
                details: Set(Some(json!({
                    "policyId": eff.policy_id,
                    "policy": eff.name,
                    "warnPercent": eff.warn_percent,
                }))),
                ..Default::default()
            };
            let inserted = sla_event::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([
                        sla_event::Column::ConversationId,
                        sla_event::Column::Kind,
                        sla_event::Column::Level,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            if inserted == 1 {
                won.push(level);
            }
        }
        if won.is_empty() {
            // Another instance got there first.
            txn.rollback().await?;
            return Ok(won);
        }
        let current = conversation::Entity::find_by_id(c.id).one(&txn).await?;
        let Some(mut current) = current.filter(|cur| still_running(cur, kind)) else {
            // Answered, resolved or paused since it was read.
            txn.rollback().await?;
            return Ok(vec![]);
        };
        let mut after = After::default();
        let mut alerts = vec![];
        for &level in &won {
            match level {
                SlaLevel::Escalation => {
                    current = self
                        .escalate(&txn, &current, eff, kind, now, &mut after)
                        .await?;
                }
                SlaLevel::Breach if eff.notify_customer_on_breach => {
                    let text = super::breach_text(current.language.as_deref());
                    self.queue_notice(&txn, &current, text, now, &mut after)
                        .await?;
                }
                _ => {}
            }
            alerts.push(EventPayload::SlaAlert {
                scope: Scope::from(&current),
                kind: kind_name(kind).into(),
                level: level_name(level).into(),
            });
        }
        self.enqueue_webhooks_in(&txn, &[&alerts[..], &after.events].concat())
            .await?;
        txn.commit().await?;
        for alert in alerts {
            self.emit(alert);
        }
        self.publish_after(after).await;
        Ok(won)
    }

    /// Escalation at the warning threshold, inside `fire`'s transaction.
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
        let reason = format!(
            "SLA {} at {} % of the target",
            kind_name(kind).replace('_', " "),
            eff.warn_percent
        );
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
        if new_customer::wait_before_next(txn, &customer, c, per_minute, now)
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
