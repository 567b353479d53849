//! Automation: auto-reply rules, live variables, lead flows, surveys and the
//! automation report.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::autoreply::{
    AutomationReport as DomainReport, RuleInput, RuleSaved, Schedule, rule_buttons, rule_keywords,
    rule_schedule, rule_variants,
};
use domain::lead_flow::{LeadFlowInput, Question, questions_of};
use entity::{
    SurveyKind, SurveyStatus, TriggerMode, auto_reply_rule, automation_variable, lead_flow, survey,
};

use super::context::{ContextExt, parse_id};
use super::error::IntoGql;

fn id(v: i64) -> ID {
    ID(v.to_string())
}

/// When an offline or scheduled rule applies. Days are ISO weekdays
/// (1 = Monday … 7 = Sunday); times are `HH:MM` in `timezone` (IANA, UTC
/// when omitted); a window whose end is before its start runs over midnight.
/// Offline rules use the business-hours calendar `businessHoursId` when
/// given, else the window `start`–`end`, by default 22:00–08:00.
#[derive(InputObject, SimpleObject, Clone, Default)]
#[graphql(input_name = "ScheduleInput")]
pub struct RuleSchedule {
    #[graphql(default)]
    pub days: Vec<u32>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub timezone: Option<String>,
    pub business_hours_id: Option<ID>,
}

impl RuleSchedule {
    fn into_domain(self) -> Result<Schedule> {
        Ok(Schedule {
            days: self.days,
            start: self.start,
            end: self.end,
            timezone: self.timezone,
            business_hours_id: self
                .business_hours_id
                .map(|i| parse_id(&i, "schedule.businessHoursId"))
                .transpose()?,
        })
    }

    fn from_domain(s: Schedule) -> Self {
        Self {
            days: s.days,
            start: s.start,
            end: s.end,
            timezone: s.timezone,
            business_hours_id: s.business_hours_id.map(id),
        }
    }
}

pub struct AutoReplyRule(pub auto_reply_rule::Model);

#[Object]
impl AutoReplyRule {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn trigger_mode(&self) -> TriggerMode {
        self.0.trigger_mode
    }
    /// Only this channel; every channel when null.
    async fn channel_id(&self) -> Option<ID> {
        self.0.channel_id.map(id)
    }
    /// Only conversations in this language; every language when null.
    async fn language(&self) -> Option<&str> {
        self.0.language.as_deref()
    }
    /// Keyword rules: words or phrases (case- and accent-insensitive, whole words).
    async fn keywords(&self) -> Vec<String> {
        rule_keywords(&self.0)
    }
    /// 1–5 reply texts (≤ 256 characters), one picked at random per reply.
    async fn variants(&self) -> Vec<String> {
        rule_variants(&self.0)
    }
    /// Quick-reply button titles (≤ 3, ≤ 20 characters).
    async fn buttons(&self) -> Vec<String> {
        rule_buttons(&self.0)
    }
    async fn schedule(&self) -> Option<RuleSchedule> {
        self.0
            .schedule
            .as_ref()
            .map(|_| RuleSchedule::from_domain(rule_schedule(&self.0)))
    }
    /// Higher first when several rules match.
    async fn priority(&self) -> i32 {
        self.0.priority
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A saved rule, with warnings about URLs, codes or numbers past the first
/// 150 characters (hidden in the phone's preview).
pub struct AutoReplyRulePayload(RuleSaved);

#[Object]
impl AutoReplyRulePayload {
    async fn rule(&self) -> AutoReplyRule {
        AutoReplyRule(self.0.rule.clone())
    }
    async fn warnings(&self) -> &[String] {
        &self.0.warnings
    }
}

/// Placeholders in variants: `{{name}}`, `{{conversation}}`, `{{sla_target}}`,
/// `{{KEY}}` for a live variable, and `{{if KEY < 10}}…{{else}}…{{end}}`.
#[derive(InputObject)]
pub struct AutoReplyRuleCreateInput {
    name: String,
    trigger_mode: TriggerMode,
    channel_id: Option<ID>,
    /// e.g. fr, it, en, es, pt.
    language: Option<String>,
    #[graphql(default)]
    keywords: Vec<String>,
    variants: Vec<String>,
    #[graphql(default)]
    buttons: Vec<String>,
    schedule: Option<RuleSchedule>,
    #[graphql(default)]
    priority: i32,
    #[graphql(default = true)]
    is_active: bool,
}

#[derive(InputObject)]
pub struct AutoReplyRuleUpdateInput {
    name: Option<String>,
    trigger_mode: Option<TriggerMode>,
    /// `null`: every channel.
    channel_id: MaybeUndefined<ID>,
    /// `null`: every language.
    language: MaybeUndefined<String>,
    keywords: Option<Vec<String>>,
    variants: Option<Vec<String>>,
    buttons: Option<Vec<String>>,
    schedule: MaybeUndefined<RuleSchedule>,
    priority: Option<i32>,
    is_active: Option<bool>,
}

fn maybe<T, U>(v: MaybeUndefined<T>, f: impl FnOnce(T) -> Result<U>) -> Result<Option<Option<U>>> {
    Ok(match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(x) => Some(Some(f(x)?)),
    })
}

#[derive(SimpleObject)]
pub struct AutomationVariable {
    key: String,
    value: String,
    updated_at: DateTime<Utc>,
}

impl From<automation_variable::Model> for AutomationVariable {
    fn from(m: automation_variable::Model) -> Self {
        Self {
            key: m.key,
            value: m.value,
            updated_at: m.updated_at,
        }
    }
}

/// A question of a lead flow; the answer is stored on the contact's field.
#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "LeadQuestionInput")]
pub struct LeadQuestion {
    field: String,
    question: String,
}

pub struct LeadFlow(pub lead_flow::Model);

#[Object]
impl LeadFlow {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Where qualified leads go.
    async fn department_id(&self) -> Option<ID> {
        self.0.department_id.map(id)
    }
    async fn trigger_keywords(&self) -> Vec<String> {
        serde_json::from_value(self.0.trigger_keywords.clone()).unwrap_or_default()
    }
    async fn questions(&self) -> Vec<LeadQuestion> {
        questions_of(&self.0)
            .into_iter()
            .map(|q| LeadQuestion {
                field: q.field,
                question: q.question,
            })
            .collect()
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject)]
pub struct LeadFlowCreateInput {
    name: String,
    department_id: Option<ID>,
    trigger_keywords: Vec<String>,
    questions: Vec<LeadQuestion>,
    #[graphql(default = true)]
    is_active: bool,
}

#[derive(InputObject)]
pub struct LeadFlowUpdateInput {
    name: Option<String>,
    department_id: MaybeUndefined<ID>,
    trigger_keywords: Option<Vec<String>>,
    questions: Option<Vec<LeadQuestion>>,
    is_active: Option<bool>,
}

fn questions(list: Vec<LeadQuestion>) -> Vec<Question> {
    list.into_iter()
        .map(|q| Question {
            field: q.field,
            question: q.question,
        })
        .collect()
}

#[derive(SimpleObject)]
pub struct KeywordHit {
    rule_id: Option<ID>,
    keyword: String,
    hits: i64,
}

/// Automation over a period.
#[derive(SimpleObject)]
pub struct AutomationReport {
    /// Conversations resolved or closed in the period.
    conversations_closed: i64,
    /// Of those, the ones no agent answered or held.
    closed_without_human: i64,
    /// `closedWithoutHuman / conversationsClosed` (0 to 1).
    automation_rate: f64,
    automated_replies: i64,
    handovers: i64,
    /// Which keywords fired, most first.
    keyword_hits: Vec<KeywordHit>,
}

impl From<DomainReport> for AutomationReport {
    fn from(r: DomainReport) -> Self {
        Self {
            conversations_closed: r.conversations_closed,
            closed_without_human: r.closed_without_human,
            automation_rate: r.automation_rate,
            automated_replies: r.automated_replies,
            handovers: r.handovers,
            keyword_hits: r
                .keyword_hits
                .into_iter()
                .map(|k| KeywordHit {
                    rule_id: k.rule_id.map(id),
                    keyword: k.keyword,
                    hits: k.hits,
                })
                .collect(),
        }
    }
}

#[derive(SimpleObject)]
pub struct Survey {
    id: ID,
    kind: SurveyKind,
    status: SurveyStatus,
    /// CSAT 1–5, NPS 0–10.
    score: Option<i32>,
    raw_answer: Option<String>,
    /// The agent who handled the conversation.
    agent_id: Option<ID>,
    round: i32,
    sent_at: DateTime<Utc>,
    answered_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

impl From<survey::Model> for Survey {
    fn from(m: survey::Model) -> Self {
        Self {
            id: id(m.id),
            kind: m.kind,
            status: m.status,
            score: m.score,
            raw_answer: m.raw_answer,
            agent_id: m.agent_id.map(id),
            round: m.round,
            sent_at: m.sent_at,
            answered_at: m.answered_at,
            expires_at: m.expires_at,
        }
    }
}

#[derive(Default)]
pub struct AutomationQuery;

#[Object]
impl AutomationQuery {
    /// Auto-reply rules, highest priority first (Admin).
    async fn auto_reply_rules(&self, ctx: &Context<'_>) -> Result<Vec<AutoReplyRule>> {
        let rows = ctx.domain().auto_reply_rules(ctx.actor()?).await.gql()?;
        Ok(rows.into_iter().map(AutoReplyRule).collect())
    }

    /// Live variables used in replies (Admin).
    async fn automation_variables(&self, ctx: &Context<'_>) -> Result<Vec<AutomationVariable>> {
        let rows = ctx
            .domain()
            .automation_variables(ctx.actor()?)
            .await
            .gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Lead pre-qualification flows (Admin).
    async fn lead_flows(&self, ctx: &Context<'_>) -> Result<Vec<LeadFlow>> {
        let rows = ctx.domain().lead_flows(ctx.actor()?).await.gql()?;
        Ok(rows.into_iter().map(LeadFlow).collect())
    }

    /// Automation rate and keyword hits, `from` inclusive, `to` exclusive.
    async fn automation_report(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<AutomationReport> {
        Ok(ctx
            .domain()
            .automation_report(ctx.actor()?, from, to)
            .await
            .gql()?
            .into())
    }

    /// CSAT / NPS surveys of a conversation.
    async fn surveys(&self, ctx: &Context<'_>, conversation_id: ID) -> Result<Vec<Survey>> {
        let cid = parse_id(&conversation_id, "conversationId")?;
        let rows = ctx.domain().surveys(ctx.actor()?, cid).await.gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct AutomationMutation;

#[Object]
impl AutomationMutation {
    async fn create_auto_reply_rule(
        &self,
        ctx: &Context<'_>,
        input: AutoReplyRuleCreateInput,
    ) -> Result<AutoReplyRulePayload> {
        let rule = RuleInput {
            name: Some(input.name),
            trigger_mode: Some(input.trigger_mode),
            channel_id: Some(
                input
                    .channel_id
                    .map(|c| parse_id(&c, "channelId"))
                    .transpose()?,
            ),
            language: Some(input.language),
            keywords: Some(input.keywords),
            variants: Some(input.variants),
            buttons: Some(input.buttons),
            schedule: Some(input.schedule.map(RuleSchedule::into_domain).transpose()?),
            priority: Some(input.priority),
            is_active: Some(input.is_active),
        };
        Ok(AutoReplyRulePayload(
            ctx.domain()
                .create_auto_reply_rule(ctx.actor()?, rule)
                .await
                .gql()?,
        ))
    }

    async fn update_auto_reply_rule(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AutoReplyRuleUpdateInput,
    ) -> Result<AutoReplyRulePayload> {
        let rid = parse_id(&id, "id")?;
        let rule = RuleInput {
            name: input.name,
            trigger_mode: input.trigger_mode,
            channel_id: maybe(input.channel_id, |c| parse_id(&c, "channelId"))?,
            language: maybe(input.language, Ok)?,
            keywords: input.keywords,
            variants: input.variants,
            buttons: input.buttons,
            schedule: maybe(input.schedule, RuleSchedule::into_domain)?,
            priority: input.priority,
            is_active: input.is_active,
        };
        Ok(AutoReplyRulePayload(
            ctx.domain()
                .update_auto_reply_rule(ctx.actor()?, rid, rule)
                .await
                .gql()?,
        ))
    }

    async fn delete_auto_reply_rule(&self, ctx: &Context<'_>, id: ID) -> Result<AutoReplyRule> {
        let rid = parse_id(&id, "id")?;
        Ok(AutoReplyRule(
            ctx.domain()
                .delete_auto_reply_rule(ctx.actor()?, rid)
                .await
                .gql()?,
        ))
    }

    /// Sets a live variable (value at most 5 KB), used by the next reply.
    async fn set_automation_variable(
        &self,
        ctx: &Context<'_>,
        key: String,
        value: String,
    ) -> Result<AutomationVariable> {
        Ok(ctx
            .domain()
            .set_automation_variable(ctx.actor()?, &key, &value)
            .await
            .gql()?
            .into())
    }

    async fn delete_automation_variable(
        &self,
        ctx: &Context<'_>,
        key: String,
    ) -> Result<AutomationVariable> {
        Ok(ctx
            .domain()
            .delete_automation_variable(ctx.actor()?, &key)
            .await
            .gql()?
            .into())
    }

    async fn create_lead_flow(
        &self,
        ctx: &Context<'_>,
        input: LeadFlowCreateInput,
    ) -> Result<LeadFlow> {
        let flow = LeadFlowInput {
            name: Some(input.name),
            department_id: Some(
                input
                    .department_id
                    .map(|d| parse_id(&d, "departmentId"))
                    .transpose()?,
            ),
            trigger_keywords: Some(input.trigger_keywords),
            questions: Some(questions(input.questions)),
            is_active: Some(input.is_active),
        };
        Ok(LeadFlow(
            ctx.domain()
                .create_lead_flow(ctx.actor()?, flow)
                .await
                .gql()?,
        ))
    }

    async fn update_lead_flow(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: LeadFlowUpdateInput,
    ) -> Result<LeadFlow> {
        let fid = parse_id(&id, "id")?;
        let flow = LeadFlowInput {
            name: input.name,
            department_id: maybe(input.department_id, |d| parse_id(&d, "departmentId"))?,
            trigger_keywords: input.trigger_keywords,
            questions: input.questions.map(questions),
            is_active: input.is_active,
        };
        Ok(LeadFlow(
            ctx.domain()
                .update_lead_flow(ctx.actor()?, fid, flow)
                .await
                .gql()?,
        ))
    }

    async fn delete_lead_flow(&self, ctx: &Context<'_>, id: ID) -> Result<LeadFlow> {
        let fid = parse_id(&id, "id")?;
        Ok(LeadFlow(
            ctx.domain()
                .delete_lead_flow(ctx.actor()?, fid)
                .await
                .gql()?,
        ))
    }
}
