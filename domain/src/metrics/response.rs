//! The core KPIs of a conversation cohort (see the module rules in
//! [`super`]): response and resolution times, satisfaction, first contact
//! resolution, SLA compliance, escalation / transfer / automation / reopen
//! rates and chat volume, for the whole range, per dimension value, or per
//! time bucket (and dimension value).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::sql::{Sql, avg_if, count, count_if, get, percentiles};
use super::{MetricsQuery, bucket_label, bucket_start, dimension_sql, filter_sql, ratio, round_ms};
use crate::{Actor, Capability, Domain, Result};

/// The core KPIs of one group of conversations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kpis {
    /// Conversations created in the group.
    pub conversations: i64,
    /// Conversations with a first response (`first_response_at` set).
    pub responded: i64,
    /// **First response time**: seconds from `created_at` (the customer's
    /// first message) to `first_response_at` (the first reply by a staff
    /// member; auto-replies do not count), over responded conversations:
    /// mean, median and 90th
    /// percentile (`percentile_cont`).
    pub first_response_mean_secs: Option<f64>,
    pub first_response_median_secs: Option<f64>,
    pub first_response_p90_secs: Option<f64>,
    /// Conversations with `resolved_at` set.
    pub resolved: i64,
    /// **Average resolution time**: mean seconds from `created_at` to
    /// `resolved_at` over resolved conversations.
    pub resolution_mean_secs: Option<f64>,
    /// Conversations with a CSAT answer (`csat`, 1–5).
    pub csat_answers: i64,
    /// **CSAT**: mean of the answers.
    pub csat_mean: Option<f64>,
    /// Answers of 4 or 5.
    pub csat_satisfied: i64,
    /// Conversations with an NPS answer (`nps`, 0–10).
    pub nps_answers: i64,
    /// Answers 9–10.
    pub nps_promoters: i64,
    /// Answers 7–8.
    pub nps_passives: i64,
    /// Answers 0–6.
    pub nps_detractors: i64,
    /// Resolved conversations never reopened (`reopen_count = 0`) and never
    /// transferred (`transfer_count = 0`).
    pub first_contact_resolved: i64,
    /// Conversations under an SLA: a first-response or resolution due time.
    pub sla_tracked: i64,
    /// Of those, the ones with a `breach` event of any kind.
    pub sla_breached: i64,
    /// Conversations escalated at least once (`escalation_level > 0`).
    pub escalated: i64,
    /// Conversations transferred at least once (`transfer_count > 0`).
    pub transferred: i64,
    /// Resolved conversations in which no staff member sent a message (no
    /// message with `sender_kind = agent`): handled by automation alone.
    pub automated: i64,
    /// Conversations resolved at least once (`resolved_at` set or reopened).
    pub ever_resolved: i64,
    /// Of those, the ones reopened (`reopen_count > 0`).
    pub reopened: i64,
    /// **Chat volume**: messages of the group's conversations that were
    /// themselves created in the range, from the customer…
    pub messages_in: i64,
    /// …and to the customer (agents, auto-replies, templates).
    pub messages_out: i64,
}

impl Kpis {
    /// Share of CSAT answers that are 4 or 5.
    pub fn csat_satisfied_rate(&self) -> Option<f64> {
        ratio(self.csat_satisfied, self.csat_answers)
    }
    /// **NPS**: % promoters − % detractors, −100..=100.
    pub fn nps(&self) -> Option<f64> {
        ratio(self.nps_promoters - self.nps_detractors, self.nps_answers).map(|r| r * 100.0)
    }
    /// **First contact resolution rate**: first-contact resolved ÷ resolved.
    pub fn first_contact_resolution_rate(&self) -> Option<f64> {
        ratio(self.first_contact_resolved, self.resolved)
    }
    /// **SLA compliance**: tracked conversations without a breach ÷ tracked.
    pub fn sla_compliance(&self) -> Option<f64> {
        ratio(self.sla_tracked - self.sla_breached, self.sla_tracked)
    }
    /// **Escalation rate**: escalated ÷ conversations.
    pub fn escalation_rate(&self) -> Option<f64> {
        ratio(self.escalated, self.conversations)
    }
    /// **Transfer rate**: transferred ÷ conversations.
    pub fn transfer_rate(&self) -> Option<f64> {
        ratio(self.transferred, self.conversations)
    }
    /// **Automation rate**: automated ÷ resolved.
    pub fn automation_rate(&self) -> Option<f64> {
        ratio(self.automated, self.resolved)
    }
    /// **Reopen rate**: reopened ÷ conversations resolved at least once.
    pub fn reopen_rate(&self) -> Option<f64> {
        ratio(self.reopened, self.ever_resolved)
    }
    /// **Resolution rate**: resolved ÷ conversations.
    pub fn resolution_rate(&self) -> Option<f64> {
        ratio(self.resolved, self.conversations)
    }
}

/// One row: a bucket and/or a dimension value, with its KPIs.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiRow {
    /// The bucket's local label (`YYYY-MM-DDTHH:MM`) and UTC start.
    pub bucket: Option<String>,
    pub bucket_start: Option<DateTime<Utc>>,
    /// The dimension value's key (an id, a topic, a priority) and name.
    pub key: Option<String>,
    pub label: Option<String>,
    pub kpis: Kpis,
}

type GroupKey = (Option<String>, Option<String>);

/// The row of `groups` for the bucket and dimension value of `row`.
fn entry<'a>(
    groups: &'a mut BTreeMap<GroupKey, KpiRow>,
    q: &MetricsQuery,
    row: &sea_orm::QueryResult,
) -> Result<&'a mut KpiRow> {
    let bucket: Option<String> = get(row, "bucket")?;
    let key: Option<String> = get(row, "dkey")?;
    let label: Option<String> = get(row, "dlabel")?;
    let bucket_start = bucket
        .as_deref()
        .map(|b| bucket_start(b, &q.time_zone))
        .transpose()?;
    let r = groups
        .entry((bucket.clone(), key.clone()))
        .or_insert_with(|| KpiRow {
            bucket,
            bucket_start,
            key,
            label: None,
            kpis: Kpis::default(),
        });
    if r.label.is_none() {
        r.label = label;
    }
    Ok(r)
}

impl Domain {
    /// The KPIs of the whole range (no bucket, no dimension).
    pub async fn metrics_overview(&self, actor: &Actor, q: &MetricsQuery) -> Result<Kpis> {
        let rows = self.metrics_rows(actor, q, false, false).await?;
        Ok(rows.into_iter().next().map(|r| r.kpis).unwrap_or_default())
    }

    /// The KPIs per value of `q.dimension` (one row when it is unset).
    pub async fn metrics_by_dimension(
        &self,
        actor: &Actor,
        q: &MetricsQuery,
    ) -> Result<Vec<KpiRow>> {
        self.metrics_rows(actor, q, false, q.dimension.is_some())
            .await
    }

    /// The KPIs per time bucket (and per dimension value when set).
    pub async fn metrics_series(&self, actor: &Actor, q: &MetricsQuery) -> Result<Vec<KpiRow>> {
        self.metrics_rows(actor, q, true, q.dimension.is_some())
            .await
    }

    async fn metrics_rows(
        &self,
        actor: &Actor,
        q: &MetricsQuery,
        by_bucket: bool,
        by_dimension: bool,
    ) -> Result<Vec<KpiRow>> {
        actor.require(Capability::ReadMetrics)?;
        let now = self.clock.now();
        let mut groups: BTreeMap<GroupKey, KpiRow> = BTreeMap::new();
        // Independent statements: on a pool (PostgreSQL) they run side by side.
        let (core, pct, volume) = tokio::try_join!(
            self.core_query(q, by_bucket, by_dimension, now),
            self.frt_percentiles(q, by_bucket, by_dimension),
            self.message_volume(q, by_bucket, by_dimension),
        )?;
        for row in core {
            let kp = &mut entry(&mut groups, q, &row)?.kpis;
            kp.conversations = count(&row, "conversations")?;
            kp.responded = count(&row, "responded")?;
            kp.first_response_mean_secs = round_ms(get(&row, "frt_mean")?);
            kp.resolved = count(&row, "resolved")?;
            kp.resolution_mean_secs = round_ms(get(&row, "resolution_mean")?);
            kp.csat_answers = count(&row, "csat_answers")?;
            kp.csat_mean = get(&row, "csat_mean")?;
            kp.csat_satisfied = count(&row, "csat_satisfied")?;
            kp.nps_answers = count(&row, "nps_answers")?;
            kp.nps_promoters = count(&row, "nps_promoters")?;
            kp.nps_passives = count(&row, "nps_passives")?;
            kp.nps_detractors = count(&row, "nps_detractors")?;
            kp.first_contact_resolved = count(&row, "fcr")?;
            kp.sla_tracked = count(&row, "sla_tracked")?;
            kp.sla_breached = count(&row, "sla_breached")?;
            kp.escalated = count(&row, "escalated")?;
            kp.transferred = count(&row, "transferred")?;
            kp.automated = count(&row, "automated")?;
            kp.ever_resolved = count(&row, "ever_resolved")?;
            kp.reopened = count(&row, "reopened")?;
        }
        for row in pct {
            let k: GroupKey = (get(&row, "g0")?, get(&row, "g1")?);
            if let Some(r) = groups.get_mut(&k) {
                r.kpis.first_response_median_secs = round_ms(get(&row, "p_0")?);
                r.kpis.first_response_p90_secs = round_ms(get(&row, "p_1")?);
            }
        }
        for row in volume {
            let kp = &mut entry(&mut groups, q, &row)?.kpis;
            kp.messages_in = count(&row, "messages_in")?;
            kp.messages_out = count(&row, "messages_out")?;
        }
        if !by_bucket && !by_dimension && groups.is_empty() {
            groups.insert(
                (None, None),
                KpiRow {
                    bucket: None,
                    bucket_start: None,
                    key: None,
                    label: None,
                    kpis: Kpis::default(),
                },
            );
        }
        let mut rows: Vec<KpiRow> = groups.into_values().collect();
        rows.sort_by(|a, b| {
            a.bucket_start
                .cmp(&b.bucket_start)
                .then_with(|| b.kpis.conversations.cmp(&a.kpis.conversations))
                .then_with(|| a.key.cmp(&b.key))
        });
        Ok(rows)
    }

    /// One pass over the cohort with conditional aggregates.
    async fn core_query(
        &self,
        q: &MetricsQuery,
        by_bucket: bool,
        by_dimension: bool,
        _now: DateTime<Utc>,
    ) -> Result<Vec<sea_orm::QueryResult>> {
        let mut s = Sql::new(self.db.get_database_backend());
        let dim = dimension_sql(if by_dimension { q.dimension } else { None });
        let bucket = if by_bucket {
            bucket_label(&mut s, "c.created_at", q)
        } else {
            "CAST(NULL AS TEXT)".into()
        };
        let (from, to) = (s.bind(q.from), s.bind(q.to));
        let filters = filter_sql(&mut s, &q.filters);
        let frt = s.secs_between("c.created_at", "c.first_response_at");
        let res = s.secs_between("c.created_at", "c.resolved_at");
        let breach = "EXISTS (SELECT 1 FROM sla_events se \
                      WHERE se.conversation_id = c.id AND se.level = 'breach')";
        let agent_msg = "EXISTS (SELECT 1 FROM messages am \
                         WHERE am.conversation_id = c.id AND am.sender_kind = 'agent')";
        let tracked = "(c.first_response_due_at IS NOT NULL OR c.resolution_due_at IS NOT NULL)";
        let group_by = group_by(by_bucket, by_dimension);
        let sql = format!(
            "SELECT {bucket} AS bucket, {key} AS dkey, {label} AS dlabel, \
             CAST(COUNT(*) AS BIGINT) AS conversations, \
             {responded} AS responded, \
             {frt_mean} AS frt_mean, \
             {resolved} AS resolved, \
             {res_mean} AS resolution_mean, \
             {csat_answers} AS csat_answers, \
             {csat_mean} AS csat_mean, \
             {csat_satisfied} AS csat_satisfied, \
             {nps_answers} AS nps_answers, \
             {promoters} AS nps_promoters, \
             {passives} AS nps_passives, \
             {detractors} AS nps_detractors, \
             {fcr} AS fcr, \
             {sla_tracked} AS sla_tracked, \
             {sla_breached} AS sla_breached, \
             {escalated} AS escalated, \
             {transferred} AS transferred, \
             {automated} AS automated, \
             {ever_resolved} AS ever_resolved, \
             {reopened} AS reopened \
             FROM conversations c{joins} \
             WHERE c.created_at >= {from} AND c.created_at < {to}{filters}{group_by}",
            key = dim.key,
            label = dim.label,
            joins = dim.joins,
            responded = count_if("c.first_response_at IS NOT NULL"),
            frt_mean = avg_if("c.first_response_at IS NOT NULL", &frt),
            resolved = count_if("c.resolved_at IS NOT NULL"),
            res_mean = avg_if("c.resolved_at IS NOT NULL", &res),
            csat_answers = count_if("c.csat IS NOT NULL"),
            csat_mean = avg_if("c.csat IS NOT NULL", "(c.csat * 1.0)"),
            csat_satisfied = count_if("c.csat >= 4"),
            nps_answers = count_if("c.nps IS NOT NULL"),
            promoters = count_if("c.nps >= 9"),
            passives = count_if("c.nps BETWEEN 7 AND 8"),
            detractors = count_if("c.nps <= 6"),
            fcr = count_if(
                "c.resolved_at IS NOT NULL AND c.reopen_count = 0 AND c.transfer_count = 0"
            ),
            sla_tracked = count_if(tracked),
            sla_breached = count_if(&format!("{tracked} AND {breach}")),
            escalated = count_if("c.escalation_level > 0"),
            transferred = count_if("c.transfer_count > 0"),
            automated = count_if(&format!("c.resolved_at IS NOT NULL AND NOT {agent_msg}")),
            ever_resolved = count_if("(c.resolved_at IS NOT NULL OR c.reopen_count > 0)"),
            reopened = count_if("c.reopen_count > 0"),
        );
        s.all(&self.db, &sql).await
    }

    /// Median and p90 of the first response time per group.
    async fn frt_percentiles(
        &self,
        q: &MetricsQuery,
        by_bucket: bool,
        by_dimension: bool,
    ) -> Result<Vec<sea_orm::QueryResult>> {
        let backend = self.db.get_database_backend();
        let mut s = Sql::new(backend);
        let dim = dimension_sql(if by_dimension { q.dimension } else { None });
        let bucket = if by_bucket {
            bucket_label(&mut s, "c.created_at", q)
        } else {
            "CAST(NULL AS TEXT)".into()
        };
        let (from, to) = (s.bind(q.from), s.bind(q.to));
        let filters = filter_sql(&mut s, &q.filters);
        let frt = s.secs_between("c.created_at", "c.first_response_at");
        let inner = format!(
            "SELECT {bucket} AS g0, {key} AS g1, {frt} AS x \
             FROM conversations c{joins} \
             WHERE c.created_at >= {from} AND c.created_at < {to} \
             AND c.first_response_at IS NOT NULL{filters}",
            key = dim.key,
            joins = dim.joins,
        );
        let sql = percentiles(backend, &inner, 2, &[0.5, 0.9]);
        s.all(&self.db, &sql).await
    }

    /// Inbound and outbound messages of the cohort's conversations created in
    /// the range, per group: both ranges bound the join, so that neither
    /// side is scanned whole.
    async fn message_volume(
        &self,
        q: &MetricsQuery,
        by_bucket: bool,
        by_dimension: bool,
    ) -> Result<Vec<sea_orm::QueryResult>> {
        let mut s = Sql::new(self.db.get_database_backend());
        let dim = dimension_sql(if by_dimension { q.dimension } else { None });
        let bucket = if by_bucket {
            bucket_label(&mut s, "c.created_at", q)
        } else {
            "CAST(NULL AS TEXT)".into()
        };
        let (from, to) = (s.bind(q.from), s.bind(q.to));
        let filters = filter_sql(&mut s, &q.filters);
        let group_by = group_by(by_bucket, by_dimension);
        let sql = format!(
            "SELECT {bucket} AS bucket, {key} AS dkey, {label} AS dlabel, \
             {inbound} AS messages_in, {outbound} AS messages_out \
             FROM conversations c{joins} JOIN messages m ON m.conversation_id = c.id \
             WHERE c.created_at >= {from} AND c.created_at < {to} \
             AND m.created_at >= {from} AND m.created_at < {to}{filters}{group_by}",
            key = dim.key,
            label = dim.label,
            joins = dim.joins,
            inbound = count_if("m.direction = 'inbound'"),
            outbound = count_if("m.direction = 'outbound'"),
        );
        s.all(&self.db, &sql).await
    }
}

/// `GROUP BY` the selected bucket (column 1) and dimension (columns 2–3).
pub(crate) fn group_by(by_bucket: bool, by_dimension: bool) -> String {
    match (by_bucket, by_dimension) {
        (false, false) => String::new(),
        (true, false) => " GROUP BY 1".into(),
        (false, true) => " GROUP BY 2, 3".into(),
        (true, true) => " GROUP BY 1, 2, 3".into(),
    }
}
