//! SLA management: policies, business hours, the state of a conversation's
//! clocks, conversations at risk, compliance and escalation reports.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use domain::sla::{self, SlaGroupBy as DomainGroupBy};
use entity::{EscalationKind, Priority, SlaKind, SlaLevel, sla_event, sla_policy};

use super::context::{ContextExt, parse_id};
use super::error::IntoGql;
use super::types::Conversation;

fn id(v: i64) -> ID {
    ID(v.to_string())
}

fn optional_id(v: Option<ID>, field: &str) -> Result<Option<i64>> {
    v.map(|i| parse_id(&i, field)).transpose()
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<Weekday> for chrono::Weekday {
    fn from(d: Weekday) -> Self {
        match d {
            Weekday::Monday => Self::Mon,
            Weekday::Tuesday => Self::Tue,
            Weekday::Wednesday => Self::Wed,
            Weekday::Thursday => Self::Thu,
            Weekday::Friday => Self::Fri,
            Weekday::Saturday => Self::Sat,
            Weekday::Sunday => Self::Sun,
        }
    }
}

const WEEK: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// How a report is broken down.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum SlaGroupBy {
    #[default]
    None,
    Policy,
    Department,
    Agent,
    Channel,
}

impl From<SlaGroupBy> for DomainGroupBy {
    fn from(g: SlaGroupBy) -> Self {
        match g {
            SlaGroupBy::None => Self::None,
            SlaGroupBy::Policy => Self::Policy,
            SlaGroupBy::Department => Self::Department,
            SlaGroupBy::Agent => Self::Agent,
            SlaGroupBy::Channel => Self::Channel,
        }
    }
}

#[derive(SimpleObject)]
pub struct TopicTolerance {
    pub topic: String,
    pub seconds: i64,
}

#[derive(InputObject)]
pub struct TopicToleranceInput {
    pub topic: String,
    /// First-response target for this topic, replacing the policy's.
    pub seconds: i64,
}

pub struct SlaPolicy(pub sla_policy::Model);

#[Object]
impl SlaPolicy {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Applies to this priority only (any when empty).
    async fn priority(&self) -> Option<Priority> {
        self.0.priority
    }
    async fn channel_id(&self) -> Option<ID> {
        self.0.channel_id.map(id)
    }
    async fn department_id(&self) -> Option<ID> {
        self.0.department_id.map(id)
    }
    /// Clocks count this calendar's business time (around the clock when empty).
    async fn business_hours_id(&self) -> Option<ID> {
        self.0.business_hours_id.map(id)
    }
    async fn first_response_seconds(&self) -> i32 {
        self.0.first_response_secs
    }
    async fn resolution_seconds(&self) -> i32 {
        self.0.resolution_secs
    }
    /// Warning and escalation at this percentage of a target.
    async fn warn_percent(&self) -> i32 {
        self.0.warn_percent
    }
    async fn topic_tolerances(&self) -> Vec<TopicTolerance> {
        self.0
            .topic_tolerances
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        Some(TopicTolerance {
                            topic: k.clone(),
                            seconds: v.as_i64()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Clocks pause while the conversation waits on the customer.
    async fn pause_when_pending(&self) -> bool {
        self.0.pause_when_pending
    }
    async fn escalation_kind(&self) -> EscalationKind {
        self.0.escalation_kind
    }
    async fn escalate_to_user_id(&self) -> Option<ID> {
        self.0.escalate_to_user_id.map(id)
    }
    async fn escalate_to_department_id(&self) -> Option<ID> {
        self.0.escalate_to_department_id.map(id)
    }
    async fn notify_customer_on_breach(&self) -> bool {
        self.0.notify_customer_on_breach
    }
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A policy; an update replaces every field.
#[derive(InputObject)]
pub struct SlaPolicyInput {
    pub name: String,
    pub priority: Option<Priority>,
    pub channel_id: Option<ID>,
    pub department_id: Option<ID>,
    pub business_hours_id: Option<ID>,
    /// First-response target in business seconds (> 0).
    pub first_response_seconds: i64,
    /// Resolution target in business seconds (> 0).
    pub resolution_seconds: i64,
    /// 1–99, default 80.
    pub warn_percent: Option<i32>,
    #[graphql(default)]
    pub topic_tolerances: Vec<TopicToleranceInput>,
    /// Default true.
    pub pause_when_pending: Option<bool>,
    /// Default HIERARCHICAL.
    pub escalation_kind: Option<EscalationKind>,
    /// Hierarchical: reassign to this senior or manager.
    pub escalate_to_user_id: Option<ID>,
    /// Functional: transfer to this specialist department.
    pub escalate_to_department_id: Option<ID>,
    #[graphql(default)]
    pub notify_customer_on_breach: bool,
    #[graphql(default)]
    pub is_default: bool,
}

impl SlaPolicyInput {
    fn into_domain(self) -> Result<sla::SlaPolicyInput> {
        Ok(sla::SlaPolicyInput {
            name: self.name,
            priority: self.priority,
            channel_id: optional_id(self.channel_id, "channelId")?,
            department_id: optional_id(self.department_id, "departmentId")?,
            business_hours_id: optional_id(self.business_hours_id, "businessHoursId")?,
            first_response_secs: self.first_response_seconds,
            resolution_secs: self.resolution_seconds,
            warn_percent: self.warn_percent,
            topic_tolerances: self
                .topic_tolerances
                .into_iter()
                .map(|t| (t.topic, t.seconds))
                .collect(),
            pause_when_pending: self.pause_when_pending,
            escalation_kind: self.escalation_kind,
            escalate_to_user_id: optional_id(self.escalate_to_user_id, "escalateToUserId")?,
            escalate_to_department_id: optional_id(
                self.escalate_to_department_id,
                "escalateToDepartmentId",
            )?,
            notify_customer_on_breach: self.notify_customer_on_breach,
            is_default: self.is_default,
        })
    }
}

#[derive(SimpleObject)]
pub struct OpeningHours {
    pub day: Weekday,
    /// Local time `HH:MM`.
    pub open: String,
    /// Local time `HH:MM` (`24:00` for midnight).
    pub close: String,
}

#[derive(InputObject)]
pub struct OpeningHoursInput {
    pub day: Weekday,
    pub open: String,
    pub close: String,
}

#[derive(SimpleObject)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: Option<String>,
}

#[derive(InputObject)]
pub struct HolidayInput {
    pub date: NaiveDate,
    pub name: Option<String>,
}

/// Weekly schedule and holidays; an update replaces both.
#[derive(InputObject)]
pub struct BusinessHoursInput {
    pub name: String,
    /// IANA name, e.g. Europe/Rome.
    pub time_zone: String,
    pub schedule: Vec<OpeningHoursInput>,
    #[graphql(default)]
    pub holidays: Vec<HolidayInput>,
}

impl From<BusinessHoursInput> for sla::BusinessHoursInput {
    fn from(i: BusinessHoursInput) -> Self {
        Self {
            name: i.name,
            time_zone: i.time_zone,
            schedule: i
                .schedule
                .into_iter()
                .map(|o| sla::OpeningInput {
                    day: o.day.into(),
                    open: o.open,
                    close: o.close,
                })
                .collect(),
            holidays: i
                .holidays
                .into_iter()
                .map(|h| sla::HolidayInput {
                    date: h.date,
                    name: h.name,
                })
                .collect(),
        }
    }
}

pub struct BusinessHours(pub sla::BusinessHoursView);

#[Object]
impl BusinessHours {
    async fn id(&self) -> ID {
        id(self.0.hours.id)
    }
    async fn name(&self) -> &str {
        &self.0.hours.name
    }
    async fn time_zone(&self) -> &str {
        &self.0.hours.timezone
    }
    async fn schedule(&self) -> Vec<OpeningHours> {
        let mut out = vec![];
        for (i, key) in sla::business_time::DAY_KEYS.iter().enumerate() {
            let Some(list) = self.0.hours.schedule.get(*key).and_then(|v| v.as_array()) else {
                continue;
            };
            for pair in list {
                if let (Some(open), Some(close)) = (
                    pair.get(0).and_then(|v| v.as_str()),
                    pair.get(1).and_then(|v| v.as_str()),
                ) {
                    out.push(OpeningHours {
                        day: WEEK[i],
                        open: open.into(),
                        close: close.into(),
                    });
                }
            }
        }
        out
    }
    async fn holidays(&self) -> Vec<Holiday> {
        self.0
            .holidays
            .iter()
            .map(|h| Holiday {
                date: h.date,
                name: h.name.clone(),
            })
            .collect()
    }
}

/// One recorded warning, escalation, breach or alert.
pub struct SlaEventRecord(pub sla_event::Model);

#[Object]
impl SlaEventRecord {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn kind(&self) -> SlaKind {
        self.0.kind
    }
    async fn level(&self) -> SlaLevel {
        self.0.level
    }
    /// The due time the event is about.
    async fn target_at(&self) -> DateTime<Utc> {
        self.0.target_at
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// Breaches: how late, in seconds, when recorded.
    async fn late_seconds(&self) -> Option<i64> {
        self.0.late_secs
    }
    /// 0 for the first clock; each reopen starts a new resolution cycle.
    async fn cycle(&self) -> i32 {
        self.0.cycle
    }
}

/// The SLA clocks of a conversation.
pub struct SlaState(pub sla::SlaState);

#[Object]
impl SlaState {
    /// Empty: the built-in defaults apply.
    async fn policy_id(&self) -> Option<ID> {
        self.0.policy_id.map(id)
    }
    async fn policy_name(&self) -> &str {
        &self.0.policy_name
    }
    async fn first_response_target_seconds(&self) -> i64 {
        self.0.first_response_target.num_seconds()
    }
    /// The target in whole minutes, as told to the customer.
    async fn first_response_target_minutes(&self) -> i64 {
        sla::whole_minutes(self.0.first_response_target)
    }
    async fn resolution_target_seconds(&self) -> i64 {
        self.0.resolution_target.num_seconds()
    }
    async fn warn_percent(&self) -> i32 {
        self.0.warn_percent
    }
    async fn first_response_due_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_response_due_at
    }
    async fn resolution_due_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolution_due_at
    }
    /// Business seconds left while the clock runs (negative: late).
    async fn first_response_remaining_seconds(&self) -> Option<i64> {
        self.0.first_response_remaining.map(|d| d.num_seconds())
    }
    async fn resolution_remaining_seconds(&self) -> Option<i64> {
        self.0.resolution_remaining.map(|d| d.num_seconds())
    }
    /// Waiting on the customer: the clocks stand still.
    async fn paused(&self) -> bool {
        self.0.paused
    }
    async fn warning(&self) -> bool {
        self.0.warning
    }
    async fn breached(&self) -> bool {
        self.0.breached
    }
    /// True met, false missed, empty while running.
    async fn first_response_met(&self) -> Option<bool> {
        self.0.first_response_met
    }
    async fn resolution_met(&self) -> Option<bool> {
        self.0.resolution_met
    }
    async fn events(&self) -> Vec<SlaEventRecord> {
        self.0.events.iter().cloned().map(SlaEventRecord).collect()
    }
}

/// A running clock near or past its due time.
pub struct SlaRisk(pub sla::AtRisk);

#[Object]
impl SlaRisk {
    async fn conversation(&self) -> Conversation {
        Conversation(self.0.conversation.clone())
    }
    async fn kind(&self) -> SlaKind {
        self.0.kind
    }
    async fn due_at(&self) -> DateTime<Utc> {
        self.0.due_at
    }
    /// Business seconds left (negative: late).
    async fn remaining_seconds(&self) -> i64 {
        self.0.remaining.num_seconds()
    }
    async fn breached(&self) -> bool {
        self.0.breached
    }
}

/// Compliance and escalation of one group (or of all).
pub struct SlaReportRow(pub sla::SlaReportRow);

#[Object]
impl SlaReportRow {
    /// The policy, department, agent or channel; empty when not grouped or for "none".
    async fn key(&self) -> Option<ID> {
        self.0.key.map(id)
    }
    /// Conversations whose clock started in the period.
    async fn conversations(&self) -> i64 {
        self.0.conversations
    }
    /// First-response targets met or past due.
    async fn first_response_decided(&self) -> i64 {
        self.0.first_response_decided
    }
    async fn first_response_met(&self) -> i64 {
        self.0.first_response_met
    }
    async fn resolution_decided(&self) -> i64 {
        self.0.resolution_decided
    }
    async fn resolution_met(&self) -> i64 {
        self.0.resolution_met
    }
    async fn escalated(&self) -> i64 {
        self.0.escalated
    }
    /// 0–1; empty when nothing is decided yet.
    async fn first_response_compliance(&self) -> Option<f64> {
        self.0.first_response_compliance()
    }
    async fn resolution_compliance(&self) -> Option<f64> {
        self.0.resolution_compliance()
    }
    /// Met targets over decided targets, both clocks (target 0.95).
    async fn compliance_rate(&self) -> Option<f64> {
        self.0.compliance()
    }
    async fn meets_compliance_target(&self) -> Option<bool> {
        self.0.compliance().map(|r| r >= sla::COMPLIANCE_TARGET)
    }
    /// Escalated over conversations (keep under 0.10–0.15).
    async fn escalation_rate(&self) -> Option<f64> {
        self.0.escalation_rate()
    }
    async fn escalation_within_limit(&self) -> Option<bool> {
        self.0
            .escalation_rate()
            .map(|r| r <= sla::ESCALATION_RATE_LIMIT)
    }
}

pub struct SlaMonth(sla::report::MonthCompliance);

#[Object]
impl SlaMonth {
    /// `YYYY-MM`.
    async fn month(&self) -> &str {
        &self.0.month
    }
    async fn report(&self) -> SlaReportRow {
        SlaReportRow(self.0.row.clone())
    }
}

pub struct SlaPolicyTrend(sla::report::PolicyTrend);

#[Object]
impl SlaPolicyTrend {
    async fn policy_id(&self) -> Option<ID> {
        self.0.policy_id.map(id)
    }
    async fn policy_name(&self) -> &str {
        &self.0.policy_name
    }
    async fn months(&self) -> Vec<SlaMonth> {
        self.0.months.iter().cloned().map(SlaMonth).collect()
    }
    async fn quarter(&self) -> SlaReportRow {
        SlaReportRow(self.0.quarter.clone())
    }
    async fn previous_quarter(&self) -> SlaReportRow {
        SlaReportRow(self.0.previous_quarter.clone())
    }
    /// Compliance this quarter minus the previous one (when both are known).
    async fn compliance_change(&self) -> Option<f64> {
        Some(self.0.quarter.compliance()? - self.0.previous_quarter.compliance()?)
    }
}

pub struct SlaQuarterlyReview(sla::QuarterlyReview);

#[Object]
impl SlaQuarterlyReview {
    async fn year(&self) -> i32 {
        self.0.year
    }
    async fn quarter(&self) -> u32 {
        self.0.quarter
    }
    async fn from(&self) -> DateTime<Utc> {
        self.0.from
    }
    async fn to(&self) -> DateTime<Utc> {
        self.0.to
    }
    async fn overall(&self) -> SlaReportRow {
        SlaReportRow(self.0.overall.clone())
    }
    /// Compliance trend per policy.
    async fn policies(&self) -> Vec<SlaPolicyTrend> {
        self.0
            .policies
            .iter()
            .cloned()
            .map(SlaPolicyTrend)
            .collect()
    }
}

#[derive(Default)]
pub struct SlaQuery;

#[Object]
impl SlaQuery {
    async fn sla_policies(&self, ctx: &Context<'_>) -> Result<Vec<SlaPolicy>> {
        let rows = ctx.domain().sla_policies(ctx.actor()?).await.gql()?;
        Ok(rows.into_iter().map(SlaPolicy).collect())
    }

    async fn business_hours(&self, ctx: &Context<'_>) -> Result<Vec<BusinessHours>> {
        let rows = ctx.domain().business_hours_list(ctx.actor()?).await.gql()?;
        Ok(rows.into_iter().map(BusinessHours).collect())
    }

    /// The SLA clocks of a conversation the caller may read.
    async fn sla_state(&self, ctx: &Context<'_>, conversation_id: ID) -> Result<SlaState> {
        let cid = parse_id(&conversation_id, "conversationId")?;
        Ok(SlaState(
            ctx.domain().sla_state(ctx.actor()?, cid).await.gql()?,
        ))
    }

    /// Running clocks past their warning point or late, least business time
    /// left first (an Agent: its own conversations).
    async fn sla_at_risk(
        &self,
        ctx: &Context<'_>,
        department_id: Option<ID>,
        first: Option<i32>,
    ) -> Result<Vec<SlaRisk>> {
        let department_id = optional_id(department_id, "departmentId")?;
        let rows = ctx
            .domain()
            .sla_at_risk(ctx.actor()?, department_id, first)
            .await
            .gql()?;
        Ok(rows.into_iter().map(SlaRisk).collect())
    }

    /// Compliance and escalation rates of conversations whose clock started
    /// in `[from, to)`.
    #[allow(clippy::too_many_arguments)]
    async fn sla_report(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_by: Option<SlaGroupBy>,
        policy_id: Option<ID>,
        department_id: Option<ID>,
        agent_id: Option<ID>,
    ) -> Result<Vec<SlaReportRow>> {
        let filter = sla::SlaReportFilter {
            from,
            to,
            group_by: group_by.unwrap_or_default().into(),
            policy_id: optional_id(policy_id, "policyId")?,
            department_id: optional_id(department_id, "departmentId")?,
            agent_id: optional_id(agent_id, "agentId")?,
        };
        let rows = ctx.domain().sla_report(ctx.actor()?, filter).await.gql()?;
        Ok(rows.into_iter().map(SlaReportRow).collect())
    }

    /// Compliance per policy, month by month over a quarter, against the previous one.
    async fn sla_quarterly_review(
        &self,
        ctx: &Context<'_>,
        year: i32,
        quarter: u32,
    ) -> Result<SlaQuarterlyReview> {
        Ok(SlaQuarterlyReview(
            ctx.domain()
                .sla_quarterly_review(ctx.actor()?, year, quarter)
                .await
                .gql()?,
        ))
    }
}

#[derive(Default)]
pub struct SlaMutation;

#[Object]
impl SlaMutation {
    async fn create_sla_policy(
        &self,
        ctx: &Context<'_>,
        input: SlaPolicyInput,
    ) -> Result<SlaPolicy> {
        let input = input.into_domain()?;
        Ok(SlaPolicy(
            ctx.domain()
                .create_sla_policy(ctx.actor()?, input)
                .await
                .gql()?,
        ))
    }

    /// Replaces every field of a policy.
    async fn update_sla_policy(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: SlaPolicyInput,
    ) -> Result<SlaPolicy> {
        let id = parse_id(&id, "id")?;
        let input = input.into_domain()?;
        Ok(SlaPolicy(
            ctx.domain()
                .update_sla_policy(ctx.actor()?, id, input)
                .await
                .gql()?,
        ))
    }

    async fn delete_sla_policy(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let pid = parse_id(&id, "id")?;
        ctx.domain()
            .delete_sla_policy(ctx.actor()?, pid)
            .await
            .gql()?;
        Ok(id)
    }

    async fn create_business_hours(
        &self,
        ctx: &Context<'_>,
        input: BusinessHoursInput,
    ) -> Result<BusinessHours> {
        Ok(BusinessHours(
            ctx.domain()
                .create_business_hours(ctx.actor()?, input.into())
                .await
                .gql()?,
        ))
    }

    /// Replaces the schedule and the holidays.
    async fn update_business_hours(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: BusinessHoursInput,
    ) -> Result<BusinessHours> {
        let id = parse_id(&id, "id")?;
        Ok(BusinessHours(
            ctx.domain()
                .update_business_hours(ctx.actor()?, id, input.into())
                .await
                .gql()?,
        ))
    }

    /// Waiting on the customer (status PENDING: SLA clocks pause if the policy
    /// says so) or back to OPEN (they resume).
    async fn set_waiting_on_customer(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        waiting: bool,
    ) -> Result<Conversation> {
        let cid = parse_id(&conversation_id, "conversationId")?;
        Ok(Conversation(
            ctx.domain()
                .set_waiting_on_customer(ctx.actor()?, cid, waiting)
                .await
                .gql()?,
        ))
    }
}
