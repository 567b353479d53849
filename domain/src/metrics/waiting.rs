//! **Waiting-time buckets**: cohort conversations by how long the customer
//! waited for a person, with the conversion rate in each bucket.
//!
//! The wait is the seconds from `created_at` to the first response; a
//! conversation without one waited until it was resolved, or until now when
//! still open. Buckets: under 5 min, 5–15 min (both ends included), over
//! 15 min. Conversion rate = converted (`converted_at` set) ÷ conversations
//! of the bucket.
//!
//! Served from `metrics_rollup_wait` for the rolled hours that ended more
//! than 15 minutes ago, live for the rest.

use chrono::Duration;

use super::rollup::ranges_sql;
use super::sql::{Sql, count, count_if};
use super::{MetricsQuery, filter_sql, ratio};
use crate::{Actor, Capability, Domain, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitBucket {
    UnderFiveMinutes,
    FiveToFifteenMinutes,
    OverFifteenMinutes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WaitingRow {
    pub bucket: WaitBucket,
    pub conversations: i64,
    pub converted: i64,
}

impl WaitingRow {
    pub fn conversion_rate(&self) -> Option<f64> {
        ratio(self.converted, self.conversations)
    }
}

/// The waiting-time bucket (0, 1, 2 in [`WaitBucket`] order) of the
/// conversation alias `c`. `now` is the instant an unanswered, unresolved
/// conversation waits until; without it (rollups) such a conversation is
/// bucket 3, "still waiting", which is over 15 minutes once its hour ended
/// more than 15 minutes ago.
pub(crate) fn wait_bucket_sql(s: &Sql, now: Option<&str>) -> String {
    let until = match now {
        Some(now) => format!("COALESCE(c.first_response_at, c.resolved_at, {now})"),
        None => "COALESCE(c.first_response_at, c.resolved_at)".to_string(),
    };
    let wait = s.secs_between("c.created_at", &until);
    let open = if now.is_none() {
        "WHEN c.first_response_at IS NULL AND c.resolved_at IS NULL THEN 3 "
    } else {
        ""
    };
    format!(
        "CAST(CASE {open}WHEN {wait} < 300.0 THEN 0 WHEN {wait} <= 900.0 THEN 1 ELSE 2 END AS BIGINT)"
    )
}

/// A rolled hour whose conversations still waiting are all over 15 minutes
/// ends this long before now (a second of margin for rounding).
const SETTLED_WAIT_SECS: i64 = 901;

impl Domain {
    /// The three buckets, always in order, with zeros when empty.
    pub async fn waiting_time(&self, actor: &Actor, q: &MetricsQuery) -> Result<Vec<WaitingRow>> {
        actor.require(Capability::ReadMetrics)?;
        let now = self.clock.now();
        let plan = self
            .metrics_plan(q, None, &q.filters, false)
            .await?
            .rolled_until(now - Duration::seconds(SETTLED_WAIT_SECS));
        let mut s = Sql::new(self.db.get_database_backend());
        let mut parts = vec![];
        if !plan.live.is_empty() {
            let now_p = s.bind(now);
            let within = ranges_sql(&mut s, "c.created_at", &plan.live);
            let filters = filter_sql(&mut s, &q.filters);
            parts.push(format!(
                "SELECT {bucket} AS b, CAST(COUNT(*) AS BIGINT) AS n, {converted} AS converted \
                 FROM conversations c WHERE {within}{filters} GROUP BY 1",
                bucket = wait_bucket_sql(&s, Some(&now_p)),
                converted = count_if("c.converted_at IS NOT NULL"),
            ));
        }
        if let Some(w) = plan.rollup_where(&mut s, "r") {
            parts.push(format!(
                "SELECT CASE WHEN r.bucket = 3 THEN 2 ELSE r.bucket END AS b, \
                 CAST(SUM(r.conversations) AS BIGINT) AS n, \
                 CAST(SUM(r.converted) AS BIGINT) AS converted \
                 FROM metrics_rollup_wait r WHERE 1 = 1{w} GROUP BY 1"
            ));
        }
        let mut out = vec![
            WaitingRow {
                bucket: WaitBucket::UnderFiveMinutes,
                conversations: 0,
                converted: 0,
            },
            WaitingRow {
                bucket: WaitBucket::FiveToFifteenMinutes,
                conversations: 0,
                converted: 0,
            },
            WaitingRow {
                bucket: WaitBucket::OverFifteenMinutes,
                conversations: 0,
                converted: 0,
            },
        ];
        if parts.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT b, CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(converted) AS BIGINT) AS converted \
             FROM ({}) u GROUP BY b",
            parts.join(" UNION ALL ")
        );
        for row in s.all(&self.read, &sql).await? {
            if let Some(r) = out.get_mut(count(&row, "b")? as usize) {
                r.conversations += count(&row, "n")?;
                r.converted += count(&row, "converted")?;
            }
        }
        Ok(out)
    }
}
