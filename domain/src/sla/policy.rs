//! SLA policies and business-hours calendars: their configuration (Admin,
//! audited) and which one applies to a conversation.
//!
//! A policy matches a conversation when each criterion it sets (priority,
//! channel, department) equals the conversation's; the most specific match
//! wins (ties: the default policy, then the oldest). With no match the
//! built-in defaults apply: first response 10 min (4 min for high and urgent
//! priority, i.e. under 5), resolution 24 h, warning and escalation at 80 %,
//! around the clock, per-topic tolerances logistics 12 min and price
//! complaint 8 min.
//!
//! Per-topic tolerances replace the first-response target for that topic.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate, Weekday};
use entity::{EscalationKind, Priority, business_hours, conversation, holiday, sla_policy};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use serde_json::{Value, json};

use super::business_time::{Calendar, Interval, day_index, parse_hhmm, parse_time_zone};
use crate::audit::{self, Change};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// Built-in targets when no policy matches.
pub const DEFAULT_FIRST_RESPONSE_SECS: i64 = 10 * 60;
pub const DEFAULT_IMPORTANT_FIRST_RESPONSE_SECS: i64 = 4 * 60;
pub const DEFAULT_RESOLUTION_SECS: i64 = 24 * 3600;
pub const DEFAULT_WARN_PERCENT: i32 = 80;
pub const DEFAULT_TOPIC_TOLERANCES: [(&str, i64); 3] = [
    ("logistics", 12 * 60),
    ("price complaint", 8 * 60),
    ("price_complaint", 8 * 60),
];
/// Longest target accepted: 90 days.
const MAX_TARGET_SECS: i64 = 90 * 24 * 3600;

/// High and urgent priority (VIP customers get at least high).
pub fn is_important(p: Priority) -> bool {
    matches!(p, Priority::High | Priority::Urgent)
}

/// What an SLA policy says, input of `createSlaPolicy` / `updateSlaPolicy`
/// (an update replaces the whole policy).
#[derive(Debug, Clone, Default)]
pub struct SlaPolicyInput {
    pub name: String,
    pub priority: Option<Priority>,
    pub channel_id: Option<i64>,
    pub department_id: Option<i64>,
    pub business_hours_id: Option<i64>,
    pub first_response_secs: i64,
    pub resolution_secs: i64,
    /// 1–99; default 80.
    pub warn_percent: Option<i32>,
    pub topic_tolerances: Vec<(String, i64)>,
    /// Default true.
    pub pause_when_pending: Option<bool>,
    pub escalation_kind: Option<EscalationKind>,
    pub escalate_to_user_id: Option<i64>,
    pub escalate_to_department_id: Option<i64>,
    pub notify_customer_on_breach: bool,
    pub is_default: bool,
}

/// A weekly opening interval as typed: `"09:00"`–`"18:00"`.
#[derive(Debug, Clone)]
pub struct OpeningInput {
    pub day: Weekday,
    pub open: String,
    pub close: String,
}

#[derive(Debug, Clone)]
pub struct HolidayInput {
    pub date: NaiveDate,
    pub name: Option<String>,
}

/// Input of `createBusinessHours` / `updateBusinessHours` (replaces the
/// schedule and the holidays).
#[derive(Debug, Clone)]
pub struct BusinessHoursInput {
    pub name: String,
    pub time_zone: String,
    pub schedule: Vec<OpeningInput>,
    pub holidays: Vec<HolidayInput>,
}

/// A business-hours calendar with its holidays.
#[derive(Debug, Clone)]
pub struct BusinessHoursView {
    pub hours: business_hours::Model,
    pub holidays: Vec<holiday::Model>,
}

/// Escalation at the warning threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    pub kind: EscalationKind,
    pub to_user_id: Option<i64>,
    pub to_department_id: Option<i64>,
}

/// The rules in force for one conversation.
#[derive(Debug, Clone)]
pub struct Effective {
    /// `None`: the built-in defaults.
    pub policy_id: Option<i64>,
    pub name: String,
    pub first_response: Duration,
    pub resolution: Duration,
    pub warn_percent: i32,
    pub pause_when_pending: bool,
    pub escalation: Escalation,
    pub notify_customer_on_breach: bool,
    pub calendar: Calendar,
}

impl Effective {
    /// Business time left at the warning point: `(100 - warn) %` of `target`.
    pub fn warning_lead(&self, target: Duration) -> Duration {
        target * (100 - self.warn_percent) / 100
    }
}

fn name_of(value: &str, field: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > 80 {
        return Err(DomainError::invalid(field, "must be 1 to 80 characters"));
    }
    Ok(v.to_string())
}

fn target(secs: i64, field: &str) -> Result<i32> {
    if secs <= 0 {
        return Err(DomainError::invalid(field, "must be greater than 0"));
    }
    if secs > MAX_TARGET_SECS {
        return Err(DomainError::invalid(field, "at most 90 days"));
    }
    Ok(secs as i32)
}

fn tolerances_json(list: &[(String, i64)]) -> Result<Value> {
    let mut map = BTreeMap::new();
    for (topic, secs) in list {
        let topic = crate::assignment::parse_topic(Some(topic))
            .map_err(|_| DomainError::invalid("topicTolerances", "a topic is 1 to 60 characters"))?
            .ok_or_else(|| DomainError::invalid("topicTolerances", "a topic cannot be blank"))?;
        let secs = target(*secs, "topicTolerances")?;
        if map.insert(topic.clone(), secs).is_some() {
            return Err(DomainError::invalid(
                "topicTolerances",
                format!("topic {topic:?} given twice"),
            ));
        }
    }
    Ok(json!(map))
}

/// The conversation's first-response target under a policy row (topic applied).
fn policy_first_response(p: &sla_policy::Model, topic: Option<&str>) -> Duration {
    let by_topic = topic
        .and_then(|t| p.topic_tolerances.get(t))
        .and_then(Value::as_i64);
    Duration::seconds(by_topic.unwrap_or(p.first_response_secs.into()))
}

fn default_first_response(c: &conversation::Model) -> Duration {
    if is_important(c.priority) {
        return Duration::seconds(DEFAULT_IMPORTANT_FIRST_RESPONSE_SECS);
    }
    let by_topic = c.topic.as_deref().and_then(|t| {
        DEFAULT_TOPIC_TOLERANCES
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, s)| *s)
    });
    Duration::seconds(by_topic.unwrap_or(DEFAULT_FIRST_RESPONSE_SECS))
}

/// All policies and calendars, loaded once per sweep or per change.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub policies: Vec<sla_policy::Model>,
    pub calendars: HashMap<i64, Calendar>,
}

impl Rules {
    pub async fn load(db: &impl ConnectionTrait) -> Result<Self> {
        let policies = sla_policy::Entity::find()
            .order_by_asc(sla_policy::Column::Id)
            .all(db)
            .await?;
        // Without policies only the built-in defaults apply (around the clock).
        if policies.is_empty() {
            return Ok(Self::default());
        }
        let hours = business_hours::Entity::find().all(db).await?;
        let mut holidays: HashMap<i64, Vec<NaiveDate>> = HashMap::new();
        for h in holiday::Entity::find().all(db).await? {
            holidays
                .entry(h.business_hours_id)
                .or_default()
                .push(h.date);
        }
        let mut calendars = HashMap::new();
        for h in hours {
            let days = holidays.remove(&h.id).unwrap_or_default();
            match Calendar::from_stored(&h.timezone, &h.schedule, days) {
                Ok(cal) => {
                    calendars.insert(h.id, cal);
                }
                Err(e) => tracing::warn!(id = h.id, error = %e, "unusable business hours"),
            }
        }
        Ok(Self {
            policies,
            calendars,
        })
    }

    /// The policy that fits the conversation now (most specific match).
    pub fn matching(&self, c: &conversation::Model) -> Option<&sla_policy::Model> {
        self.policies
            .iter()
            .filter(|p| {
                p.priority.is_none_or(|x| x == c.priority)
                    && p.channel_id.is_none_or(|x| x == c.channel_id)
                    && p.department_id.is_none_or(|x| Some(x) == c.department_id)
            })
            .max_by_key(|p| {
                let specificity = i32::from(p.priority.is_some())
                    + i32::from(p.channel_id.is_some())
                    + i32::from(p.department_id.is_some());
                (specificity, p.is_default, -p.id)
            })
    }

    /// A policy's calendar; around the clock without business hours.
    pub fn calendar_of(&self, policy: Option<&sla_policy::Model>) -> Calendar {
        policy
            .and_then(|p| p.business_hours_id)
            .and_then(|id| self.calendars.get(&id).cloned())
            .unwrap_or_default()
    }

    pub fn policy(&self, id: i64) -> Option<&sla_policy::Model> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// The rules for a conversation under `policy` (`None`: the built-in ones).
    pub fn effective(
        &self,
        policy: Option<&sla_policy::Model>,
        c: &conversation::Model,
    ) -> Effective {
        match policy {
            Some(p) => Effective {
                policy_id: Some(p.id),
                name: p.name.clone(),
                first_response: policy_first_response(p, c.topic.as_deref()),
                resolution: Duration::seconds(p.resolution_secs.into()),
                warn_percent: p.warn_percent.clamp(1, 99),
                pause_when_pending: p.pause_when_pending,
                escalation: Escalation {
                    kind: p.escalation_kind,
                    to_user_id: p.escalate_to_user_id,
                    to_department_id: p.escalate_to_department_id,
                },
                notify_customer_on_breach: p.notify_customer_on_breach,
                calendar: self.calendar_of(Some(p)),
            },
            None => Effective {
                policy_id: None,
                name: "Built-in defaults".into(),
                first_response: default_first_response(c),
                resolution: Duration::seconds(DEFAULT_RESOLUTION_SECS),
                warn_percent: DEFAULT_WARN_PERCENT,
                pause_when_pending: true,
                escalation: Escalation {
                    kind: EscalationKind::Hierarchical,
                    to_user_id: None,
                    to_department_id: None,
                },
                notify_customer_on_breach: false,
                calendar: Calendar::always(),
            },
        }
    }

    /// The rules a conversation's clocks run under: its stored policy.
    pub fn of(&self, c: &conversation::Model) -> Effective {
        self.effective(c.sla_policy_id.and_then(|id| self.policy(id)), c)
    }

    /// The rules that would apply if the clock started now.
    pub fn fitting(&self, c: &conversation::Model) -> Effective {
        self.effective(self.matching(c), c)
    }

    /// The largest warning lead of a policy over all its topics: the sweep
    /// looks this far ahead.
    pub fn max_leads(&self, policy: Option<&sla_policy::Model>) -> (Duration, Duration) {
        let (warn, first, resolution): (i32, Vec<i64>, i64) = match policy {
            Some(p) => {
                let mut first = vec![i64::from(p.first_response_secs)];
                if let Some(map) = p.topic_tolerances.as_object() {
                    first.extend(map.values().filter_map(Value::as_i64));
                }
                (p.warn_percent.clamp(1, 99), first, p.resolution_secs.into())
            }
            None => {
                let mut first = vec![DEFAULT_FIRST_RESPONSE_SECS];
                first.extend(DEFAULT_TOPIC_TOLERANCES.iter().map(|(_, s)| *s));
                (DEFAULT_WARN_PERCENT, first, DEFAULT_RESOLUTION_SECS)
            }
        };
        let lead = |secs: i64| Duration::seconds(secs * i64::from(100 - warn) / 100 + 1);
        (
            lead(first.into_iter().max().unwrap_or_default()),
            lead(resolution),
        )
    }
}

impl Domain {
    pub async fn sla_policies(&self, actor: &Actor) -> Result<Vec<sla_policy::Model>> {
        actor.require(Capability::ReadReference)?;
        Ok(sla_policy::Entity::find()
            .order_by_asc(sla_policy::Column::Id)
            .all(&self.db)
            .await?)
    }

    async fn check_policy(&self, input: &SlaPolicyInput) -> Result<sla_policy::ActiveModel> {
        let name = name_of(&input.name, "name")?;
        let first = target(input.first_response_secs, "firstResponseSeconds")?;
        let resolution = target(input.resolution_secs, "resolutionSeconds")?;
        let warn = input.warn_percent.unwrap_or(DEFAULT_WARN_PERCENT);
        if !(1..=99).contains(&warn) {
            return Err(DomainError::invalid(
                "warnPercent",
                "must be between 1 and 99",
            ));
        }
        let tolerances = tolerances_json(&input.topic_tolerances)?;
        let kind = input.escalation_kind.unwrap_or_default();
        if kind == EscalationKind::Functional && input.escalate_to_department_id.is_none() {
            return Err(DomainError::invalid(
                "escalateToDepartmentId",
                "a functional escalation needs a department",
            ));
        }
        if let Some(id) = input.channel_id
            && entity::channel::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .is_none()
        {
            return Err(DomainError::invalid("channelId", "no such channel"));
        }
        for (id, field) in [
            (input.department_id, "departmentId"),
            (input.escalate_to_department_id, "escalateToDepartmentId"),
        ] {
            if let Some(id) = id
                && entity::department::Entity::find_by_id(id)
                    .one(&self.db)
                    .await?
                    .is_none()
            {
                return Err(DomainError::invalid(field, "no such department"));
            }
        }
        if let Some(id) = input.business_hours_id
            && business_hours::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .is_none()
        {
            return Err(DomainError::invalid(
                "businessHoursId",
                "no such business hours",
            ));
        }
        if let Some(id) = input.escalate_to_user_id {
            match entity::user::Entity::find_by_id(id).one(&self.db).await? {
                Some(u) if u.is_active => {}
                _ => {
                    return Err(DomainError::invalid(
                        "escalateToUserId",
                        "is not an active staff member",
                    ));
                }
            }
        }
        Ok(sla_policy::ActiveModel {
            name: Set(name),
            priority: Set(input.priority),
            channel_id: Set(input.channel_id),
            department_id: Set(input.department_id),
            business_hours_id: Set(input.business_hours_id),
            first_response_secs: Set(first),
            resolution_secs: Set(resolution),
            warn_percent: Set(warn),
            topic_tolerances: Set(tolerances),
            pause_when_pending: Set(input.pause_when_pending.unwrap_or(true)),
            escalation_kind: Set(kind),
            escalate_to_user_id: Set(input.escalate_to_user_id),
            escalate_to_department_id: Set(input.escalate_to_department_id),
            notify_customer_on_breach: Set(input.notify_customer_on_breach),
            is_default: Set(input.is_default),
            ..Default::default()
        })
    }

    pub async fn create_sla_policy(
        &self,
        actor: &Actor,
        input: SlaPolicyInput,
    ) -> Result<sla_policy::Model> {
        actor.require(Capability::Configure)?;
        let mut row = self.check_policy(&input).await?;
        let now = self.clock.now();
        row.created_at = Set(now);
        row.updated_at = Set(now);
        let txn = self.db.begin().await?;
        if input.is_default {
            clear_default(&txn, None).await?;
        }
        let created = row.insert(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("sla_policy.create", "sla_policy", created.id).after(&created),
        )
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn update_sla_policy(
        &self,
        actor: &Actor,
        id: i64,
        input: SlaPolicyInput,
    ) -> Result<sla_policy::Model> {
        actor.require(Capability::Configure)?;
        let before = sla_policy::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("sla policy", id))?;
        let mut row = self.check_policy(&input).await?;
        let now = self.clock.now();
        row.id = Set(id);
        row.created_at = Set(before.created_at);
        row.updated_at = Set(now);
        let txn = self.db.begin().await?;
        if input.is_default {
            clear_default(&txn, Some(id)).await?;
        }
        let after = row.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("sla_policy.update", "sla_policy", id)
                .before(&before)
                .after(&after),
        )
        .await?;
        super::clock::recheck(&txn, vec![id], now).await?;
        txn.commit().await?;
        Ok(after)
    }

    /// Conversations under it keep their due times; new clocks use another policy.
    pub async fn delete_sla_policy(&self, actor: &Actor, id: i64) -> Result<sla_policy::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = sla_policy::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("sla policy", id))?;
        sla_policy::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("sla_policy.delete", "sla_policy", id).before(&before),
        )
        .await?;
        super::clock::recheck(&txn, vec![id], now).await?;
        txn.commit().await?;
        Ok(before)
    }

    pub async fn business_hours_list(&self, actor: &Actor) -> Result<Vec<BusinessHoursView>> {
        actor.require(Capability::ReadReference)?;
        let hours = business_hours::Entity::find()
            .order_by_asc(business_hours::Column::Id)
            .all(&self.db)
            .await?;
        let mut holidays: HashMap<i64, Vec<holiday::Model>> = HashMap::new();
        for h in holiday::Entity::find()
            .order_by_asc(holiday::Column::Date)
            .all(&self.db)
            .await?
        {
            holidays.entry(h.business_hours_id).or_default().push(h);
        }
        Ok(hours
            .into_iter()
            .map(|h| BusinessHoursView {
                holidays: holidays.remove(&h.id).unwrap_or_default(),
                hours: h,
            })
            .collect())
    }

    pub async fn create_business_hours(
        &self,
        actor: &Actor,
        input: BusinessHoursInput,
    ) -> Result<BusinessHoursView> {
        self.save_business_hours(actor, None, input).await
    }

    pub async fn update_business_hours(
        &self,
        actor: &Actor,
        id: i64,
        input: BusinessHoursInput,
    ) -> Result<BusinessHoursView> {
        self.save_business_hours(actor, Some(id), input).await
    }

    async fn save_business_hours(
        &self,
        actor: &Actor,
        id: Option<i64>,
        input: BusinessHoursInput,
    ) -> Result<BusinessHoursView> {
        actor.require(Capability::Configure)?;
        let name = name_of(&input.name, "name")?;
        let tz = parse_time_zone(&input.time_zone)?;
        let mut week: [Vec<Interval>; 7] = Default::default();
        for o in &input.schedule {
            let bad = |v: &str| DomainError::invalid("schedule", format!("{v:?} is not HH:MM"));
            let open = parse_hhmm(&o.open).ok_or_else(|| bad(&o.open))?;
            let close = parse_hhmm(&o.close).ok_or_else(|| bad(&o.close))?;
            week[day_index(o.day)].push(Interval { open, close });
        }
        let mut dates = std::collections::BTreeSet::new();
        for h in &input.holidays {
            if !dates.insert(h.date) {
                return Err(DomainError::invalid(
                    "holidays",
                    format!("{} is given twice", h.date),
                ));
            }
            if h.name.as_ref().is_some_and(|n| n.chars().count() > 80) {
                return Err(DomainError::invalid(
                    "holidays",
                    "a name is at most 80 characters",
                ));
            }
        }
        let cal = Calendar {
            tz,
            week,
            holidays: dates,
        }
        .validated()?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = match id {
            Some(id) => Some(
                business_hours::Entity::find_by_id(id)
                    .one(&txn)
                    .await?
                    .ok_or_else(|| DomainError::not_found("business hours", id))?,
            ),
            None => None,
        };
        let mut row = business_hours::ActiveModel {
            name: Set(name),
            timezone: Set(tz.name().to_string()),
            schedule: Set(cal.schedule_json()),
            updated_at: Set(now),
            ..Default::default()
        };
        let saved = match &before {
            Some(b) => {
                row.id = Set(b.id);
                row.created_at = Set(b.created_at);
                let saved = row.update(&txn).await?;
                holiday::Entity::delete_many()
                    .filter(holiday::Column::BusinessHoursId.eq(b.id))
                    .exec(&txn)
                    .await?;
                saved
            }
            None => {
                row.created_at = Set(now);
                row.insert(&txn).await?
            }
        };
        let mut holidays = Vec::with_capacity(input.holidays.len());
        for h in &input.holidays {
            holidays.push(
                holiday::ActiveModel {
                    business_hours_id: Set(saved.id),
                    date: Set(h.date),
                    name: Set(h.name.clone()),
                    ..Default::default()
                }
                .insert(&txn)
                .await?,
            );
        }
        holidays.sort_by_key(|h| h.date);
        let action = if before.is_some() {
            "business_hours.update"
        } else {
            "business_hours.create"
        };
        let mut change = Change::new(action, "business_hours", saved.id)
            .after(&saved)
            .with_extra("holidays", &holidays);
        if let Some(b) = &before {
            change = change.before(b);
        }
        audit::record(&txn, actor, now, change).await?;
        if before.is_some() {
            let governed: Vec<i64> = sla_policy::Entity::find()
                .select_only()
                .column(sla_policy::Column::Id)
                .filter(sla_policy::Column::BusinessHoursId.eq(saved.id))
                .into_tuple()
                .all(&txn)
                .await?;
            super::clock::recheck(&txn, governed, now).await?;
        }
        txn.commit().await?;
        Ok(BusinessHoursView {
            hours: saved,
            holidays,
        })
    }
}

/// At most one default policy.
async fn clear_default(db: &impl ConnectionTrait, except: Option<i64>) -> Result<()> {
    let mut q = sla_policy::Entity::update_many()
        .col_expr(
            sla_policy::Column::IsDefault,
            sea_orm::sea_query::Expr::value(false),
        )
        .filter(sla_policy::Column::IsDefault.eq(true));
    if let Some(id) = except {
        q = q.filter(sla_policy::Column::Id.ne(id));
    }
    q.exec(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_are_checked_and_normalised() {
        let ok = tolerances_json(&[("Logistics".into(), 720)]).unwrap();
        assert_eq!(ok, json!({"logistics": 720}));
        assert!(tolerances_json(&[("x".into(), 0)]).is_err());
        assert!(tolerances_json(&[("a".into(), 1), ("A".into(), 2)]).is_err());
    }

    #[test]
    fn targets_must_be_positive() {
        assert!(target(0, "firstResponseSeconds").is_err());
        assert!(target(-5, "firstResponseSeconds").is_err());
        assert_eq!(target(600, "firstResponseSeconds").unwrap(), 600);
    }
}
