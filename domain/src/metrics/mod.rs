//! Metrics and reports (SPEC §6), computed by the database with SQL
//! aggregates, never by loading rows into Rust. Every family has its own file;
//! each metric's doc comment says exactly what is counted.
//!
//! # Shared rules
//! - **The cohort.** Conversation metrics count the conversations *created* in
//!   `[from, to)` that match the filters, and bucket them by `created_at`;
//!   chat volume counts the messages of those conversations that were sent in
//!   `[from, to)` too, in the conversation's bucket. Agent text (characters) counts messages sent in
//!   `[from, to)`. Presence and handling time are clipped to `[from, to)`.
//! - **Dimension.** Rows can be split by agent (the conversation's current
//!   assignee), department, channel, tag (a conversation with two tags counts
//!   in both; untagged ones in none), topic or priority.
//! - **Time buckets** are local to the chosen IANA time zone: hour, day, week
//!   (ISO, starting Monday) or month. PostgreSQL uses
//!   `date_trunc(unit, ts AT TIME ZONE tz)`. SQLite has no time-zone data, so
//!   Rust computes the zone's UTC offsets over the range (every DST change in
//!   it) and the query shifts each timestamp by the offset in force at that
//!   instant (`CASE WHEN ts < change₁ THEN off₀ …`), then truncates with
//!   `strftime`. Both give the same local bucket labels, which Rust turns back
//!   into UTC instants.
//! - **Durations** of the core KPIs are whole milliseconds between two
//!   timestamps (`EXTRACT(EPOCH …)` on PostgreSQL, `julianday` on SQLite,
//!   rounded); a mean is their integer sum over the count, reported in
//!   seconds to the millisecond. Other durations are seconds rounded to the
//!   millisecond.
//! - **Percentiles** follow `percentile_cont` (linear interpolation between
//!   the two nearest ranks). The first response time's are computed from a
//!   histogram of the millisecond values: the statement returns the rows
//!   holding the two ranks around each fraction and Rust interpolates.
//!   Elsewhere PostgreSQL's own function, on SQLite the same formula over
//!   `ROW_NUMBER()` in a window.
//! - **Rollups** ([`rollup`]): the core KPIs, the per-agent counts and
//!   handling time, the time-of-day volumes and handle time, the waiting
//!   buckets, the repeat contacts and the message cost are served from
//!   hourly rollups for the whole, unchanged hours of a range and computed
//!   live for the rest; the two give identical results.
//! - Rates are fractions in `0..=1`; `None` when the denominator is zero.

pub mod agents;
pub mod funnel;
pub mod repeat;
pub mod response;
pub mod rollup;
pub mod sql;
pub mod time_of_day;
pub mod waiting;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::DbBackend;

use crate::{DomainError, Result};
use sql::Sql;

/// The longest range one metrics query covers.
pub const MAX_RANGE_DAYS: i64 = 400;
/// Hourly series over at most this many days.
pub const MAX_HOURLY_DAYS: i64 = 31;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    Hour,
    #[default]
    Day,
    Week,
    Month,
}

impl Granularity {
    fn pg_unit(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// The conversation's current assignee.
    Agent,
    Department,
    Channel,
    /// Each tag of the conversation (untagged conversations are left out).
    Tag,
    Topic,
    Priority,
}

/// Narrows every metric to matching conversations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsFilter {
    pub agent_id: Option<i64>,
    pub department_id: Option<i64>,
    pub channel_id: Option<i64>,
    pub tag_id: Option<i64>,
    pub topic: Option<String>,
    pub priority: Option<entity::Priority>,
}

/// What every metrics query is asked for.
#[derive(Debug, Clone)]
pub struct MetricsQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
    pub time_zone: Tz,
    pub dimension: Option<Dimension>,
    pub filters: MetricsFilter,
}

impl MetricsQuery {
    /// Checks the range and parses the IANA time zone.
    pub fn new(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
        time_zone: &str,
        dimension: Option<Dimension>,
        filters: MetricsFilter,
    ) -> Result<Self> {
        if from >= to {
            return Err(DomainError::invalid("to", "must be after from"));
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(DomainError::invalid(
                "from",
                format!("at most {MAX_RANGE_DAYS} days at once"),
            ));
        }
        if granularity == Granularity::Hour && to - from > Duration::days(MAX_HOURLY_DAYS) {
            return Err(DomainError::invalid(
                "granularity",
                format!("hourly series cover at most {MAX_HOURLY_DAYS} days"),
            ));
        }
        let time_zone: Tz = time_zone
            .parse()
            .map_err(|_| DomainError::invalid("timeZone", "is not an IANA time zone"))?;
        Ok(Self {
            from,
            to,
            granularity,
            time_zone,
            dimension,
            filters,
        })
    }

    /// The same question over another range.
    pub fn with_range(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            from,
            to,
            ..self.clone()
        }
    }

    /// The equal period just before this one.
    pub fn previous(&self) -> Self {
        self.with_range(self.from - (self.to - self.from), self.from)
    }

    /// Length of the range in days (fractional).
    pub fn days(&self) -> f64 {
        (self.to - self.from).num_seconds() as f64 / 86_400.0
    }
}

/// UTC offsets of `tz` over `[from, to)`: the offset at `from`, then every
/// change with the instant it happens (found to the minute).
pub fn offset_changes(
    tz: &Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (i64, Vec<(DateTime<Utc>, i64)>) {
    let off = |at: DateTime<Utc>| -> i64 {
        use chrono::Offset;
        i64::from(
            tz.offset_from_utc_datetime(&at.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    };
    let first = off(from);
    let mut changes = vec![];
    let mut prev = first;
    let mut at = from;
    while at < to {
        let next = (at + Duration::hours(1)).min(to);
        let o = off(next);
        if o != prev {
            // Refine to the minute inside (at, next].
            let mut t = at;
            while off(t) == prev && t < next {
                t += Duration::minutes(1);
            }
            if t < to {
                changes.push((t, o));
            }
            prev = o;
        }
        at = next;
    }
    (first, changes)
}

/// SQL for the local wall-clock time of a UTC timestamp expression.
pub(crate) fn local_time(s: &mut Sql, ts: &str, q: &MetricsQuery) -> String {
    match s.backend {
        DbBackend::Postgres => {
            let tz = s.bind(q.time_zone.name().to_string());
            format!("({ts} AT TIME ZONE {tz})")
        }
        _ => {
            let (first, changes) = offset_changes(&q.time_zone, q.from, q.to);
            if changes.is_empty() {
                return format!("datetime({ts}, '{first} seconds')");
            }
            let mut case = String::from("CASE");
            let mut current = first;
            for (at, off) in changes {
                let p = s.bind(at);
                case.push_str(&format!(" WHEN {ts} < {p} THEN '{current} seconds'"));
                current = off;
            }
            case.push_str(&format!(" ELSE '{current} seconds' END"));
            format!("datetime({ts}, {case})")
        }
    }
}

/// SQL for the local bucket label (`YYYY-MM-DDTHH:MM`) of a timestamp.
pub(crate) fn bucket_label(s: &mut Sql, ts: &str, q: &MetricsQuery) -> String {
    let local = local_time(s, ts, q);
    format_bucket(s.backend, &local, q)
}

/// The same for the start of an hour number (`rollup::hour_of`) expression.
pub(crate) fn hour_bucket_label(s: &mut Sql, hour: &str, q: &MetricsQuery) -> String {
    let local = hour_local_time(s, hour, q);
    format_bucket(s.backend, &local, q)
}

/// SQL for the local wall-clock time at the start of an hour number.
pub(crate) fn hour_local_time(s: &mut Sql, hour: &str, q: &MetricsQuery) -> String {
    match s.backend {
        DbBackend::Postgres => {
            let tz = s.bind(q.time_zone.name().to_string());
            format!("(to_timestamp({hour} * 3600) AT TIME ZONE {tz})")
        }
        _ => {
            let (first, changes) = offset_changes(&q.time_zone, q.from, q.to);
            let mut off = format!("{first}");
            if !changes.is_empty() {
                let mut case = String::from("CASE");
                let mut current = first;
                for (at, o) in changes {
                    case.push_str(&format!(
                        " WHEN {hour} * 3600 < {} THEN {current}",
                        at.timestamp()
                    ));
                    current = o;
                }
                case.push_str(&format!(" ELSE {current} END"));
                off = case;
            }
            format!("datetime({hour} * 3600 + {off}, 'unixepoch')")
        }
    }
}

fn format_bucket(backend: DbBackend, local: &str, q: &MetricsQuery) -> String {
    match backend {
        DbBackend::Postgres => format!(
            "to_char(date_trunc('{}', {local}), 'YYYY-MM-DD\"T\"HH24:MI')",
            q.granularity.pg_unit()
        ),
        _ => match q.granularity {
            Granularity::Hour => format!("strftime('%Y-%m-%dT%H:00', {local})"),
            Granularity::Day => format!("strftime('%Y-%m-%dT00:00', {local})"),
            Granularity::Week => {
                format!("strftime('%Y-%m-%dT00:00', {local}, 'weekday 0', '-6 days')")
            }
            Granularity::Month => format!("strftime('%Y-%m-01T00:00', {local})"),
        },
    }
}

/// The UTC instant a local bucket label starts at (the earlier one when the
/// local time is ambiguous, the next valid minute when it does not exist).
pub fn bucket_start(label: &str, tz: &Tz) -> Result<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(label, "%Y-%m-%dT%H:%M").map_err(|e| {
        DomainError::internal(std::io::Error::other(format!("bucket label {label}: {e}")))
    })?;
    let mut n = naive;
    for _ in 0..180 {
        if let Some(at) = tz.from_local_datetime(&n).earliest() {
            return Ok(at.with_timezone(&Utc));
        }
        n += Duration::minutes(1);
    }
    Err(DomainError::internal(std::io::Error::other(format!(
        "no instant for local {label}"
    ))))
}

/// The dimension's key, label and joins for the conversation alias `c`.
pub(crate) struct DimSql {
    pub key: String,
    pub label: String,
    pub joins: String,
}

pub(crate) fn dimension_sql(d: Option<Dimension>) -> DimSql {
    let (key, label, joins) = match d {
        None => ("CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)", ""),
        Some(Dimension::Agent) => (
            "CAST(c.assignee_id AS TEXT)",
            "du.name",
            " LEFT JOIN users du ON du.id = c.assignee_id",
        ),
        Some(Dimension::Department) => (
            "CAST(c.department_id AS TEXT)",
            "dd.name",
            " LEFT JOIN departments dd ON dd.id = c.department_id",
        ),
        Some(Dimension::Channel) => (
            "CAST(c.channel_id AS TEXT)",
            "dch.name",
            " LEFT JOIN channels dch ON dch.id = c.channel_id",
        ),
        Some(Dimension::Tag) => (
            "CAST(dct.tag_id AS TEXT)",
            "dt.name",
            " JOIN conversation_tags dct ON dct.conversation_id = c.id \
             LEFT JOIN tags dt ON dt.id = dct.tag_id",
        ),
        Some(Dimension::Topic) => ("c.topic", "c.topic", ""),
        Some(Dimension::Priority) => ("c.priority", "c.priority", ""),
    };
    DimSql {
        key: key.into(),
        label: label.into(),
        joins: joins.into(),
    }
}

/// The dimension's key, label and joins for the rollup alias `r` (keys
/// are stored as the live query's key text).
pub(crate) fn rollup_dimension_sql(d: Option<Dimension>) -> DimSql {
    let named = |table: &str| {
        (
            "r.dkey".to_string(),
            "rn.name".to_string(),
            format!(" LEFT JOIN {table} rn ON CAST(rn.id AS TEXT) = r.dkey"),
        )
    };
    let (key, label, joins) = match d {
        None => (
            "CAST(NULL AS TEXT)".to_string(),
            "CAST(NULL AS TEXT)".to_string(),
            String::new(),
        ),
        Some(Dimension::Agent) => named("users"),
        Some(Dimension::Department) => named("departments"),
        Some(Dimension::Channel) => named("channels"),
        Some(Dimension::Tag) => named("tags"),
        Some(Dimension::Topic | Dimension::Priority) => {
            ("r.dkey".to_string(), "r.dkey".to_string(), String::new())
        }
    };
    DimSql { key, label, joins }
}

/// `AND …` conditions on the conversation alias `c` for the filters.
pub(crate) fn filter_sql(s: &mut Sql, f: &MetricsFilter) -> String {
    let mut out = String::new();
    if let Some(id) = f.agent_id {
        out.push_str(&format!(" AND c.assignee_id = {}", s.bind(id)));
    }
    if let Some(id) = f.department_id {
        out.push_str(&format!(" AND c.department_id = {}", s.bind(id)));
    }
    if let Some(id) = f.channel_id {
        out.push_str(&format!(" AND c.channel_id = {}", s.bind(id)));
    }
    if let Some(id) = f.tag_id {
        out.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM conversation_tags fct \
             WHERE fct.conversation_id = c.id AND fct.tag_id = {})",
            s.bind(id)
        ));
    }
    if let Some(topic) = &f.topic {
        out.push_str(&format!(" AND c.topic = {}", s.bind(topic.clone())));
    }
    if let Some(p) = f.priority {
        use sea_orm::ActiveEnum;
        out.push_str(&format!(" AND c.priority = {}", s.bind(p.to_value())));
    }
    out
}

/// `numerator / denominator`, or `None` on an empty denominator.
pub fn ratio(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// Seconds rounded to the millisecond (SQLite's julianday is a float).
pub(crate) fn round_ms(v: Option<f64>) -> Option<f64> {
    v.map(|x| (x * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn offsets_over_a_dst_change_are_found_to_the_minute() {
        let tz: Tz = "Europe/Rome".parse().unwrap();
        let (first, changes) =
            offset_changes(&tz, at("2026-10-24T00:00:00Z"), at("2026-10-27T00:00:00Z"));
        assert_eq!(first, 7200);
        assert_eq!(changes, vec![(at("2026-10-25T01:00:00Z"), 3600)]);
    }

    #[test]
    fn a_range_without_dst_change_has_one_offset() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let (first, changes) =
            offset_changes(&tz, at("2026-12-01T00:00:00Z"), at("2026-12-31T00:00:00Z"));
        assert_eq!(first, -5 * 3600);
        assert!(changes.is_empty());
    }

    #[test]
    fn bucket_labels_map_back_to_utc() {
        let tz: Tz = "Europe/Rome".parse().unwrap();
        assert_eq!(
            bucket_start("2026-10-25T00:00", &tz).unwrap(),
            at("2026-10-24T22:00:00Z")
        );
        assert_eq!(
            bucket_start("2026-12-01T00:00", &tz).unwrap(),
            at("2026-11-30T23:00:00Z")
        );
    }

    #[test]
    fn a_range_must_be_ordered_and_bounded() {
        let f = MetricsFilter::default();
        let (a, b) = (at("2026-01-02T00:00:00Z"), at("2026-01-01T00:00:00Z"));
        assert!(MetricsQuery::new(a, b, Granularity::Day, "UTC", None, f.clone()).is_err());
        assert!(MetricsQuery::new(b, a, Granularity::Day, "Mars/Base", None, f.clone()).is_err());
        let far = b + Duration::days(40);
        assert!(MetricsQuery::new(b, far, Granularity::Hour, "UTC", None, f.clone()).is_err());
        assert!(MetricsQuery::new(b, far, Granularity::Day, "UTC", None, f).is_ok());
    }
}
