//! Metrics and reports: one `metrics(range: …)` entry point whose fields are
//! the metric families (Admin, Editor, Analyst and API tokens; an Agent gets
//! FORBIDDEN), and `markConverted` for the funnel's last layer. The rules and
//! their definitions live in `domain::metrics`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::Capability;
use domain::billing::{BillingFilter, Granularity as BillingGranularity};
use domain::metrics::{self as m, agents, funnel, response, time_of_day, waiting};

use super::context::{ContextExt, parse_id};
use super::error::{IntoGql, to_graphql};
use super::messaging::Billing;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum MetricsGranularity {
    Hour,
    #[default]
    Day,
    /// ISO weeks, starting Monday.
    Week,
    Month,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum MetricsDimension {
    /// The conversation's current assignee.
    Agent,
    Department,
    Channel,
    /// Each tag of the conversation; untagged conversations are left out.
    Tag,
    Topic,
    Priority,
}

#[derive(InputObject, Default)]
pub struct MetricsFilterInput {
    agent_id: Option<ID>,
    department_id: Option<ID>,
    channel_id: Option<ID>,
    tag_id: Option<ID>,
    topic: Option<String>,
    priority: Option<entity::Priority>,
}

#[derive(InputObject)]
pub struct MetricsRangeInput {
    /// Inclusive.
    from: DateTime<Utc>,
    /// Exclusive; at most 400 days after `from` (31 for HOUR).
    to: DateTime<Utc>,
    /// Of `series`; DAY when omitted.
    granularity: Option<MetricsGranularity>,
    /// IANA name for buckets and hours of day; UTC when omitted.
    time_zone: Option<String>,
    /// Splits `byDimension` and `series`.
    dimension: Option<MetricsDimension>,
    filters: Option<MetricsFilterInput>,
}

impl MetricsRangeInput {
    fn into_domain(self) -> Result<m::MetricsQuery> {
        let f = self.filters.unwrap_or_default();
        let id = |v: Option<ID>, field: &str| v.map(|v| parse_id(&v, field)).transpose();
        let filters = m::MetricsFilter {
            agent_id: id(f.agent_id, "agentId")?,
            department_id: id(f.department_id, "departmentId")?,
            channel_id: id(f.channel_id, "channelId")?,
            tag_id: id(f.tag_id, "tagId")?,
            topic: f.topic,
            priority: f.priority,
        };
        let granularity = match self.granularity.unwrap_or_default() {
            MetricsGranularity::Hour => m::Granularity::Hour,
            MetricsGranularity::Day => m::Granularity::Day,
            MetricsGranularity::Week => m::Granularity::Week,
            MetricsGranularity::Month => m::Granularity::Month,
        };
        let dimension = self.dimension.map(|d| match d {
            MetricsDimension::Agent => m::Dimension::Agent,
            MetricsDimension::Department => m::Dimension::Department,
            MetricsDimension::Channel => m::Dimension::Channel,
            MetricsDimension::Tag => m::Dimension::Tag,
            MetricsDimension::Topic => m::Dimension::Topic,
            MetricsDimension::Priority => m::Dimension::Priority,
        });
        m::MetricsQuery::new(
            self.from,
            self.to,
            granularity,
            self.time_zone.as_deref().unwrap_or("UTC"),
            dimension,
            filters,
        )
        .gql()
    }
}

/// The core KPIs of a group of conversations (definitions in the domain's
/// `metrics::response`). Rates are fractions 0–1; null without a denominator.
#[derive(SimpleObject)]
pub struct Kpis {
    conversations: i64,
    responded: i64,
    first_response_mean_seconds: Option<f64>,
    first_response_median_seconds: Option<f64>,
    first_response_p90_seconds: Option<f64>,
    resolved: i64,
    resolution_rate: Option<f64>,
    resolution_mean_seconds: Option<f64>,
    csat_answers: i64,
    /// Mean of the 1–5 answers.
    csat_mean: Option<f64>,
    /// Answers of 4 or 5.
    csat_satisfied: i64,
    csat_satisfied_rate: Option<f64>,
    nps_answers: i64,
    nps_promoters: i64,
    nps_passives: i64,
    nps_detractors: i64,
    /// % promoters − % detractors (−100 to 100).
    nps: Option<f64>,
    first_contact_resolved: i64,
    first_contact_resolution_rate: Option<f64>,
    sla_tracked: i64,
    sla_breached: i64,
    sla_compliance: Option<f64>,
    escalated: i64,
    escalation_rate: Option<f64>,
    transferred: i64,
    transfer_rate: Option<f64>,
    automated: i64,
    automation_rate: Option<f64>,
    ever_resolved: i64,
    reopened: i64,
    reopen_rate: Option<f64>,
    messages_in: i64,
    messages_out: i64,
}

impl From<response::Kpis> for Kpis {
    fn from(k: response::Kpis) -> Self {
        Self {
            resolution_rate: k.resolution_rate(),
            csat_satisfied_rate: k.csat_satisfied_rate(),
            nps: k.nps(),
            first_contact_resolution_rate: k.first_contact_resolution_rate(),
            sla_compliance: k.sla_compliance(),
            escalation_rate: k.escalation_rate(),
            transfer_rate: k.transfer_rate(),
            automation_rate: k.automation_rate(),
            reopen_rate: k.reopen_rate(),
            conversations: k.conversations,
            responded: k.responded,
            first_response_mean_seconds: k.first_response_mean_secs,
            first_response_median_seconds: k.first_response_median_secs,
            first_response_p90_seconds: k.first_response_p90_secs,
            resolved: k.resolved,
            resolution_mean_seconds: k.resolution_mean_secs,
            csat_answers: k.csat_answers,
            csat_mean: k.csat_mean,
            csat_satisfied: k.csat_satisfied,
            nps_answers: k.nps_answers,
            nps_promoters: k.nps_promoters,
            nps_passives: k.nps_passives,
            nps_detractors: k.nps_detractors,
            first_contact_resolved: k.first_contact_resolved,
            sla_tracked: k.sla_tracked,
            sla_breached: k.sla_breached,
            escalated: k.escalated,
            transferred: k.transferred,
            automated: k.automated,
            ever_resolved: k.ever_resolved,
            reopened: k.reopened,
            messages_in: k.messages_in,
            messages_out: k.messages_out,
        }
    }
}

/// A time bucket and/or dimension value with its KPIs.
#[derive(SimpleObject)]
pub struct KpiRow {
    /// Local start of the bucket, `YYYY-MM-DDTHH:MM`.
    bucket: Option<String>,
    bucket_start: Option<DateTime<Utc>>,
    /// The dimension value: an id (agent, department, channel, tag), a topic
    /// or a priority.
    key: Option<String>,
    /// Its name.
    label: Option<String>,
    kpis: Kpis,
}

impl From<response::KpiRow> for KpiRow {
    fn from(r: response::KpiRow) -> Self {
        Self {
            bucket: r.bucket,
            bucket_start: r.bucket_start,
            key: r.key,
            label: r.label,
            kpis: r.kpis.into(),
        }
    }
}

/// One agent's KPIs (definitions in the domain's `metrics::agents`).
#[derive(SimpleObject)]
pub struct AgentKpis {
    agent_id: ID,
    name: Option<String>,
    assigned: i64,
    resolved: i64,
    resolution_rate: Option<f64>,
    /// Resolution rate under 85 %.
    resolution_rate_flag: bool,
    /// Average response speed.
    response_mean_seconds: Option<f64>,
    handled: i64,
    transferred_out: i64,
    transfer_rate: Option<f64>,
    /// Transfer rate over 15 %: training suggested.
    transfer_rate_flag: bool,
    rating_answers: i64,
    rating_mean: Option<f64>,
    /// Mean rating under 4.
    rating_alert: bool,
    online_seconds: f64,
    /// 6.5 h per day of the range.
    online_target_seconds: f64,
    online_meets_target: bool,
    handling_seconds: f64,
    /// Handling ÷ online time.
    utilisation: Option<f64>,
    /// Utilisation within the 85–90 % target.
    utilisation_in_target: bool,
    agent_characters: i64,
    /// Resolved conversations per 100 characters of agent text.
    effective_interaction_ratio: Option<f64>,
}

impl From<agents::AgentKpis> for AgentKpis {
    fn from(a: agents::AgentKpis) -> Self {
        let (lo, hi) = agents::UTILISATION_TARGET;
        Self {
            agent_id: ID(a.agent_id.to_string()),
            resolution_rate: a.resolution_rate(),
            resolution_rate_flag: a.resolution_rate_flag(),
            transfer_rate: a.transfer_rate(),
            transfer_rate_flag: a.transfer_rate_flag(),
            rating_alert: a.rating_alert(),
            online_meets_target: a.online_meets_target(),
            utilisation: a.utilisation(),
            utilisation_in_target: a.utilisation().is_some_and(|u| (lo..=hi).contains(&u)),
            effective_interaction_ratio: a.effective_interaction_ratio(),
            name: a.name,
            assigned: a.assigned,
            resolved: a.resolved,
            response_mean_seconds: a.response_mean_secs,
            handled: a.handled,
            transferred_out: a.transferred_out,
            rating_answers: a.rating_answers,
            rating_mean: a.rating_mean,
            online_seconds: a.online_secs,
            online_target_seconds: a.online_target_secs,
            handling_seconds: a.handling_secs,
            agent_characters: a.agent_characters,
        }
    }
}

#[derive(SimpleObject)]
pub struct RankedAgent {
    rank: i64,
    previous_rank: Option<i64>,
    previous_resolved: Option<i64>,
    agent: AgentKpis,
}

/// Agents of the 7 days ending at `to`, against the 7 days before.
#[derive(SimpleObject)]
pub struct AgentRanking {
    week_start: DateTime<Utc>,
    week_end: DateTime<Utc>,
    agents: Vec<RankedAgent>,
    resolved_spread: Option<i64>,
    resolution_rate_spread: Option<f64>,
    response_spread_seconds: Option<f64>,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum FunnelStage {
    Opened,
    FirstResponse,
    Resolved,
    Converted,
}

#[derive(SimpleObject)]
pub struct FunnelLayer {
    stage: FunnelStage,
    count: i64,
    previous_count: i64,
    /// Count ÷ opened.
    rate: Option<f64>,
    /// Count ÷ the layer above.
    step_rate: Option<f64>,
    previous_step_rate: Option<f64>,
    /// Relative change against the previous equal period.
    change: Option<f64>,
    /// Dropped more than 15 %.
    alert: bool,
}

#[derive(SimpleObject)]
pub struct Funnel {
    previous_from: DateTime<Utc>,
    previous_to: DateTime<Utc>,
    layers: Vec<FunnelLayer>,
    converted_amount_micros: i64,
    previous_converted_amount_micros: i64,
}

#[derive(SimpleObject)]
pub struct HourVolume {
    hour: i32,
    conversations: i64,
}

#[derive(SimpleObject)]
pub struct WeekdayVolume {
    /// ISO: 1 = Monday … 7 = Sunday.
    weekday: i32,
    conversations: i64,
}

#[derive(SimpleObject)]
pub struct HourStaffing {
    hour: i32,
    conversations: i64,
    arrivals_per_hour: f64,
    /// Agents needed to keep the first response within the target.
    agents: Option<i64>,
}

#[derive(SimpleObject)]
pub struct TimeOfDay {
    by_hour: Vec<HourVolume>,
    by_weekday: Vec<WeekdayVolume>,
    /// The 3 busiest hours of the 7 days ending at `to`.
    peak_hours: Vec<HourVolume>,
    handle_mean_seconds: Option<f64>,
    frt_target_seconds: f64,
    concurrency: i32,
    staffing: Vec<HourStaffing>,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WaitBucket {
    UnderFiveMinutes,
    FiveToFifteenMinutes,
    OverFifteenMinutes,
}

#[derive(SimpleObject)]
pub struct WaitingBucket {
    bucket: WaitBucket,
    conversations: i64,
    converted: i64,
    conversion_rate: Option<f64>,
}

#[derive(SimpleObject)]
pub struct RepeatContacts {
    /// Null on the total row.
    topic: Option<String>,
    conversations: i64,
    repeats: i64,
    rate: Option<f64>,
    /// Rate over 15 %.
    flagged: bool,
}

/// The metrics of one range; each field is its own query.
pub struct Metrics(m::MetricsQuery);

#[Object]
impl Metrics {
    async fn from(&self) -> DateTime<Utc> {
        self.0.from
    }
    async fn to(&self) -> DateTime<Utc> {
        self.0.to
    }
    async fn time_zone(&self) -> String {
        self.0.time_zone.name().to_string()
    }

    /// The core KPIs over the whole range.
    async fn overview(&self, ctx: &Context<'_>) -> Result<Kpis> {
        let k = ctx
            .domain()
            .metrics_overview(ctx.actor()?, &self.0)
            .await
            .gql()?;
        Ok(k.into())
    }

    /// The core KPIs per value of the range's dimension.
    async fn by_dimension(&self, ctx: &Context<'_>) -> Result<Vec<KpiRow>> {
        let rows = ctx
            .domain()
            .metrics_by_dimension(ctx.actor()?, &self.0)
            .await
            .gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The core KPIs per time bucket (and dimension value); buckets without
    /// conversations or messages are absent.
    async fn series(&self, ctx: &Context<'_>) -> Result<Vec<KpiRow>> {
        let rows = ctx
            .domain()
            .metrics_series(ctx.actor()?, &self.0)
            .await
            .gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Per-agent KPIs, by agent id.
    async fn agents(&self, ctx: &Context<'_>) -> Result<Vec<AgentKpis>> {
        let rows = ctx.domain().agent_kpis(ctx.actor()?, &self.0).await.gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The weekly comparison ending at `to`.
    async fn agent_ranking(&self, ctx: &Context<'_>) -> Result<AgentRanking> {
        let r = ctx
            .domain()
            .agent_ranking(ctx.actor()?, &self.0)
            .await
            .gql()?;
        Ok(AgentRanking {
            week_start: r.week_start,
            week_end: r.week_end,
            resolved_spread: r.resolved_spread,
            resolution_rate_spread: r.resolution_rate_spread,
            response_spread_seconds: r.response_spread_secs,
            agents: r
                .agents
                .into_iter()
                .map(|a| RankedAgent {
                    rank: a.rank as i64,
                    previous_rank: a.previous_rank.map(|r| r as i64),
                    previous_resolved: a.previous_resolved,
                    agent: a.kpis.into(),
                })
                .collect(),
        })
    }

    /// Opened → first response → resolved → converted, against the previous
    /// equal period.
    async fn funnel(&self, ctx: &Context<'_>) -> Result<Funnel> {
        let f = ctx.domain().funnel(ctx.actor()?, &self.0).await.gql()?;
        Ok(Funnel {
            previous_from: f.previous_from,
            previous_to: f.previous_to,
            converted_amount_micros: f.converted_amount_micros,
            previous_converted_amount_micros: f.previous_converted_amount_micros,
            layers: f
                .layers
                .into_iter()
                .map(|l| FunnelLayer {
                    stage: match l.stage {
                        funnel::FunnelStage::Opened => FunnelStage::Opened,
                        funnel::FunnelStage::FirstResponse => FunnelStage::FirstResponse,
                        funnel::FunnelStage::Resolved => FunnelStage::Resolved,
                        funnel::FunnelStage::Converted => FunnelStage::Converted,
                    },
                    count: l.count,
                    previous_count: l.previous_count,
                    rate: l.rate,
                    step_rate: l.step_rate,
                    previous_step_rate: l.previous_step_rate,
                    change: l.change,
                    alert: l.alert,
                })
                .collect(),
        })
    }

    /// Volume by local hour and weekday, peak hours, staffing suggestion.
    async fn time_of_day(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 150.0, desc = "First-response target in seconds")]
        frt_target_seconds: f64,
        #[graphql(default = 1, desc = "Chats one agent handles at once")] concurrency: i32,
    ) -> Result<TimeOfDay> {
        let concurrency = u32::try_from(concurrency).map_err(|_| {
            to_graphql(domain::DomainError::invalid(
                "concurrency",
                "must be at least 1",
            ))
        })?;
        let t = ctx
            .domain()
            .time_of_day(ctx.actor()?, &self.0, frt_target_seconds, concurrency)
            .await
            .gql()?;
        let hour = |(h, n): (usize, i64)| HourVolume {
            hour: h as i32,
            conversations: n,
        };
        Ok(TimeOfDay {
            by_hour: t.by_hour.into_iter().enumerate().map(hour).collect(),
            by_weekday: t
                .by_weekday
                .into_iter()
                .enumerate()
                .map(|(d, n)| WeekdayVolume {
                    weekday: d as i32 + 1,
                    conversations: n,
                })
                .collect(),
            peak_hours: t
                .peak_hours
                .into_iter()
                .map(|(h, n)| hour((h as usize, n)))
                .collect(),
            handle_mean_seconds: t.handle_mean_secs,
            frt_target_seconds: t.frt_target_secs,
            concurrency: t.concurrency as i32,
            staffing: t
                .staffing
                .into_iter()
                .map(|s: time_of_day::HourStaffing| HourStaffing {
                    hour: s.hour as i32,
                    conversations: s.conversations,
                    arrivals_per_hour: s.arrivals_per_hour,
                    agents: s.agents.map(i64::from),
                })
                .collect(),
        })
    }

    /// Conversations by wait for a first response, with conversion rates.
    async fn waiting_time(&self, ctx: &Context<'_>) -> Result<Vec<WaitingBucket>> {
        let rows = ctx
            .domain()
            .waiting_time(ctx.actor()?, &self.0)
            .await
            .gql()?;
        Ok(rows
            .into_iter()
            .map(|r| WaitingBucket {
                conversion_rate: r.conversion_rate(),
                bucket: match r.bucket {
                    waiting::WaitBucket::UnderFiveMinutes => WaitBucket::UnderFiveMinutes,
                    waiting::WaitBucket::FiveToFifteenMinutes => WaitBucket::FiveToFifteenMinutes,
                    waiting::WaitBucket::OverFifteenMinutes => WaitBucket::OverFifteenMinutes,
                },
                conversations: r.conversations,
                converted: r.converted,
            })
            .collect())
    }

    /// Same contact, same topic within 7 days: the total, then per topic.
    async fn repeat_contacts(&self, ctx: &Context<'_>) -> Result<Vec<RepeatContacts>> {
        let rows = ctx
            .domain()
            .repeat_contacts(ctx.actor()?, &self.0)
            .await
            .gql()?;
        Ok(rows
            .into_iter()
            .map(|r| RepeatContacts {
                rate: r.rate(),
                flagged: r.flagged(),
                topic: r.topic,
                conversations: r.conversations,
                repeats: r.repeats,
            })
            .collect())
    }

    /// Message cost from the billing ledger (UTC days, or UTC months when the
    /// granularity is MONTH), with the channel filter.
    async fn cost(&self, ctx: &Context<'_>) -> Result<Billing> {
        let filter = BillingFilter {
            from: self.0.from,
            to: self.0.to,
            channel_id: self.0.filters.channel_id,
            conversation_id: None,
            granularity: match self.0.granularity {
                m::Granularity::Month => BillingGranularity::Month,
                _ => BillingGranularity::Day,
            },
        };
        Ok(Billing(
            ctx.domain().billing(ctx.actor()?, filter).await.gql()?,
        ))
    }
}

/// The result of `markConverted`.
#[derive(SimpleObject)]
pub struct Conversion {
    conversation_id: ID,
    converted_at: Option<DateTime<Utc>>,
    amount_micros: Option<i64>,
}

#[derive(Default)]
pub struct MetricsQuery;

#[Object]
impl MetricsQuery {
    /// Metrics and reports for `range` (Admin, Editor, Analyst, API tokens).
    async fn metrics(&self, ctx: &Context<'_>, range: MetricsRangeInput) -> Result<Metrics> {
        ctx.actor()?.require(Capability::ReadMetrics).gql()?;
        Ok(Metrics(range.into_domain()?))
    }
}

#[derive(Default)]
pub struct MetricsMutation;

#[Object]
impl MetricsMutation {
    /// Marks a conversation converted (paid) for the funnel, with the amount
    /// in the shop's currency (Editor/Admin; audited). Again: replaces it.
    async fn mark_converted(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        amount: Option<f64>,
        converted_at: Option<DateTime<Utc>>,
    ) -> Result<Conversion> {
        let id = parse_id(&conversation_id, "conversationId")?;
        let micros = match amount {
            Some(a) if !a.is_finite() || a.abs() > 1e12 => {
                return Err(to_graphql(domain::DomainError::invalid(
                    "amount",
                    "is not a valid amount",
                )));
            }
            Some(a) => Some((a * 1_000_000.0).round() as i64),
            None => None,
        };
        let c = ctx
            .domain()
            .mark_converted(ctx.actor()?, id, micros, converted_at)
            .await
            .gql()?;
        Ok(Conversion {
            conversation_id: ID(c.id.to_string()),
            converted_at: c.converted_at,
            amount_micros: c.conversion_amount_micros,
        })
    }
}
