//! The billing ledger: the product's own message costs (Meta's real invoice
//! differs, see WHATSAPP.md). Per channel and calendar month (UTC) the first
//! `free_messages_per_month` sent messages are free (1,000), then each costs
//! the channel region's price (0.005 USD South-East Asia, 0.008 USD Europe and
//! the Americas). Any message sent more than the billing window (48 h) after
//! the customer's last message adds the window surcharge (0.01 USD), free or
//! not. Money is integer micro-USD.
//!
//! A row is written by the outbox worker in the same transaction that marks
//! the message sent. The free allowance is counted in that transaction; on
//! PostgreSQL two instances finishing sends for one number at the same
//! instant can both see the 1,000th slot, so the allowance may be exceeded by
//! at most the number of instances (SQLite serialises writers: exact).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use entity::{billing_ledger, channel, conversation, message};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QuerySelect, QueryTrait, Set,
};
use serde::{Deserialize, Serialize};

use crate::metrics::rollup::{Plan, ranges_sql};
use crate::metrics::sql::{Sql, count, count_if, get};
use crate::{Actor, Capability, Domain, DomainError, Result};

pub const MICROS_PER_USD: f64 = 1_000_000.0;

/// Price of one billable message per channel region, in micro-USD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prices {
    pub europe: i64,
    pub americas: i64,
    pub south_east_asia: i64,
    pub other: i64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            europe: 8_000,
            americas: 8_000,
            south_east_asia: 5_000,
            other: 8_000,
        }
    }
}

impl Prices {
    pub fn for_region(&self, region: &str) -> i64 {
        match region {
            "europe" => self.europe,
            "americas" => self.americas,
            "south_east_asia" => self.south_east_asia,
            _ => self.other,
        }
    }
}

/// What one message costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub free: bool,
    pub base_micros: i64,
    pub surcharge_micros: i64,
}

impl Charge {
    pub fn total_micros(&self) -> i64 {
        self.base_micros + self.surcharge_micros
    }
}

/// The ledger's period key: `YYYY-MM` in UTC.
pub fn period(at: DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

/// The rule itself: `already_sent` is how many messages the channel sent this
/// month before this one.
pub fn charge(
    already_sent: u64,
    free_per_month: i64,
    price_micros: i64,
    beyond_billing_window: bool,
    surcharge_micros: i64,
) -> Charge {
    let free = (already_sent as i64) < free_per_month;
    Charge {
        free,
        base_micros: if free { 0 } else { price_micros },
        surcharge_micros: if beyond_billing_window {
            surcharge_micros
        } else {
            0
        },
    }
}

impl Domain {
    /// Records a sent message's cost; called inside the transaction that marks
    /// it sent. Returns the total, for `messages.cost_micros`.
    pub(crate) async fn record_charge(
        &self,
        db: &impl ConnectionTrait,
        msg: &message::Model,
        conversation: &conversation::Model,
        channel: &channel::Model,
        last_inbound: Option<DateTime<Utc>>,
        sent_at: DateTime<Utc>,
    ) -> Result<Charge> {
        let cfg = &self.config.messaging;
        let period = period(sent_at);
        // Only whether the free allowance is used up matters: the count
        // stops there instead of reading the whole month.
        let month = billing_ledger::Entity::find()
            .select_only()
            .column(billing_ledger::Column::Id)
            .filter(billing_ledger::Column::ChannelId.eq(channel.id))
            .filter(billing_ledger::Column::Period.eq(period.as_str()))
            .limit(u64::try_from(cfg.free_messages_per_month).unwrap_or(0))
            .into_query();
        let counted = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), "n")
            .from_subquery(month, "month")
            .to_owned();
        let already = match db.query_one(&counted).await? {
            Some(row) => u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0),
            None => 0,
        };
        let beyond = last_inbound.is_none_or(|at| sent_at - at > cfg.billing_window);
        let c = charge(
            already,
            cfg.free_messages_per_month,
            cfg.prices.for_region(&channel.region),
            beyond,
            cfg.window_surcharge_micros,
        );
        billing_ledger::ActiveModel {
            message_id: Set(msg.id),
            channel_id: Set(channel.id),
            conversation_id: Set(conversation.id),
            period: Set(period),
            region: Set(channel.region.clone()),
            free: Set(c.free),
            base_micros: Set(c.base_micros),
            surcharge_micros: Set(c.surcharge_micros),
            total_micros: Set(c.total_micros()),
            created_at: Set(sent_at),
            ..Default::default()
        }
        .insert(db)
        .await?;
        Ok(c)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    Day,
    #[default]
    Month,
}

#[derive(Debug, Clone)]
pub struct BillingFilter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub channel_id: Option<i64>,
    pub conversation_id: Option<i64>,
    pub granularity: Granularity,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromQueryResult)]
pub struct BillingTotals {
    pub messages: i64,
    pub free: i64,
    pub base_micros: i64,
    pub surcharge_micros: i64,
    pub total_micros: i64,
}

impl BillingTotals {
    pub fn billable(&self) -> i64 {
        self.messages - self.free
    }

    fn add(&mut self, other: &Self) {
        self.messages += other.messages;
        self.free += other.free;
        self.base_micros += other.base_micros;
        self.surcharge_micros += other.surcharge_micros;
        self.total_micros += other.total_micros;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingPeriod {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    pub start: DateTime<Utc>,
    pub totals: BillingTotals,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingReport {
    pub totals: BillingTotals,
    pub periods: Vec<BillingPeriod>,
}

/// The ledger's counters, in the column order of `metrics_rollup_cost`.
pub(crate) const LEDGER_SUMS: [&str; 5] = [
    "messages",
    "free",
    "base_micros",
    "surcharge_micros",
    "total_micros",
];

/// The counters of the ledger rows of alias `b`, aliased by their
/// [`LEDGER_SUMS`] names.
pub(crate) fn ledger_sums() -> String {
    [
        "CAST(COUNT(*) AS BIGINT)".to_string(),
        count_if("b.free"),
        "CAST(COALESCE(SUM(b.base_micros), 0) AS BIGINT)".to_string(),
        "CAST(COALESCE(SUM(b.surcharge_micros), 0) AS BIGINT)".to_string(),
        "CAST(COALESCE(SUM(b.total_micros), 0) AS BIGINT)".to_string(),
    ]
    .iter()
    .zip(LEDGER_SUMS)
    .map(|(e, n)| format!("{e} AS {n}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn period_start(period: &str) -> Option<DateTime<Utc>> {
    let date = match period.len() {
        7 => NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").ok()?,
        _ => NaiveDate::parse_from_str(period, "%Y-%m-%d").ok()?,
    };
    Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?))
}

impl Domain {
    /// Message cost per day or month, computed by the database: the hours
    /// rolled up in `metrics_rollup_cost` (when no conversation is named)
    /// from there, the rest from the ledger.
    pub async fn billing(&self, actor: &Actor, f: BillingFilter) -> Result<BillingReport> {
        actor.require(Capability::ReadMetrics)?;
        if f.from >= f.to {
            return Err(DomainError::invalid("to", "must be after from"));
        }
        if f.to - f.from > chrono::Duration::days(3660) {
            return Err(DomainError::invalid("from", "at most ten years at once"));
        }
        let backend = self.db.get_database_backend();
        // Rollups hold every channel and no conversation filter.
        let plan = if f.conversation_id.is_none() {
            self.hours_plan(f.from, f.to, ("", None)).await?
        } else {
            Plan::all_live(f.from, f.to)
        };
        let mut s = Sql::new(backend);
        let mut parts = vec![];
        if !plan.live.is_empty() {
            // Timestamps are UTC: ISO text on SQLite, timestamptz on PostgreSQL.
            let period = match (f.granularity, backend) {
                (Granularity::Month, _) => "b.period".to_string(),
                (Granularity::Day, DbBackend::Postgres) => {
                    "to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')".to_string()
                }
                (Granularity::Day, _) => "substr(b.created_at, 1, 10)".to_string(),
            };
            let within = ranges_sql(&mut s, "b.created_at", &plan.live);
            let mut filters = String::new();
            if let Some(id) = f.channel_id {
                filters.push_str(&format!(" AND b.channel_id = {}", s.bind(id)));
            }
            if let Some(id) = f.conversation_id {
                filters.push_str(&format!(" AND b.conversation_id = {}", s.bind(id)));
            }
            parts.push(format!(
                "SELECT {period} AS period, {sums} FROM billing_ledger b \
                 WHERE {within}{filters} GROUP BY 1",
                sums = ledger_sums(),
            ));
        }
        if plan.dim.is_some() && !plan.rolled.is_empty() {
            let period = match (f.granularity, backend) {
                (Granularity::Month, _) => "r.period".to_string(),
                (Granularity::Day, DbBackend::Postgres) => {
                    "to_char(to_timestamp(r.hour * 3600) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
                        .to_string()
                }
                (Granularity::Day, _) => "strftime('%Y-%m-%d', r.hour * 3600, 'unixepoch')".into(),
            };
            let runs = ranges_sql(&mut s, "r.hour", &plan.rolled);
            let channel = match f.channel_id {
                Some(id) => format!(" AND r.channel_id = {}", s.bind(id)),
                None => String::new(),
            };
            let sums: Vec<String> = LEDGER_SUMS
                .iter()
                .map(|c| format!("CAST(SUM(r.{c}) AS BIGINT) AS {c}"))
                .collect();
            parts.push(format!(
                "SELECT {period} AS period, {} FROM metrics_rollup_cost r \
                 WHERE {runs}{channel} GROUP BY 1",
                sums.join(", ")
            ));
        }
        let rows = if parts.is_empty() {
            vec![]
        } else {
            let sums: Vec<String> = LEDGER_SUMS
                .iter()
                .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
                .collect();
            let sql = format!(
                "SELECT period, {} FROM ({}) u GROUP BY period ORDER BY period",
                sums.join(", "),
                parts.join(" UNION ALL ")
            );
            s.all(&self.db, &sql).await?
        };
        let mut totals = BillingTotals::default();
        let mut periods = Vec::with_capacity(rows.len());
        for row in rows {
            let t = BillingTotals {
                messages: count(&row, "messages")?,
                free: count(&row, "free")?,
                base_micros: count(&row, "base_micros")?,
                surcharge_micros: count(&row, "surcharge_micros")?,
                total_micros: count(&row, "total_micros")?,
            };
            let period: String = get(&row, "period")?;
            totals.add(&t);
            let start = period_start(&period).ok_or_else(|| {
                DomainError::internal(std::io::Error::other(format!(
                    "unexpected ledger period {period}"
                )))
            })?;
            periods.push(BillingPeriod {
                period,
                start,
                totals: t,
            });
        }
        Ok(BillingReport { totals, periods })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thousandth_message_is_free_and_the_next_one_is_billed() {
        let c = charge(999, 1000, 8_000, false, 10_000);
        assert!(c.free);
        assert_eq!(c.total_micros(), 0);
        let c = charge(1000, 1000, 8_000, false, 10_000);
        assert!(!c.free);
        assert_eq!(c.total_micros(), 8_000);
    }

    #[test]
    fn the_surcharge_applies_beyond_the_billing_window_even_when_free() {
        let c = charge(0, 1000, 5_000, true, 10_000);
        assert!(c.free);
        assert_eq!(c.total_micros(), 10_000);
        assert_eq!(
            charge(5000, 1000, 5_000, true, 10_000).total_micros(),
            15_000
        );
    }

    #[test]
    fn periods_are_utc_months() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(period(at), "2026-12");
        assert_eq!(
            period_start("2026-12"),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).single()
        );
        assert_eq!(
            period_start("2026-12-31"),
            Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).single()
        );
    }
}
