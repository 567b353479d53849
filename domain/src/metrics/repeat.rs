//! **Repeat contact rate**: the share of cohort conversations with a topic
//! whose contact had already opened another conversation on the same topic
//! in the 7 days before (`created_at` within `[created_at − 7 days,
//! created_at)`, any channel). Above 15 % flags a defective answer (sizing
//! questions are the classic case). Given overall and per topic.
//!
//! Served from `metrics_rollup_repeat` for the rolled hours; a trigger
//! marks the hours of a contact's later conversations on the topic when an
//! earlier one is written.

use super::rollup::ranges_sql;
use super::sql::{Sql, count, count_if, get};
use super::{MetricsQuery, filter_sql, ratio};
use crate::{Actor, Capability, Domain, Result};

/// Repeat contact rate above this is flagged.
pub const REPEAT_FLAG_ABOVE: f64 = 0.15;
/// How far back a previous contact counts.
pub const REPEAT_WINDOW_DAYS: i64 = 7;

#[derive(Debug, Clone, PartialEq)]
pub struct RepeatRow {
    /// None for the total over all topics.
    pub topic: Option<String>,
    pub conversations: i64,
    pub repeats: i64,
}

impl RepeatRow {
    pub fn rate(&self) -> Option<f64> {
        ratio(self.repeats, self.conversations)
    }
    pub fn flagged(&self) -> bool {
        self.rate().is_some_and(|r| r > REPEAT_FLAG_ABOVE)
    }
}

/// Whether the conversation alias `c` is a repeat contact (the definition
/// above): an earlier conversation `p` of its contact on its topic within
/// the window.
pub(crate) fn repeat_sql(s: &Sql) -> String {
    let within = s.within_days_before("p.created_at", "c.created_at", REPEAT_WINDOW_DAYS);
    format!(
        "EXISTS (SELECT 1 FROM conversations p WHERE p.contact_id = c.contact_id \
         AND p.topic = c.topic AND p.id <> c.id AND p.created_at < c.created_at AND {within})"
    )
}

impl Domain {
    /// The total first, then each topic, most repeated first.
    pub async fn repeat_contacts(&self, actor: &Actor, q: &MetricsQuery) -> Result<Vec<RepeatRow>> {
        actor.require(Capability::ReadMetrics)?;
        let plan = self.metrics_plan(q, None, &q.filters, false).await?;
        let mut s = Sql::new(self.db.get_database_backend());
        let mut parts = vec![];
        if !plan.live.is_empty() {
            let within = ranges_sql(&mut s, "c.created_at", &plan.live);
            let filters = filter_sql(&mut s, &q.filters);
            parts.push(format!(
                "SELECT c.topic AS topic, CAST(COUNT(*) AS BIGINT) AS n, {repeats} AS repeats \
                 FROM conversations c WHERE {within} AND c.topic IS NOT NULL{filters} \
                 GROUP BY c.topic",
                repeats = count_if(&repeat_sql(&s)),
            ));
        }
        if let Some(w) = plan.rollup_where(&mut s, "r") {
            parts.push(format!(
                "SELECT r.topic AS topic, CAST(SUM(r.conversations) AS BIGINT) AS n, \
                 CAST(SUM(r.repeats) AS BIGINT) AS repeats \
                 FROM metrics_rollup_repeat r WHERE 1 = 1{w} GROUP BY r.topic"
            ));
        }
        let mut rows = vec![];
        let mut total = RepeatRow {
            topic: None,
            conversations: 0,
            repeats: 0,
        };
        let found = if parts.is_empty() {
            vec![]
        } else {
            let sql = format!(
                "SELECT topic, CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(repeats) AS BIGINT) AS repeats \
                 FROM ({}) u GROUP BY topic",
                parts.join(" UNION ALL ")
            );
            s.all(&self.read, &sql).await?
        };
        for row in found {
            let r = RepeatRow {
                topic: get(&row, "topic")?,
                conversations: count(&row, "n")?,
                repeats: count(&row, "repeats")?,
            };
            total.conversations += r.conversations;
            total.repeats += r.repeats;
            rows.push(r);
        }
        rows.sort_by(|a, b| {
            b.rate()
                .partial_cmp(&a.rate())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.topic.cmp(&b.topic))
        });
        rows.insert(0, total);
        Ok(rows)
    }
}
