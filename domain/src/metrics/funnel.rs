//! The conversion funnel and marking a conversation converted (paid).
//!
//! **Layers** of the cohort (conversations created in the range):
//! 1. *opened*: every conversation;
//! 2. *first response*: `first_response_at` set;
//! 3. *resolved*: `resolved_at` set;
//! 4. *converted*: `converted_at` set (see [`Domain::mark_converted`]).
//!
//! Each layer's *rate* is its count ÷ opened, its *step rate* its count ÷ the
//! layer above. The same is computed for the previous equal period
//! (`[from − (to − from), from)`); a layer **alerts** when it dropped more
//! than 15 % relative to then: for *opened* the count itself, for the others
//! the step rate (`step / previous step − 1 < −0.15`).

use chrono::{DateTime, Utc};
use entity::conversation;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;

use super::sql::{Sql, count, count_if};
use super::{MetricsQuery, filter_sql, ratio};
use crate::audit::{self, Change};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// A layer alerts when it drops more than this against the previous period.
pub const DROP_ALERT: f64 = 0.15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunnelStage {
    Opened,
    FirstResponse,
    Resolved,
    Converted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunnelLayer {
    pub stage: FunnelStage,
    pub count: i64,
    pub previous_count: i64,
    /// Count ÷ opened.
    pub rate: Option<f64>,
    /// Count ÷ the layer above (opened: None).
    pub step_rate: Option<f64>,
    pub previous_step_rate: Option<f64>,
    /// Relative change against the previous period (count for opened, step
    /// rate for the others); None when the previous value is zero/absent.
    pub change: Option<f64>,
    pub alert: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Funnel {
    pub previous_from: DateTime<Utc>,
    pub previous_to: DateTime<Utc>,
    pub layers: Vec<FunnelLayer>,
    /// Sum of `conversion_amount_micros` of the converted conversations.
    pub converted_amount_micros: i64,
    pub previous_converted_amount_micros: i64,
}

/// Builds the layers from the counts of both periods.
pub fn layers(current: [i64; 4], previous: [i64; 4]) -> Vec<FunnelLayer> {
    use FunnelStage::*;
    [Opened, FirstResponse, Resolved, Converted]
        .into_iter()
        .enumerate()
        .map(|(i, stage)| {
            let step = |v: &[i64; 4]| (i > 0).then(|| ratio(v[i], v[i - 1])).flatten();
            let (step_rate, previous_step_rate) = (step(&current), step(&previous));
            let change = if i == 0 {
                ratio(current[0] - previous[0], previous[0])
            } else {
                match (step_rate, previous_step_rate) {
                    (Some(now), Some(before)) if before > 0.0 => Some(now / before - 1.0),
                    (None, Some(before)) if before > 0.0 => Some(-1.0),
                    _ => None,
                }
            };
            FunnelLayer {
                stage,
                count: current[i],
                previous_count: previous[i],
                rate: ratio(current[i], current[0]),
                step_rate,
                previous_step_rate,
                change,
                alert: change.is_some_and(|c| c < -DROP_ALERT),
            }
        })
        .collect()
}

impl Domain {
    /// The funnel of the range against the previous equal period.
    pub async fn funnel(&self, actor: &Actor, q: &MetricsQuery) -> Result<Funnel> {
        actor.require(Capability::ReadMetrics)?;
        let prev = q.previous();
        let mut s = Sql::new(self.db.get_database_backend());
        let (pfrom, from, to) = (s.bind(prev.from), s.bind(q.from), s.bind(q.to));
        let filters = filter_sql(&mut s, &q.filters);
        let mut cols = vec![];
        for (period, cond) in [
            ("cur", format!("c.created_at >= {from}")),
            ("prev", format!("c.created_at < {from}")),
        ] {
            cols.push(format!("{} AS {period}_opened", count_if(&cond)));
            for (name, col) in [
                ("responded", "first_response_at"),
                ("resolved", "resolved_at"),
                ("converted", "converted_at"),
            ] {
                cols.push(format!(
                    "{} AS {period}_{name}",
                    count_if(&format!("{cond} AND c.{col} IS NOT NULL"))
                ));
            }
            cols.push(format!(
                "CAST(COALESCE(SUM(CASE WHEN {cond} AND c.converted_at IS NOT NULL \
                 THEN COALESCE(c.conversion_amount_micros, 0) ELSE 0 END), 0) AS BIGINT) \
                 AS {period}_amount"
            ));
        }
        let sql = format!(
            "SELECT {} FROM conversations c \
             WHERE c.created_at >= {pfrom} AND c.created_at < {to}{filters}",
            cols.join(", ")
        );
        let rows = s.all(&self.read, &sql).await?;
        let mut current = [0i64; 4];
        let mut previous = [0i64; 4];
        let (mut amount, mut previous_amount) = (0, 0);
        if let Some(row) = rows.first() {
            for (i, name) in ["opened", "responded", "resolved", "converted"]
                .iter()
                .enumerate()
            {
                current[i] = count(row, &format!("cur_{name}"))?;
                previous[i] = count(row, &format!("prev_{name}"))?;
            }
            amount = count(row, "cur_amount")?;
            previous_amount = count(row, "prev_amount")?;
        }
        Ok(Funnel {
            previous_from: prev.from,
            previous_to: prev.to,
            layers: layers(current, previous),
            converted_amount_micros: amount,
            previous_converted_amount_micros: previous_amount,
        })
    }

    /// Marks a conversation converted (paid), with the amount in micro-units
    /// of the shop's currency, at `at` (default now). Editor/Admin; audited.
    /// Marking it again replaces the time and amount.
    pub async fn mark_converted(
        &self,
        actor: &Actor,
        id: i64,
        amount_micros: Option<i64>,
        at: Option<DateTime<Utc>>,
    ) -> Result<conversation::Model> {
        actor.require(Capability::ManageConversations)?;
        if amount_micros.is_some_and(|a| a < 0) {
            return Err(DomainError::invalid("amount", "must not be negative"));
        }
        let now = self.clock.now();
        let at = at.unwrap_or(now);
        if at > now {
            return Err(DomainError::invalid(
                "convertedAt",
                "must not be in the future",
            ));
        }
        let txn = self.db.begin().await?;
        let before = conversation::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", id))?;
        conversation::Entity::update_many()
            .col_expr(conversation::Column::ConvertedAt, Expr::value(at))
            .col_expr(
                conversation::Column::ConversionAmountMicros,
                Expr::value(amount_micros),
            )
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        let state = |c: Option<DateTime<Utc>>, a: Option<i64>| json!({"convertedAt": c, "conversionAmountMicros": a});
        audit::record(
            &txn,
            actor,
            now,
            Change::new("conversation.converted", "conversation", id)
                .before(&state(before.converted_at, before.conversion_amount_micros))
                .after(&state(Some(at), amount_micros)),
        )
        .await?;
        let after = conversation::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", id))?;
        txn.commit().await?;
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_rate_falling_more_than_15_percent_alerts() {
        // Resolved: 80/100 before, 60/100 now → −25 %; converted 40/80 → 30/60 = 0 %.
        let l = layers([100, 100, 60, 30], [100, 100, 80, 40]);
        assert!(!l[0].alert && !l[1].alert);
        assert!(l[2].alert);
        assert_eq!(l[2].change, Some(0.6 / 0.8 - 1.0));
        assert!(!l[3].alert);
        assert_eq!(l[3].rate, Some(0.3));
    }

    #[test]
    fn fewer_conversations_opened_alerts_on_the_count() {
        let l = layers([84, 84, 84, 0], [100, 100, 100, 0]);
        assert!(l[0].alert);
        assert_eq!(l[0].change, Some(-0.16));
        let l = layers([85, 85, 85, 0], [100, 100, 100, 0]);
        assert!(!l[0].alert);
    }
}
