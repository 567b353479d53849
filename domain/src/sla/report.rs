//! What the SLA engine reports: the state of one conversation's clocks, the
//! conversations at risk (least business time left first), compliance and
//! escalation rates by period and dimension, and the quarterly review.
//!
//! Rates are computed by the database over the conversations whose clock
//! started in the period (`created_at`). A target is *decided* once it was met
//! or its due time passed (paused clocks are not decided by time); compliance
//! is met / decided. A conversation counts as escalated when its escalation
//! level is above 0.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use entity::{SlaKind, SlaLevel, conversation, sla_event, sla_policy};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
};

use super::policy::{Effective, Rules};
use crate::assignment::ACTIVE;
use crate::{Actor, Capability, Domain, DomainError, Result};

/// The clocks of one conversation.
#[derive(Debug, Clone)]
pub struct SlaState {
    pub policy_id: Option<i64>,
    pub policy_name: String,
    pub first_response_target: Duration,
    pub resolution_target: Duration,
    pub warn_percent: i32,
    pub first_response_due_at: Option<DateTime<Utc>>,
    pub resolution_due_at: Option<DateTime<Utc>>,
    /// Business time left while the clock runs (negative: late); `None` once met.
    pub first_response_remaining: Option<Duration>,
    pub resolution_remaining: Option<Duration>,
    pub paused: bool,
    /// At or past the warning threshold on a running clock, or warned.
    pub warning: bool,
    pub breached: bool,
    /// `Some(true)` met, `Some(false)` missed, `None` still running.
    pub first_response_met: Option<bool>,
    pub resolution_met: Option<bool>,
    pub events: Vec<sla_event::Model>,
}

/// A running clock with little business time left.
#[derive(Debug, Clone)]
pub struct AtRisk {
    pub conversation: conversation::Model,
    pub kind: SlaKind,
    pub due_at: DateTime<Utc>,
    /// Business time left; negative when already late.
    pub remaining: Duration,
    pub breached: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SlaGroupBy {
    #[default]
    None,
    Policy,
    Department,
    Agent,
    Channel,
}

#[derive(Debug, Clone)]
pub struct SlaReportFilter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: SlaGroupBy,
    pub policy_id: Option<i64>,
    pub department_id: Option<i64>,
    pub agent_id: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlaReportRow {
    /// The policy, department, agent or channel id; `None` for "none" (or
    /// when not grouped).
    pub key: Option<i64>,
    pub conversations: i64,
    pub first_response_decided: i64,
    pub first_response_met: i64,
    pub resolution_decided: i64,
    pub resolution_met: i64,
    pub escalated: i64,
}

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl SlaReportRow {
    pub fn first_response_compliance(&self) -> Option<f64> {
        rate(self.first_response_met, self.first_response_decided)
    }
    pub fn resolution_compliance(&self) -> Option<f64> {
        rate(self.resolution_met, self.resolution_decided)
    }
    /// Met targets over decided targets, both clocks together.
    pub fn compliance(&self) -> Option<f64> {
        rate(
            self.first_response_met + self.resolution_met,
            self.first_response_decided + self.resolution_decided,
        )
    }
    pub fn escalation_rate(&self) -> Option<f64> {
        rate(self.escalated, self.conversations)
    }
}

#[derive(Debug, FromQueryResult)]
struct RowQ {
    key: Option<i64>,
    conversations: i64,
    fr_decided: i64,
    fr_met: i64,
    res_decided: i64,
    res_met: i64,
    escalated: i64,
}

/// Compliance of one policy in one month.
#[derive(Debug, Clone)]
pub struct MonthCompliance {
    /// `YYYY-MM`.
    pub month: String,
    pub row: SlaReportRow,
}

#[derive(Debug, Clone)]
pub struct PolicyTrend {
    pub policy_id: Option<i64>,
    pub policy_name: String,
    pub months: Vec<MonthCompliance>,
    pub quarter: SlaReportRow,
    pub previous_quarter: SlaReportRow,
}

#[derive(Debug, Clone)]
pub struct QuarterlyReview {
    pub year: i32,
    pub quarter: u32,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub overall: SlaReportRow,
    pub policies: Vec<PolicyTrend>,
}

/// `SUM` as a BIGINT that is 0 on no rows.
fn count_when(cond: Condition) -> Expr {
    let case: Expr = Expr::case(cond, 1i64).finally(0i64).into();
    Func::coalesce([Expr::from(Func::sum(case)), Expr::val(0i64)]).cast_as("BIGINT")
}

fn met(at: conversation::Column, due: conversation::Column) -> Condition {
    Condition::all()
        .add(Expr::col(at).is_not_null())
        .add(Expr::col(due).is_not_null())
        .add(Expr::col(at).lte(Expr::col(due)))
}

fn decided(at: conversation::Column, due: conversation::Column, now: DateTime<Utc>) -> Condition {
    Condition::all().add(Expr::col(due).is_not_null()).add(
        Condition::any().add(Expr::col(at).is_not_null()).add(
            Condition::all()
                .add(Expr::col(due).lte(now))
                .add(conversation::Column::SlaPausedAt.is_null()),
        ),
    )
}

fn first_of_month(year: i32, month: u32) -> Option<DateTime<Utc>> {
    let d = NaiveDate::from_ymd_opt(year, month, 1)?;
    Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?))
}

impl Domain {
    /// The SLA state of a conversation the caller may read.
    pub async fn sla_state(&self, actor: &Actor, id: i64) -> Result<SlaState> {
        let c = self.conversation(actor, id).await?;
        self.sla_state_of(&c).await
    }

    /// Without the permission check: for fields of an already checked conversation.
    pub async fn sla_state_of(&self, c: &conversation::Model) -> Result<SlaState> {
        let eff = self.sla_rules_for(c).await?;
        let events = sla_event::Entity::find()
            .filter(sla_event::Column::ConversationId.eq(c.id))
            .order_by_asc(sla_event::Column::OccurredAt)
            .order_by_asc(sla_event::Column::Id)
            .all(&self.db)
            .await?;
        Ok(state(c, &eff, events, self.clock.now()))
    }

    /// Running clocks past their warning point (or late), least business time
    /// left first. An Agent sees its own conversations only.
    pub async fn sla_at_risk(
        &self,
        actor: &Actor,
        department_id: Option<i64>,
        limit: Option<i32>,
    ) -> Result<Vec<AtRisk>> {
        actor.require(Capability::HandleConversations)?;
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(DomainError::invalid("first", "must be between 1 and 200"));
        }
        let now = self.clock.now();
        let rules = Rules::load(&self.db).await?;
        let groups: Vec<Option<&sla_policy::Model>> =
            rules.policies.iter().map(Some).chain([None]).collect();
        let mut out = vec![];
        for policy in groups {
            let calendar = rules.calendar_of(policy);
            let (first_lead, resolution_lead) = rules.max_leads(policy);
            for (kind, lead, due_col) in [
                (
                    SlaKind::FirstResponse,
                    first_lead,
                    conversation::Column::FirstResponseDueAt,
                ),
                (
                    SlaKind::Resolution,
                    resolution_lead,
                    conversation::Column::ResolutionDueAt,
                ),
            ] {
                let horizon = calendar.add(now, lead);
                let mut q = conversation::Entity::find()
                    .filter(match policy {
                        Some(p) => conversation::Column::SlaPolicyId.eq(p.id),
                        None => conversation::Column::SlaPolicyId.is_null(),
                    })
                    .filter(conversation::Column::Status.is_in(ACTIVE))
                    .filter(conversation::Column::SlaPausedAt.is_null())
                    .filter(due_col.lte(horizon));
                q = match kind {
                    SlaKind::FirstResponse => {
                        q.filter(conversation::Column::FirstResponseAt.is_null())
                    }
                    _ => q.filter(conversation::Column::ResolvedAt.is_null()),
                };
                if !actor.sees_all_conversations() {
                    q = q.filter(conversation::Column::AssigneeId.eq(actor.user_id()));
                }
                if let Some(d) = department_id {
                    q = q.filter(conversation::Column::DepartmentId.eq(d));
                }
                let rows = q
                    .order_by_asc(due_col)
                    .order_by_asc(conversation::Column::Id)
                    .limit(limit as u64)
                    .all(&self.db)
                    .await?;
                for c in rows {
                    let eff = rules.of(&c);
                    let (due, target) = match kind {
                        SlaKind::FirstResponse => (c.first_response_due_at, eff.first_response),
                        _ => (c.resolution_due_at, eff.resolution),
                    };
                    let Some(due) = due else { continue };
                    let remaining = eff.calendar.between(now, due);
                    if remaining > eff.warning_lead(target) {
                        continue;
                    }
                    out.push(AtRisk {
                        breached: now >= due,
                        conversation: c,
                        kind,
                        due_at: due,
                        remaining,
                    });
                }
            }
        }
        out.sort_by_key(|r| (r.remaining, r.conversation.id));
        out.truncate(limit as usize);
        Ok(out)
    }

    /// Compliance and escalation rates of conversations whose clock started
    /// in `[from, to)`, grouped as asked. Editor, Admin, Analyst.
    pub async fn sla_report(&self, actor: &Actor, f: SlaReportFilter) -> Result<Vec<SlaReportRow>> {
        actor.require(Capability::ReadMetrics)?;
        if f.from >= f.to {
            return Err(DomainError::invalid("to", "must be after from"));
        }
        if f.to - f.from > Duration::days(3660) {
            return Err(DomainError::invalid("from", "at most ten years at once"));
        }
        self.sla_rows(&f).await
    }

    async fn sla_rows(&self, f: &SlaReportFilter) -> Result<Vec<SlaReportRow>> {
        use conversation::Column as C;
        let now = self.clock.now();
        let key_col = match f.group_by {
            SlaGroupBy::None => None,
            SlaGroupBy::Policy => Some(C::SlaPolicyId),
            SlaGroupBy::Department => Some(C::DepartmentId),
            SlaGroupBy::Agent => Some(C::AssigneeId),
            SlaGroupBy::Channel => Some(C::ChannelId),
        };
        let key: Expr = match key_col {
            Some(col) => Expr::col(col),
            None => Expr::val(0i64).cast_as("BIGINT"),
        };
        let mut q = conversation::Entity::find()
            .select_only()
            .expr_as(key, "key")
            .expr_as(
                Expr::from(Func::count(Expr::col(C::Id))).cast_as("BIGINT"),
                "conversations",
            )
            .expr_as(
                count_when(decided(C::FirstResponseAt, C::FirstResponseDueAt, now)),
                "fr_decided",
            )
            .expr_as(
                count_when(met(C::FirstResponseAt, C::FirstResponseDueAt)),
                "fr_met",
            )
            .expr_as(
                count_when(decided(C::ResolvedAt, C::ResolutionDueAt, now)),
                "res_decided",
            )
            .expr_as(
                count_when(met(C::ResolvedAt, C::ResolutionDueAt)),
                "res_met",
            )
            .expr_as(
                count_when(Condition::all().add(C::EscalationLevel.gt(0))),
                "escalated",
            )
            .filter(C::CreatedAt.gte(f.from))
            .filter(C::CreatedAt.lt(f.to))
            .filter(
                Condition::any()
                    .add(C::FirstResponseDueAt.is_not_null())
                    .add(C::ResolutionDueAt.is_not_null()),
            );
        if let Some(id) = f.policy_id {
            q = q.filter(C::SlaPolicyId.eq(id));
        }
        if let Some(id) = f.department_id {
            q = q.filter(C::DepartmentId.eq(id));
        }
        if let Some(id) = f.agent_id {
            q = q.filter(C::AssigneeId.eq(id));
        }
        if let Some(col) = key_col {
            q = q.group_by(col).order_by_asc(col);
        }
        let rows = q.into_model::<RowQ>().all(&self.db).await?;
        Ok(rows
            .into_iter()
            .map(|r| SlaReportRow {
                key: if key_col.is_some() { r.key } else { None },
                conversations: r.conversations,
                first_response_decided: r.fr_decided,
                first_response_met: r.fr_met,
                resolution_decided: r.res_decided,
                resolution_met: r.res_met,
                escalated: r.escalated,
            })
            .filter(|r| r.conversations > 0)
            .collect())
    }

    /// Compliance per policy, month by month over a calendar quarter (UTC),
    /// against the previous quarter.
    pub async fn sla_quarterly_review(
        &self,
        actor: &Actor,
        year: i32,
        quarter: u32,
    ) -> Result<QuarterlyReview> {
        actor.require(Capability::ReadMetrics)?;
        if !(1..=4).contains(&quarter) {
            return Err(DomainError::invalid("quarter", "must be 1 to 4"));
        }
        if !(2000..=2200).contains(&year) {
            return Err(DomainError::invalid("year", "must be 2000 to 2200"));
        }
        let first_month = (quarter - 1) * 3 + 1;
        let bad = || DomainError::invalid("year", "out of range");
        let from = first_of_month(year, first_month).ok_or_else(bad)?;
        let to = if quarter == 4 {
            first_of_month(year + 1, 1)
        } else {
            first_of_month(year, first_month + 3)
        }
        .ok_or_else(bad)?;
        let prev_from = if quarter == 1 {
            first_of_month(year - 1, 10)
        } else {
            first_of_month(year, first_month - 3)
        }
        .ok_or_else(bad)?;
        let by_policy = |from, to| SlaReportFilter {
            from,
            to,
            group_by: SlaGroupBy::Policy,
            policy_id: None,
            department_id: None,
            agent_id: None,
        };
        let mut months = vec![];
        for m in 0..3 {
            let start = first_of_month(year, first_month + m).ok_or_else(bad)?;
            let end = if first_month + m == 12 {
                first_of_month(year + 1, 1)
            } else {
                first_of_month(year, first_month + m + 1)
            }
            .ok_or_else(bad)?;
            let rows = self.sla_rows(&by_policy(start, end)).await?;
            months.push((format!("{}-{:02}", start.year(), start.month()), rows));
        }
        let quarter_rows = self.sla_rows(&by_policy(from, to)).await?;
        let previous = self.sla_rows(&by_policy(prev_from, from)).await?;
        let overall = self
            .sla_rows(&SlaReportFilter {
                group_by: SlaGroupBy::None,
                ..by_policy(from, to)
            })
            .await?
            .pop()
            .unwrap_or_default();
        let names: BTreeMap<i64, String> = sla_policy::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect();
        let mut keys: Vec<Option<i64>> = quarter_rows.iter().map(|r| r.key).collect();
        keys.sort();
        keys.dedup();
        let find = |rows: &[SlaReportRow], key: Option<i64>| {
            rows.iter()
                .find(|r| r.key == key)
                .cloned()
                .unwrap_or(SlaReportRow {
                    key,
                    ..Default::default()
                })
        };
        let policies = keys
            .into_iter()
            .map(|key| PolicyTrend {
                policy_id: key,
                policy_name: key
                    .and_then(|k| names.get(&k).cloned())
                    .unwrap_or_else(|| "Built-in defaults".into()),
                months: months
                    .iter()
                    .map(|(month, rows)| MonthCompliance {
                        month: month.clone(),
                        row: find(rows, key),
                    })
                    .collect(),
                quarter: find(&quarter_rows, key),
                previous_quarter: find(&previous, key),
            })
            .collect();
        Ok(QuarterlyReview {
            year,
            quarter,
            from,
            to,
            overall,
            policies,
        })
    }
}

/// The state of a conversation's clocks at `now`.
pub fn state(
    c: &conversation::Model,
    eff: &Effective,
    events: Vec<sla_event::Model>,
    now: DateTime<Utc>,
) -> SlaState {
    let running = ACTIVE.contains(&c.status);
    let at = c.sla_paused_at.unwrap_or(now);
    let clock = |done: Option<DateTime<Utc>>,
                 due: Option<DateTime<Utc>>|
     -> (Option<Duration>, Option<bool>) {
        match (done, due) {
            (_, None) => (None, None),
            (Some(done), Some(due)) => (None, Some(done <= due)),
            (None, Some(due)) if running => (Some(eff.calendar.between(at, due)), None),
            (None, Some(_)) => (None, None),
        }
    };
    let (first_left, first_met) = clock(c.first_response_at, c.first_response_due_at);
    let (res_left, res_met) = clock(c.resolved_at, c.resolution_due_at);
    // Rows of earlier cycles stay listed but say nothing of the running clocks.
    let has = |level: SlaLevel| {
        events
            .iter()
            .any(|e| e.level == level && e.cycle == super::worker::cycle_of(c, e.kind))
    };
    let near = |left: Option<Duration>, target: Duration| {
        left.is_some_and(|l| l <= eff.warning_lead(target))
    };
    let late = |left: Option<Duration>| left.is_some_and(|l| l <= Duration::zero());
    SlaState {
        policy_id: eff.policy_id,
        policy_name: eff.name.clone(),
        first_response_target: eff.first_response,
        resolution_target: eff.resolution,
        warn_percent: eff.warn_percent,
        first_response_due_at: c.first_response_due_at,
        resolution_due_at: c.resolution_due_at,
        first_response_remaining: first_left,
        resolution_remaining: res_left,
        paused: c.sla_paused_at.is_some(),
        warning: has(SlaLevel::Warning)
            || near(first_left, eff.first_response)
            || near(res_left, eff.resolution),
        breached: has(SlaLevel::Breach)
            || late(first_left)
            || late(res_left)
            || first_met == Some(false)
            || res_met == Some(false),
        first_response_met: first_met,
        resolution_met: res_met,
        events,
    }
}
