//! **Waiting-time buckets**: cohort conversations by how long the customer
//! waited for a person, with the conversion rate in each bucket.
//!
//! The wait is the seconds from `created_at` to the first response; a
//! conversation without one waited until it was resolved, or until now when
//! still open. Buckets: under 5 min, 5–15 min (both ends included), over
//! 15 min. Conversion rate = converted (`converted_at` set) ÷ conversations
//! of the bucket.

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

impl Domain {
    /// The three buckets, always in order, with zeros when empty.
    pub async fn waiting_time(&self, actor: &Actor, q: &MetricsQuery) -> Result<Vec<WaitingRow>> {
        actor.require(Capability::ReadMetrics)?;
        let now = self.clock.now();
        let mut s = Sql::new(self.db.get_database_backend());
        let now_p = s.bind(now);
        let (from, to) = (s.bind(q.from), s.bind(q.to));
        let filters = filter_sql(&mut s, &q.filters);
        let wait = s.secs_between(
            "c.created_at",
            &format!("COALESCE(c.first_response_at, c.resolved_at, {now_p})"),
        );
        let sql = format!(
            "SELECT b, CAST(COUNT(*) AS BIGINT) AS n, {converted} AS converted FROM \
             (SELECT CAST(CASE WHEN w < 300.0 THEN 0 WHEN w <= 900.0 THEN 1 ELSE 2 END AS BIGINT) AS b, \
              converted_at FROM (SELECT {wait} AS w, c.converted_at FROM conversations c \
              WHERE c.created_at >= {from} AND c.created_at < {to}{filters}) x) y GROUP BY b",
            converted = count_if("converted_at IS NOT NULL"),
        );
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
        for row in s.all(&self.db, &sql).await? {
            if let Some(r) = out.get_mut(count(&row, "b")? as usize) {
                r.conversations = count(&row, "n")?;
                r.converted = count(&row, "converted")?;
            }
        }
        Ok(out)
    }
}
