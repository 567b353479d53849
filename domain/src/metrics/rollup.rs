//! Hourly rollups: the additive parts of the core KPIs, the first-response
//! histogram, chat volume and the per-agent counts, pre-aggregated per UTC
//! hour so that dashboard queries over long ranges read a few thousand rows
//! instead of the whole cohort.
//!
//! # What is stored
//! Per UTC hour (numbered `floor(epoch / 3600)`) of a conversation's
//! creation and per *dimension kind* (none, agent, department, channel,
//! topic, priority, tag) and key, the same sums the live query computes
//! (`metrics_rollup`), the exact first response times in milliseconds with
//! their counts (`metrics_rollup_frt`), the messages per hour they were sent
//! (`metrics_rollup_volume`), the waiting-time buckets with their
//! conversions (`metrics_rollup_wait`) and the repeat contacts per topic
//! (`metrics_rollup_repeat`); per agent, conversations handled and
//! transferred (`metrics_rollup_handlers`) and, per hour a message was sent,
//! characters (`metrics_rollup_chars`). Per hour of the ledger row, channel
//! and billing period, the message costs (`metrics_rollup_cost`). Per agent
//! and hour, the handling time clipped to that hour (`metrics_rollup_busy`):
//! the union of spans restricted to disjoint hours adds up, so a range's
//! handling time is the sum over its hours.
//!
//! # When an hour is used
//! An hour serves a query when it is in `metrics_rollup_hours` and has no
//! row in `metrics_rollup_dirty`. Database triggers (see the migrations)
//! add a dirty row for the hour whose data a write changes, in the writing
//! transaction, whatever code path writes: a CSAT arriving days later, a
//! resolution, a reopen, an SLA breach, a transfer, a tag, a ledger row; a
//! change of a handling span marks the hours it gained or lost (an open
//! span runs until now), a conversation marks the hours of its contact's
//! later conversations on the same topic within the repeat window. Everything else
//! of the range (dirty or never rolled hours, the current hour, the partial
//! hours at either end) is computed live from the base tables, by the same
//! expressions, and added to the rolled part. A query served this way
//! returns exactly what the live query returns.
//!
//! The rollups hold one dimension kind at a time: a query whose dimension
//! and filters name two different kinds (e.g. by agent, filtered by topic)
//! is computed live, as is a series whose time zone has an offset that is
//! not a whole number of hours over the range (e.g. +05:30).
//!
//! # Refresh
//! [`Domain::refresh_metrics_rollups`] rolls up the completed hours not yet
//! rolled and the dirty ones: per run of hours, in one transaction, it
//! upserts the hours' rows in `metrics_rollup_hours` (on PostgreSQL this
//! locks them, so two instances refreshing the same hour take turns), deletes
//! their dirty marks older than the settle time, deletes their rollup rows
//! and inserts them again. A trigger skips marking an hour that has a mark
//! younger than 60 s, so a mark is only consumed once every writer that
//! relied on it has committed: the refresh leaves marks younger than the
//! settle time (5 minutes in the worker) for the next run.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{DbBackend, TransactionTrait};

use super::agents::busy_sql;
use super::repeat::repeat_sql;
use super::sql::{Sql, count_if, get};
use super::time_of_day::{HANDLED, handle_ms};
use super::waiting::wait_bucket_sql;
use super::{Dimension, MetricsFilter, MetricsQuery, dimension_sql, offset_changes};
use crate::{Domain, DomainError, Result};

/// The dimension kinds stored, by their name in `metrics_rollup.dim`.
pub(crate) const DIMS: [(&str, Option<Dimension>); 7] = [
    ("", None),
    ("agent", Some(Dimension::Agent)),
    ("department", Some(Dimension::Department)),
    ("channel", Some(Dimension::Channel)),
    ("topic", Some(Dimension::Topic)),
    ("priority", Some(Dimension::Priority)),
    ("tag", Some(Dimension::Tag)),
];

/// The additive counters of one group of conversations, in the column order
/// of `metrics_rollup` (durations are sums of whole milliseconds).
pub(crate) const CORE: [&str; 23] = [
    "conversations",
    "responded",
    "frt_sum",
    "resolved",
    "res_sum",
    "csat_answers",
    "csat_sum",
    "csat_satisfied",
    "nps_answers",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
    "fcr",
    "sla_tracked",
    "sla_breached",
    "escalated",
    "transferred",
    "automated",
    "ever_resolved",
    "reopened",
    "speed_sum",
    "handle_n",
    "handle_sum",
];

/// At most this many hours in one refresh transaction.
const CHUNK_HOURS: i64 = 24;

pub(crate) fn dim_name(d: Option<Dimension>) -> &'static str {
    DIMS.iter()
        .find(|(_, x)| *x == d)
        .map(|(n, _)| *n)
        .unwrap_or("")
}

/// The UTC hour number of an instant.
pub fn hour_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

/// The instant an hour number starts at.
pub fn hour_start(hour: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(hour * 3600, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// SQL for the hour number of a timestamp expression.
pub(crate) fn hour_sql(backend: DbBackend, ts: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("CAST(FLOOR(EXTRACT(EPOCH FROM {ts}) / 3600) AS BIGINT)"),
        _ => format!("(CAST(strftime('%s', {ts}) AS INTEGER) / 3600)"),
    }
}

/// The additive counters of the conversations of alias `c`, aliased by
/// their [`CORE`] names.
pub(crate) fn core_exprs(s: &Sql) -> String {
    let frt = s.ms_between("c.created_at", "c.first_response_at");
    let res = s.ms_between("c.created_at", "c.resolved_at");
    let span = s.ms_between(
        "COALESCE(c.assigned_at, c.created_at)",
        "c.first_response_at",
    );
    let speed = format!("(CASE WHEN {span} < 0 THEN 0 ELSE {span} END)");
    let breach = "EXISTS (SELECT 1 FROM sla_events se \
                  WHERE se.conversation_id = c.id AND se.level = 'breach')";
    let agent_msg = "EXISTS (SELECT 1 FROM messages am \
                     WHERE am.conversation_id = c.id AND am.sender_kind = 'agent')";
    let tracked = "(c.first_response_due_at IS NOT NULL OR c.resolution_due_at IS NOT NULL)";
    let exprs = [
        "CAST(COUNT(*) AS BIGINT)".to_string(),
        count_if("c.first_response_at IS NOT NULL"),
        sum_if("c.first_response_at IS NOT NULL", &frt),
        count_if("c.resolved_at IS NOT NULL"),
        sum_if("c.resolved_at IS NOT NULL", &res),
        count_if("c.csat IS NOT NULL"),
        sum_if("c.csat IS NOT NULL", "c.csat"),
        count_if("c.csat >= 4"),
        count_if("c.nps IS NOT NULL"),
        count_if("c.nps >= 9"),
        count_if("c.nps BETWEEN 7 AND 8"),
        count_if("c.nps <= 6"),
        count_if("c.resolved_at IS NOT NULL AND c.reopen_count = 0 AND c.transfer_count = 0"),
        count_if(tracked),
        count_if(&format!("{tracked} AND {breach}")),
        count_if("c.escalation_level > 0"),
        count_if("c.transfer_count > 0"),
        count_if(&format!("c.resolved_at IS NOT NULL AND NOT {agent_msg}")),
        count_if("(c.resolved_at IS NOT NULL OR c.reopen_count > 0)"),
        count_if("c.reopen_count > 0"),
        sum_if("c.first_response_at IS NOT NULL", &speed),
        count_if(HANDLED),
        sum_if(HANDLED, &handle_ms(s)),
    ];
    exprs
        .iter()
        .zip(CORE)
        .map(|(e, n)| format!("{e} AS {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The same counters summed over rollup rows of alias `r`.
pub(crate) fn core_sums() -> String {
    CORE.iter()
        .map(|n| format!("CAST(SUM(r.{n}) AS BIGINT) AS {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SUM(CASE WHEN cond THEN x END)` as a BIGINT, 0 when nothing matched.
pub(crate) fn sum_if(cond: &str, x: &str) -> String {
    format!("CAST(COALESCE(SUM(CASE WHEN {cond} THEN {x} END), 0) AS BIGINT)")
}

/// How one query is split between rollups and live SQL.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The dimension kind (`metrics_rollup.dim`) and key filter used, when
    /// rollups can serve the query at all.
    pub dim: Option<(&'static str, Option<String>)>,
    /// Runs of hours `[a, b)` read from the rollups.
    pub rolled: Vec<(i64, i64)>,
    /// Intervals computed live from the base tables.
    pub live: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The partial hours at either end of the range.
    pub edges: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The whole hours `[h0, h1)` inside the range.
    pub whole: (i64, i64),
    /// The range planned.
    pub range: (DateTime<Utc>, DateTime<Utc>),
}

impl Plan {
    pub(crate) fn all_live(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            live: vec![(from, to)],
            range: (from, to),
            ..Default::default()
        }
    }

    /// The same plan reading only the rolled hours that end by `limit`
    /// (the later ones become live).
    pub fn rolled_until(&self, limit: DateTime<Utc>) -> Self {
        // The first hour that does not end by `limit`.
        let cut = hour_of(limit);
        let rolled: Vec<(i64, i64)> = self
            .rolled
            .iter()
            .filter_map(|&(a, b)| {
                let b = b.min(cut);
                (b > a).then_some((a, b))
            })
            .collect();
        Self {
            live: complement(self.range.0, self.range.1, &rolled),
            rolled,
            ..self.clone()
        }
    }

    /// Hours read from the rollups.
    pub fn rolled_hours(&self) -> i64 {
        self.rolled.iter().map(|(a, b)| b - a).sum()
    }

    /// The rolled runs as time intervals.
    pub fn rolled_intervals(&self) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        self.rolled
            .iter()
            .map(|(a, b)| (hour_start(*a), hour_start(*b)))
            .collect()
    }

    /// `AND r.dim = … [AND r.dkey = …] AND (hour runs)` for rollup alias `r`.
    pub(crate) fn rollup_where(&self, s: &mut Sql, r: &str) -> Option<String> {
        let (dim, key) = self.dim.as_ref()?;
        if self.rolled.is_empty() {
            return None;
        }
        let mut out = format!(" AND {r}.dim = {}", s.bind(dim.to_string()));
        if let Some(k) = key {
            out.push_str(&format!(" AND {r}.dkey = {}", s.bind(k.clone())));
        }
        out.push_str(&format!(
            " AND {}",
            ranges_sql(s, &format!("{r}.hour"), &self.rolled)
        ));
        Some(out)
    }
}

/// `((col >= a AND col < b) OR …)` over half-open ranges (time intervals or
/// runs of hour numbers); false when empty.
pub(crate) fn ranges_sql<T>(s: &mut Sql, col: &str, ranges: &[(T, T)]) -> String
where
    T: Copy + Into<sea_orm::Value>,
{
    if ranges.is_empty() {
        return "1 = 0".into();
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(a, b)| {
            let (a, b) = (s.bind(a), s.bind(b));
            format!("({col} >= {a} AND {col} < {b})")
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

/// The one dimension kind a question needs (its dimension when grouped by
/// it, and its filters), with the filter's key; `None` when it needs two.
pub(crate) fn needed_dim(
    dimension: Option<Dimension>,
    f: &MetricsFilter,
) -> Option<(&'static str, Option<String>)> {
    use sea_orm::ActiveEnum;
    let mut kinds: Vec<(Dimension, Option<String>)> = vec![];
    if let Some(id) = f.agent_id {
        kinds.push((Dimension::Agent, Some(id.to_string())));
    }
    if let Some(id) = f.department_id {
        kinds.push((Dimension::Department, Some(id.to_string())));
    }
    if let Some(id) = f.channel_id {
        kinds.push((Dimension::Channel, Some(id.to_string())));
    }
    if let Some(id) = f.tag_id {
        kinds.push((Dimension::Tag, Some(id.to_string())));
    }
    if let Some(t) = &f.topic {
        kinds.push((Dimension::Topic, Some(t.clone())));
    }
    if let Some(p) = f.priority {
        kinds.push((Dimension::Priority, Some(p.to_value())));
    }
    if let Some(d) = dimension
        && !kinds.iter().any(|(k, _)| *k == d)
    {
        kinds.push((d, None));
    }
    match kinds.as_slice() {
        [] => Some(("", None)),
        [(d, key)] => Some((dim_name(Some(*d)), key.clone())),
        _ => None,
    }
}

/// Whether every local bucket boundary of the range falls on a UTC hour.
fn whole_hour_zone(q: &MetricsQuery) -> bool {
    let (first, changes) = offset_changes(&q.time_zone, q.from, q.to);
    first % 3600 == 0
        && changes
            .iter()
            .all(|(at, off)| off % 3600 == 0 && at.timestamp() % 3600 == 0)
}

/// Splits sorted hours into runs `[a, b)`.
fn runs(hours: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = vec![];
    for &h in hours {
        match out.last_mut() {
            Some((_, b)) if *b == h => *b = h + 1,
            _ => out.push((h, h + 1)),
        }
    }
    out
}

/// `[from, to)` minus the rolled runs, in order.
fn complement(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rolled: &[(i64, i64)],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = vec![];
    let mut at = from;
    for (a, b) in rolled {
        let (s, e) = (hour_start(*a), hour_start(*b));
        if s > at {
            out.push((at, s));
        }
        at = at.max(e);
    }
    if at < to {
        out.push((at, to));
    }
    out
}

impl Domain {
    /// How `q` is served: `dimension` is the dimension rows are grouped by
    /// (if any), `filters` the filters applied to conversations, `by_bucket`
    /// whether rows are split by local time buckets.
    pub async fn metrics_plan(
        &self,
        q: &MetricsQuery,
        dimension: Option<Dimension>,
        filters: &MetricsFilter,
        by_bucket: bool,
    ) -> Result<Plan> {
        let Some(dim) = needed_dim(dimension, filters) else {
            return Ok(Plan::all_live(q.from, q.to));
        };
        if by_bucket && !whole_hour_zone(q) {
            return Ok(Plan::all_live(q.from, q.to));
        }
        self.hours_plan(q.from, q.to, dim).await
    }

    /// How `[from, to)` is served for the dimension kind and key `dim`: its
    /// whole hours that are rolled up and unmarked from the rollups, the
    /// rest live.
    pub(crate) async fn hours_plan(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        dim: (&'static str, Option<String>),
    ) -> Result<Plan> {
        let h0 = hour_of(from)
            + i64::from(from.timestamp() % 3600 != 0 || from.timestamp_subsec_nanos() != 0);
        let h1 = hour_of(to);
        if h0 >= h1 {
            return Ok(Plan::all_live(from, to));
        }
        let mut s = Sql::new(self.db.get_database_backend());
        let (a, b) = (s.bind(h0), s.bind(h1));
        let rows = s
            .all(
                &self.read,
                &format!(
                    "SELECT r.hour AS hour FROM metrics_rollup_hours r \
                     WHERE r.hour >= {a} AND r.hour < {b} AND NOT EXISTS \
                     (SELECT 1 FROM metrics_rollup_dirty d WHERE d.hour = r.hour) \
                     ORDER BY r.hour"
                ),
            )
            .await?;
        let hours: Vec<i64> = rows
            .iter()
            .map(|r| get::<i64>(r, "hour"))
            .collect::<Result<_>>()?;
        let rolled = runs(&hours);
        let mut edges = vec![];
        if from < hour_start(h0) {
            edges.push((from, hour_start(h0)));
        }
        if hour_start(h1) < to {
            edges.push((hour_start(h1), to));
        }
        Ok(Plan {
            dim: Some(dim),
            live: complement(from, to, &rolled),
            rolled,
            edges,
            whole: (h0, h1),
            range: (from, to),
        })
    }

    /// Rolls up the completed hours not rolled yet and the hours marked
    /// dirty more than `settle` ago, at most `max_hours` of each; returns
    /// how many hours were refreshed. Safe to run on several instances at
    /// once.
    #[tracing::instrument(skip(self))]
    pub async fn refresh_metrics_rollups(&self, max_hours: i64, settle: Duration) -> Result<usize> {
        let now = self.clock.now();
        let current = hour_of(now);
        let cutoff = (now - settle).timestamp();
        let backend = self.db.get_database_backend();
        let mut s = Sql::new(backend);
        let (c, h, lim) = (s.bind(cutoff), s.bind(current), s.bind(max_hours));
        let dirty = s
            .all(
                &self.db,
                &format!(
                    "SELECT DISTINCT hour FROM metrics_rollup_dirty \
                     WHERE marked_at < {c} AND hour < {h} ORDER BY hour LIMIT {lim}"
                ),
            )
            .await?;
        let mut hours: BTreeSet<i64> = dirty
            .iter()
            .map(|r| get::<i64>(r, "hour"))
            .collect::<Result<_>>()?;
        // New hours: from the first conversation's hour, the first hour
        // without a row (dirty hours may have been rolled out of order).
        let first = Sql::new(backend)
            .all(
                &self.db,
                "SELECT created_at FROM conversations ORDER BY created_at LIMIT 1",
            )
            .await?;
        let lo = first
            .first()
            .map(|r| get::<DateTime<Utc>>(r, "created_at"))
            .transpose()?
            .map(hour_of);
        if let Some(lo) = lo {
            let mut s = Sql::new(backend);
            let (l1, l2) = (s.bind(lo), s.bind(lo));
            let gap = s
                .all(
                    &self.db,
                    &format!(
                        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM metrics_rollup_hours \
                         WHERE hour = {l1}) THEN {l2} ELSE (SELECT MIN(h.hour + 1) \
                         FROM metrics_rollup_hours h WHERE h.hour >= {l2} AND NOT EXISTS \
                         (SELECT 1 FROM metrics_rollup_hours n WHERE n.hour = h.hour + 1)) \
                         END AS hour"
                    ),
                )
                .await?;
            if let Some(start) = gap
                .first()
                .map(|r| get::<Option<i64>>(r, "hour"))
                .transpose()?
                .flatten()
            {
                hours.extend(start..current.min(start + max_hours));
            }
        }
        let hours: Vec<i64> = hours.into_iter().collect();
        let mut done = 0;
        for (a, b) in runs(&hours) {
            let mut at = a;
            while at < b {
                let end = b.min(at + CHUNK_HOURS);
                self.refresh_hours(at, end, cutoff, now).await?;
                done += (end - at) as usize;
                at = end;
            }
        }
        Ok(done)
    }

    /// Recomputes the rollups of hours `[a, b)` in one transaction.
    async fn refresh_hours(&self, a: i64, b: i64, cutoff: i64, now: DateTime<Utc>) -> Result<()> {
        let backend = self.db.get_database_backend();
        let tx = self.db.begin().await?;
        // Lock (or create) the hours' rows first: a second instance waits here.
        let mut s = Sql::new(backend);
        let values: Vec<String> = (a..b)
            .map(|h| format!("({}, {})", s.bind(h), s.bind(now)))
            .collect();
        s.exec(
            &tx,
            &format!(
                "INSERT INTO metrics_rollup_hours (hour, refreshed_at) VALUES {} \
                 ON CONFLICT (hour) DO UPDATE SET refreshed_at = excluded.refreshed_at",
                values.join(", ")
            ),
        )
        .await?;
        let mut s = Sql::new(backend);
        let (ha, hb, c) = (s.bind(a), s.bind(b), s.bind(cutoff));
        s.exec(
            &tx,
            &format!(
                "DELETE FROM metrics_rollup_dirty WHERE hour >= {ha} AND hour < {hb} \
                 AND marked_at < {c}"
            ),
        )
        .await?;
        for table in [
            "metrics_rollup",
            "metrics_rollup_frt",
            "metrics_rollup_volume",
            "metrics_rollup_handlers",
            "metrics_rollup_chars",
            "metrics_rollup_wait",
            "metrics_rollup_repeat",
            "metrics_rollup_cost",
            "metrics_rollup_busy",
        ] {
            let mut s = Sql::new(backend);
            let (ha, hb) = (s.bind(a), s.bind(b));
            s.exec(
                &tx,
                &format!("DELETE FROM {table} WHERE hour >= {ha} AND hour < {hb}"),
            )
            .await?;
        }
        let (from, to) = (hour_start(a), hour_start(b));
        let hour_c = hour_sql(backend, "c.created_at");
        let hour_m = hour_sql(backend, "m.created_at");
        for (name, d) in DIMS {
            let dim = dimension_sql(d);
            let joins = if d == Some(Dimension::Tag) {
                dim.joins.as_str()
            } else {
                ""
            };
            let key = dim.key.as_str();
            let by_key = if d.is_some() { ", 3" } else { "" };
            let mut s = Sql::new(backend);
            let (f, t) = (s.bind(from), s.bind(to));
            let exprs = core_exprs(&s);
            s.exec(
                &tx,
                &format!(
                    "INSERT INTO metrics_rollup (hour, dim, dkey, {cols}) \
                     SELECT {hour_c}, '{name}', {key}, {exprs} FROM conversations c{joins} \
                     WHERE c.created_at >= {f} AND c.created_at < {t} \
                     GROUP BY 1{by_key} HAVING COUNT(*) > 0",
                    cols = CORE.join(", "),
                ),
            )
            .await?;
            let mut s = Sql::new(backend);
            let (f, t) = (s.bind(from), s.bind(to));
            let frt = s.ms_between("c.created_at", "c.first_response_at");
            s.exec(
                &tx,
                &format!(
                    "INSERT INTO metrics_rollup_frt (hour, dim, dkey, frt_ms, n) \
                     SELECT {hour_c}, '{name}', {key}, {frt}, CAST(COUNT(*) AS BIGINT) \
                     FROM conversations c{joins} \
                     WHERE c.created_at >= {f} AND c.created_at < {t} \
                     AND c.first_response_at IS NOT NULL GROUP BY 1{by_key}, 4"
                ),
            )
            .await?;
            let mut s = Sql::new(backend);
            let (f, t) = (s.bind(from), s.bind(to));
            let by_key = if d.is_some() { ", 4" } else { "" };
            s.exec(
                &tx,
                &format!(
                    "INSERT INTO metrics_rollup_volume \
                     (hour, msg_hour, dim, dkey, messages_in, messages_out) \
                     SELECT {hour_c}, {hour_m}, '{name}', {key}, {inbound}, {outbound} \
                     FROM conversations c{joins} JOIN messages m ON m.conversation_id = c.id \
                     WHERE c.created_at >= {f} AND c.created_at < {t} GROUP BY 1, 2{by_key}",
                    inbound = count_if("m.direction = 'inbound'"),
                    outbound = count_if("m.direction = 'outbound'"),
                ),
            )
            .await?;
            let by_key = if d.is_some() { ", 3" } else { "" };
            let mut s = Sql::new(backend);
            let (f, t) = (s.bind(from), s.bind(to));
            let bucket = wait_bucket_sql(&s, None);
            s.exec(
                &tx,
                &format!(
                    "INSERT INTO metrics_rollup_wait \
                     (hour, dim, dkey, bucket, conversations, converted) \
                     SELECT {hour_c}, '{name}', {key}, {bucket}, CAST(COUNT(*) AS BIGINT), \
                     {converted} FROM conversations c{joins} \
                     WHERE c.created_at >= {f} AND c.created_at < {t} GROUP BY 1{by_key}, 4",
                    converted = count_if("c.converted_at IS NOT NULL"),
                ),
            )
            .await?;
            let mut s = Sql::new(backend);
            let (f, t) = (s.bind(from), s.bind(to));
            let repeat = repeat_sql(&s);
            s.exec(
                &tx,
                &format!(
                    "INSERT INTO metrics_rollup_repeat \
                     (hour, dim, dkey, topic, conversations, repeats) \
                     SELECT {hour_c}, '{name}', {key}, c.topic, CAST(COUNT(*) AS BIGINT), \
                     {repeats} FROM conversations c{joins} \
                     WHERE c.created_at >= {f} AND c.created_at < {t} AND c.topic IS NOT NULL \
                     GROUP BY 1{by_key}, 4",
                    repeats = count_if(&repeat),
                ),
            )
            .await?;
        }
        let mut s = Sql::new(backend);
        let (f, t) = (s.bind(from), s.bind(to));
        s.exec(
            &tx,
            &format!(
                "INSERT INTO metrics_rollup_cost (hour, channel_id, period, {cols}) \
                 SELECT {hour_b}, b.channel_id, b.period, {sums} FROM billing_ledger b \
                 WHERE b.created_at >= {f} AND b.created_at < {t} GROUP BY 1, 2, 3",
                cols = crate::billing::LEDGER_SUMS.join(", "),
                hour_b = hour_sql(backend, "b.created_at"),
                sums = crate::billing::ledger_sums(),
            ),
        )
        .await?;
        let mut s = Sql::new(backend);
        let (ha, hb) = (s.bind(a), s.bind(b));
        let windows = format!(
            "SELECT hh.hour AS wid, hh.hour * 3600000 AS ws, (hh.hour + 1) * 3600000 AS we \
             FROM metrics_rollup_hours hh WHERE hh.hour >= {ha} AND hh.hour < {hb}"
        );
        let busy = busy_sql(&mut s, &windows, (from, to), now, &MetricsFilter::default());
        s.exec(
            &tx,
            &format!("INSERT INTO metrics_rollup_busy (agent_id, hour, busy_ms) {busy}"),
        )
        .await?;
        let mut s = Sql::new(backend);
        let (f, t) = (s.bind(from), s.bind(to));
        s.exec(
            &tx,
            &format!(
                "WITH k AS (SELECT c.id, c.assignee_id, {hour_c} AS hour FROM conversations c \
                   WHERE c.created_at >= {f} AND c.created_at < {t}), \
                 h AS (SELECT a.conversation_id AS cid, a.to_user_id AS agent \
                   FROM assignments a JOIN k ON k.id = a.conversation_id \
                   WHERE a.to_user_id IS NOT NULL \
                   UNION SELECT k.id, k.assignee_id FROM k WHERE k.assignee_id IS NOT NULL), \
                 t AS (SELECT DISTINCT a.conversation_id AS cid, a.from_user_id AS agent \
                   FROM assignments a JOIN k ON k.id = a.conversation_id \
                   WHERE a.kind = 'transfer' AND a.from_user_id IS NOT NULL) \
                 INSERT INTO metrics_rollup_handlers (hour, agent_id, handled, transferred) \
                 SELECT k.hour, h.agent, CAST(COUNT(*) AS BIGINT), {transferred} \
                 FROM h JOIN k ON k.id = h.cid \
                 LEFT JOIN t ON t.cid = h.cid AND t.agent = h.agent GROUP BY k.hour, h.agent",
                transferred = count_if("t.cid IS NOT NULL"),
            ),
        )
        .await?;
        let mut s = Sql::new(backend);
        let (f, t) = (s.bind(from), s.bind(to));
        s.exec(
            &tx,
            &format!(
                "INSERT INTO metrics_rollup_chars (hour, agent_id, chars) \
                 SELECT {hour_m}, m.sender_user_id, CAST(COALESCE(SUM(LENGTH(m.body)), 0) AS BIGINT) \
                 FROM messages m WHERE m.sender_kind = 'agent' AND m.sender_user_id IS NOT NULL \
                 AND m.created_at >= {f} AND m.created_at < {t} GROUP BY 1, 2"
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Percentile in `percentile_cont` semantics, from rows of a histogram that
/// hold the ranks needed: `(value, count below, count)`, sorted by value;
/// `num / den` is the fraction.
pub(crate) fn percentile(
    rows: &[(i64, i64, i64)],
    total: i64,
    num: i64,
    den: i64,
) -> Result<Option<f64>> {
    if total <= 0 {
        return Ok(None);
    }
    let at = |rank: i64| -> Result<i64> {
        rows.iter()
            .find(|(_, below, n)| *below <= rank && rank < below + n)
            .map(|(v, _, _)| *v)
            .ok_or_else(|| {
                DomainError::internal(std::io::Error::other(format!(
                    "percentile rank {rank} missing"
                )))
            })
    };
    let pos = (total - 1) * num;
    let lo = pos / den;
    let rem = pos % den;
    let lo_v = at(lo)? as f64;
    if rem == 0 {
        return Ok(Some(lo_v));
    }
    let hi_v = at(lo + 1)? as f64;
    Ok(Some(lo_v + (hi_v - lo_v) * (rem as f64 / den as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_percentile_cont() {
        // 60, 120, 300, 600, 1000 as a histogram.
        let rows = [
            (60, 0, 1),
            (120, 1, 1),
            (300, 2, 1),
            (600, 3, 1),
            (1000, 4, 1),
        ];
        assert_eq!(percentile(&rows, 5, 1, 2).unwrap(), Some(300.0));
        assert_eq!(percentile(&rows, 5, 9, 10).unwrap(), Some(840.0));
        // Repeated values: 10 ×3, 20 ×1 → median at rank 1.5 = 10.
        let rows = [(10, 0, 3), (20, 3, 1)];
        assert_eq!(percentile(&rows, 4, 1, 2).unwrap(), Some(10.0));
        assert_eq!(percentile(&[], 0, 1, 2).unwrap(), None);
    }

    #[test]
    fn one_dimension_kind_at_a_time() {
        let f = MetricsFilter {
            topic: Some("size".into()),
            ..Default::default()
        };
        assert_eq!(needed_dim(None, &f), Some(("topic", Some("size".into()))));
        assert_eq!(
            needed_dim(Some(Dimension::Topic), &f),
            Some(("topic", Some("size".into())))
        );
        assert_eq!(needed_dim(Some(Dimension::Agent), &f), None);
        assert_eq!(
            needed_dim(None, &MetricsFilter::default()),
            Some(("", None))
        );
    }

    #[test]
    fn the_range_minus_rolled_hours_is_live() {
        let from = hour_start(10) + Duration::minutes(30);
        let to = hour_start(15) + Duration::minutes(5);
        let live = complement(from, to, &runs(&[11, 12, 14]));
        assert_eq!(
            live,
            vec![
                (from, hour_start(11)),
                (hour_start(13), hour_start(14)),
                (hour_start(15), to)
            ]
        );
    }
}
