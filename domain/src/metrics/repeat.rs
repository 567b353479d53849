//! **Repeat contact rate**: the share of cohort conversations with a topic
//! whose contact had already opened another conversation on the same topic
//! in the 7 days before (`created_at` within `[created_at − 7 days,
//! created_at)`, any channel). Above 15 % flags a defective answer (sizing
//! questions are the classic case). Given overall and per topic.

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

impl Domain {
    /// The total first, then each topic, most repeated first.
    pub async fn repeat_contacts(&self, actor: &Actor, q: &MetricsQuery) -> Result<Vec<RepeatRow>> {
        actor.require(Capability::ReadMetrics)?;
        let mut s = Sql::new(self.db.get_database_backend());
        let (from, to) = (s.bind(q.from), s.bind(q.to));
        let filters = filter_sql(&mut s, &q.filters);
        let within = s.within_days_before("p.created_at", "c.created_at", REPEAT_WINDOW_DAYS);
        let earlier = format!(
            "EXISTS (SELECT 1 FROM conversations p WHERE p.contact_id = c.contact_id \
             AND p.topic = c.topic AND p.id <> c.id AND p.created_at < c.created_at AND {within})"
        );
        let sql = format!(
            "SELECT c.topic AS topic, CAST(COUNT(*) AS BIGINT) AS n, {repeats} AS repeats \
             FROM conversations c WHERE c.created_at >= {from} AND c.created_at < {to} \
             AND c.topic IS NOT NULL{filters} GROUP BY c.topic",
            repeats = count_if(&earlier),
        );
        let mut rows = vec![];
        let mut total = RepeatRow {
            topic: None,
            conversations: 0,
            repeats: 0,
        };
        for row in s.all(&self.db, &sql).await? {
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
