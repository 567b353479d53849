//! The core KPIs of a conversation cohort (see the module rules in
//! [`super`]): response and resolution times, satisfaction, first contact
//! resolution, SLA compliance, escalation / transfer / automation / reopen
//! rates and chat volume, for the whole range, per dimension value, or per
//! time bucket (and dimension value).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::rollup::{CORE, Plan, core_exprs, core_sums, percentile, ranges_sql};
use super::sql::{Sql, count, count_if, get};
use super::{
    Dimension, MetricsFilter, MetricsQuery, bucket_label, bucket_start, dimension_sql, filter_sql,
    hour_bucket_label, ratio, rollup_dimension_sql, round_ms,
};
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

pub(crate) type GroupKey = (Option<String>, Option<String>);
/// A histogram row: value (ms), count below it, its count.
type HistRow = (i64, i64, i64);

/// The row of `groups` for a bucket and dimension value.
fn entry<'a>(
    groups: &'a mut BTreeMap<GroupKey, KpiRow>,
    q: &MetricsQuery,
    bucket: Option<String>,
    key: Option<String>,
    label: Option<String>,
) -> Result<&'a mut KpiRow> {
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
        let dimension = if by_dimension { q.dimension } else { None };
        let plan = self
            .metrics_plan(q, dimension, &q.filters, by_bucket)
            .await?;
        let mut groups: BTreeMap<GroupKey, KpiRow> = BTreeMap::new();
        // Independent statements: on a pool (PostgreSQL) they run side by side.
        let (core, pct, volume) = tokio::try_join!(
            self.core_partials(q, &plan, by_bucket, dimension, &q.filters),
            self.frt_percentiles(q, &plan, by_bucket, dimension),
            self.message_volume(q, &plan, by_bucket, dimension),
        )?;
        for ((bucket, key), (label, partial)) in core {
            entry(&mut groups, q, bucket, key, label)?.kpis = partial.kpis();
        }
        for ((bucket, key), (p50, p90)) in pct {
            if let Some(r) = groups.get_mut(&(bucket, key)) {
                r.kpis.first_response_median_secs = p50;
                r.kpis.first_response_p90_secs = p90;
            }
        }
        for row in volume {
            let kp = &mut entry(
                &mut groups,
                q,
                get(&row, "bucket")?,
                get(&row, "dkey")?,
                get(&row, "dlabel")?,
            )?
            .kpis;
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

    /// The additive counters per group: the plan's live intervals from the
    /// conversations, its rolled hours from `metrics_rollup`, added up.
    pub(crate) async fn core_partials(
        &self,
        q: &MetricsQuery,
        plan: &Plan,
        by_bucket: bool,
        dimension: Option<Dimension>,
        filters: &MetricsFilter,
    ) -> Result<BTreeMap<GroupKey, (Option<String>, Partial)>> {
        let backend = self.db.get_database_backend();
        let by_dimension = dimension.is_some();
        let group_by = group_by(by_bucket, by_dimension);
        let live = async {
            if plan.live.is_empty() {
                return Ok(vec![]);
            }
            let mut s = Sql::new(backend);
            let dim = dimension_sql(dimension);
            let bucket = if by_bucket {
                bucket_label(&mut s, "c.created_at", q)
            } else {
                "CAST(NULL AS TEXT)".into()
            };
            let within = ranges_sql(&mut s, "c.created_at", &plan.live);
            let filters = filter_sql(&mut s, filters);
            let exprs = core_exprs(&s);
            let sql = format!(
                "SELECT {bucket} AS bucket, {key} AS dkey, {label} AS dlabel, {exprs} \
                 FROM conversations c{joins} WHERE {within}{filters}{group_by}",
                key = dim.key,
                label = dim.label,
                joins = dim.joins,
            );
            s.all(&self.read, &sql).await
        };
        let rolled = async {
            let mut s = Sql::new(backend);
            let Some(w) = plan.rollup_where(&mut s, "r") else {
                return Ok(vec![]);
            };
            let bucket = if by_bucket {
                hour_bucket_label(&mut s, "r.hour", q)
            } else {
                "CAST(NULL AS TEXT)".into()
            };
            let dim = rollup_dimension_sql(dimension);
            let sql = format!(
                "SELECT {bucket} AS bucket, {key} AS dkey, {label} AS dlabel, {sums} \
                 FROM metrics_rollup r{joins} WHERE 1 = 1{w}{group_by}",
                key = dim.key,
                label = dim.label,
                joins = dim.joins,
                sums = core_sums(),
            );
            s.all(&self.read, &sql).await
        };
        let (live, rolled) = tokio::try_join!(live, rolled)?;
        let mut out: BTreeMap<GroupKey, (Option<String>, Partial)> = BTreeMap::new();
        for row in live.iter().chain(rolled.iter()) {
            let e = out
                .entry((get(row, "bucket")?, get(row, "dkey")?))
                .or_insert_with(|| (None, Partial::default()));
            if e.0.is_none() {
                e.0 = get(row, "dlabel")?;
            }
            e.1.add(row)?;
        }
        Ok(out)
    }

    /// Median and p90 of the first response time per group, from the exact
    /// histogram (milliseconds) of the live part and the rolled hours: the
    /// statement returns only the rows holding the ranks needed.
    async fn frt_percentiles(
        &self,
        q: &MetricsQuery,
        plan: &Plan,
        by_bucket: bool,
        dimension: Option<Dimension>,
    ) -> Result<BTreeMap<GroupKey, (Option<f64>, Option<f64>)>> {
        let backend = self.db.get_database_backend();
        let mut s = Sql::new(backend);
        let mut parts = vec![];
        if !plan.live.is_empty() {
            let dim = dimension_sql(dimension);
            let bucket = if by_bucket {
                bucket_label(&mut s, "c.created_at", q)
            } else {
                "CAST(NULL AS TEXT)".into()
            };
            let within = ranges_sql(&mut s, "c.created_at", &plan.live);
            let filters = filter_sql(&mut s, &q.filters);
            let frt = s.ms_between("c.created_at", "c.first_response_at");
            parts.push(format!(
                "SELECT {bucket} AS g0, {key} AS g1, {frt} AS v, 1 AS n \
                 FROM conversations c{joins} \
                 WHERE {within} AND c.first_response_at IS NOT NULL{filters}",
                key = dim.key,
                joins = dim.joins,
            ));
        }
        if let Some(w) = plan.rollup_where(&mut s, "r") {
            // The histogram has a row per value: the bucket label is computed
            // once per hour and joined.
            let (bucket, join) = if by_bucket {
                let label = hour_bucket_label(&mut s, "hh.hour", q);
                let runs = ranges_sql(&mut s, "hh.hour", &plan.rolled);
                (
                    "hb.g0".to_string(),
                    format!(
                        " JOIN (SELECT hh.hour AS hour, {label} AS g0 \
                         FROM metrics_rollup_hours hh WHERE {runs}) hb ON hb.hour = r.hour"
                    ),
                )
            } else {
                ("CAST(NULL AS TEXT)".to_string(), String::new())
            };
            let key = if dimension.is_some() {
                "r.dkey"
            } else {
                "CAST(NULL AS TEXT)"
            };
            parts.push(format!(
                "SELECT {bucket} AS g0, {key} AS g1, r.frt_ms AS v, r.n AS n \
                 FROM metrics_rollup_frt r{join} WHERE 1 = 1{w}"
            ));
        }
        let sql = format!(
            "SELECT g0, g1, v, below, n, total FROM (SELECT g0, g1, v, n, \
             CAST(SUM(n) OVER (PARTITION BY g0, g1 ORDER BY v ROWS UNBOUNDED PRECEDING) AS BIGINT) \
             - n AS below, CAST(SUM(n) OVER (PARTITION BY g0, g1) AS BIGINT) AS total FROM \
             (SELECT g0, g1, v, CAST(SUM(n) AS BIGINT) AS n FROM ({}) u GROUP BY g0, g1, v) h) w \
             WHERE (below <= (total - 1) / 2 + 1 AND below + n > (total - 1) / 2) \
             OR (below <= (total - 1) * 9 / 10 + 1 AND below + n > (total - 1) * 9 / 10) \
             ORDER BY g0, g1, v",
            parts.join(" UNION ALL ")
        );
        let rows = s.all(&self.read, &sql).await?;
        let mut hist: BTreeMap<GroupKey, (i64, Vec<HistRow>)> = BTreeMap::new();
        for row in rows {
            let e = hist
                .entry((get(&row, "g0")?, get(&row, "g1")?))
                .or_insert_with(|| (0, vec![]));
            e.0 = count(&row, "total")?;
            e.1.push((count(&row, "v")?, count(&row, "below")?, count(&row, "n")?));
        }
        let mut out = BTreeMap::new();
        for (k, (total, rows)) in hist {
            let ms = |v: Option<f64>| round_ms(v.map(|x| x / 1000.0));
            out.insert(
                k,
                (
                    ms(percentile(&rows, total, 1, 2)?),
                    ms(percentile(&rows, total, 9, 10)?),
                ),
            );
        }
        Ok(out)
    }

    /// Inbound and outbound messages of the cohort's conversations, sent in
    /// the range, per group: live conversations with their messages of the
    /// range; rolled conversations with their messages of the partial hours
    /// at the range's ends; and the rollups' messages of the whole hours.
    /// Both ranges bound each join, so that neither side is scanned whole.
    async fn message_volume(
        &self,
        q: &MetricsQuery,
        plan: &Plan,
        by_bucket: bool,
        dimension: Option<Dimension>,
    ) -> Result<Vec<sea_orm::QueryResult>> {
        let mut s = Sql::new(self.db.get_database_backend());
        let group_by = group_by(by_bucket, dimension.is_some());
        let dim = dimension_sql(dimension);
        let mut parts = vec![];
        let rolled = plan.rolled_intervals();
        let whole_range = [(q.from, q.to)];
        for (convs, msgs) in [
            (&plan.live[..], &whole_range[..]),
            (&rolled[..], &plan.edges[..]),
        ] {
            if convs.is_empty() || msgs.is_empty() {
                continue;
            }
            let bucket = if by_bucket {
                bucket_label(&mut s, "c.created_at", q)
            } else {
                "CAST(NULL AS TEXT)".into()
            };
            let c_within = ranges_sql(&mut s, "c.created_at", convs);
            let m_within = ranges_sql(&mut s, "m.created_at", msgs);
            let filters = filter_sql(&mut s, &q.filters);
            parts.push(format!(
                "SELECT {bucket} AS bucket, {key} AS dkey, {label} AS dlabel, \
                 {inbound} AS mi, {outbound} AS mo \
                 FROM conversations c{joins} JOIN messages m ON m.conversation_id = c.id \
                 WHERE {c_within} AND {m_within}{filters}{group_by}",
                key = dim.key,
                label = dim.label,
                joins = dim.joins,
                inbound = count_if("m.direction = 'inbound'"),
                outbound = count_if("m.direction = 'outbound'"),
            ));
        }
        if let Some(w) = plan.rollup_where(&mut s, "r") {
            let bucket = if by_bucket {
                hour_bucket_label(&mut s, "r.hour", q)
            } else {
                "CAST(NULL AS TEXT)".into()
            };
            let (h0, h1) = (s.bind(plan.whole.0), s.bind(plan.whole.1));
            let rdim = rollup_dimension_sql(dimension);
            parts.push(format!(
                "SELECT {bucket} AS bucket, {key} AS dkey, {label} AS dlabel, \
                 CAST(SUM(r.messages_in) AS BIGINT) AS mi, CAST(SUM(r.messages_out) AS BIGINT) AS mo \
                 FROM metrics_rollup_volume r{joins} \
                 WHERE r.msg_hour >= {h0} AND r.msg_hour < {h1}{w}{group_by}",
                key = rdim.key,
                label = rdim.label,
                joins = rdim.joins,
            ));
        }
        if parts.is_empty() {
            return Ok(vec![]);
        }
        let sql = format!(
            "SELECT bucket, dkey, MAX(dlabel) AS dlabel, \
             CAST(SUM(mi) AS BIGINT) AS messages_in, CAST(SUM(mo) AS BIGINT) AS messages_out \
             FROM ({}) u GROUP BY bucket, dkey",
            parts.join(" UNION ALL ")
        );
        s.all(&self.read, &sql).await
    }
}

/// The additive counters of one group ([`CORE`] order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Partial(pub [i64; CORE.len()]);

impl Partial {
    fn add(&mut self, row: &sea_orm::QueryResult) -> Result<()> {
        for (i, name) in CORE.iter().enumerate() {
            self.0[i] += count(row, name)?;
        }
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> i64 {
        CORE.iter()
            .position(|n| *n == name)
            .map(|i| self.0[i])
            .unwrap_or(0)
    }

    /// Mean seconds of a sum of milliseconds, to the millisecond.
    pub(crate) fn mean_secs(&self, sum: &str, n: &str) -> Option<f64> {
        round_ms(ratio(self.get(sum), self.get(n)).map(|ms| ms / 1000.0))
    }

    fn kpis(&self) -> Kpis {
        let g = |n: &str| self.get(n);
        Kpis {
            conversations: g("conversations"),
            responded: g("responded"),
            first_response_mean_secs: self.mean_secs("frt_sum", "responded"),
            first_response_median_secs: None,
            first_response_p90_secs: None,
            resolved: g("resolved"),
            resolution_mean_secs: self.mean_secs("res_sum", "resolved"),
            csat_answers: g("csat_answers"),
            csat_mean: ratio(g("csat_sum"), g("csat_answers")),
            csat_satisfied: g("csat_satisfied"),
            nps_answers: g("nps_answers"),
            nps_promoters: g("nps_promoters"),
            nps_passives: g("nps_passives"),
            nps_detractors: g("nps_detractors"),
            first_contact_resolved: g("fcr"),
            sla_tracked: g("sla_tracked"),
            sla_breached: g("sla_breached"),
            escalated: g("escalated"),
            transferred: g("transferred"),
            automated: g("automated"),
            ever_resolved: g("ever_resolved"),
            reopened: g("reopened"),
            messages_in: 0,
            messages_out: 0,
        }
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
