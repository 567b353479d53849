//! Time-of-day analysis and the staffing suggestion.
//!
//! - **Volume by hour of day / weekday**: cohort conversations by the local
//!   hour (0–23) and ISO weekday (1 = Monday … 7 = Sunday) of `created_at`
//!   in the query's time zone.
//! - **Peak hours**: the 3 local hours of day with the most conversations
//!   created in the 7 days ending at the range's end (ties: earlier hour).
//! - **Staffing suggestion**, per hour of day: arrivals per hour = that
//!   hour's conversations ÷ days in the range; handle time = mean of the
//!   whole milliseconds from `assigned_at` (or `created_at`) to
//!   `resolved_at` of the cohort's resolved, assigned conversations
//!   ([`HANDLED`], [`handle_ms`]), in seconds. Erlang C gives the fewest
//!   parallel servers whose average wait is within the first-response
//!   target; an agent serving `concurrency` chats at once counts for that
//!   many servers.
//!
//! Volumes and handle time come from `metrics_rollup` for the rolled hours
//! (volumes only when the zone's offset is whole hours), live for the rest.

use chrono::Duration;
use sea_orm::DbBackend;

use super::rollup::{ranges_sql, sum_if};
use super::sql::{Sql, count, count_if};
use super::{MetricsQuery, filter_sql, hour_local_time, local_time, ratio, round_ms};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// The cohort's conversations with a handle time: resolved and assigned.
pub(crate) const HANDLED: &str = "c.resolved_at IS NOT NULL AND c.assignee_id IS NOT NULL";

/// Handle time of the conversation alias `c` in whole milliseconds.
pub(crate) fn handle_ms(s: &Sql) -> String {
    s.ms_between("COALESCE(c.assigned_at, c.created_at)", "c.resolved_at")
}

#[derive(Debug, Clone, PartialEq)]
pub struct HourStaffing {
    pub hour: u32,
    pub conversations: i64,
    pub arrivals_per_hour: f64,
    /// None when there is no handle time to size with.
    pub agents: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimeOfDay {
    /// 24 entries, hour 0 first.
    pub by_hour: Vec<i64>,
    /// 7 entries, Monday first.
    pub by_weekday: Vec<i64>,
    /// Up to 3 (hour, conversations), busiest first.
    pub peak_hours: Vec<(u32, i64)>,
    pub handle_mean_secs: Option<f64>,
    pub frt_target_secs: f64,
    pub concurrency: u32,
    pub staffing: Vec<HourStaffing>,
}

/// The fewest servers for `erlangs` of load (arrival rate × handle time)
/// whose Erlang C average speed of answer is within `target_secs`.
pub fn erlang_c_servers(erlangs: f64, handle_secs: f64, target_secs: f64) -> u32 {
    if erlangs <= 0.0 || handle_secs <= 0.0 {
        return 0;
    }
    // Erlang B by recursion (stable for large loads), then C from B.
    let mut b = 1.0;
    let mut n: u32 = 0;
    loop {
        n += 1;
        let nf = f64::from(n);
        b = erlangs * b / (nf + erlangs * b);
        if nf <= erlangs {
            continue;
        }
        let c = nf * b / (nf - erlangs * (1.0 - b));
        let asa = c * handle_secs / (nf - erlangs);
        if asa <= target_secs || n >= 100_000 {
            return n;
        }
    }
}

impl Domain {
    pub async fn time_of_day(
        &self,
        actor: &Actor,
        q: &MetricsQuery,
        frt_target_secs: f64,
        concurrency: u32,
    ) -> Result<TimeOfDay> {
        actor.require(Capability::ReadMetrics)?;
        if frt_target_secs <= 0.0 {
            return Err(DomainError::invalid("frtTargetSeconds", "must be positive"));
        }
        if concurrency == 0 {
            return Err(DomainError::invalid("concurrency", "must be at least 1"));
        }
        let mut by_hour = vec![0i64; 24];
        let mut by_weekday = vec![0i64; 7];
        let week = q.with_range(q.to - Duration::days(7), q.to);
        let (range_rows, week_rows, handle_mean_secs) = tokio::try_join!(
            self.hour_weekday(q),
            self.hour_weekday(&week),
            self.handle_time(q),
        )?;
        for row in range_rows {
            let (h, d, n) = (count(&row, "h")?, count(&row, "d")?, count(&row, "n")?);
            if let (Some(hs), Some(ds)) = (
                by_hour.get_mut(h as usize),
                by_weekday.get_mut((d - 1) as usize),
            ) {
                *hs += n;
                *ds += n;
            }
        }
        let mut last_week = [0i64; 24];
        for row in week_rows {
            if let Some(hs) = last_week.get_mut(count(&row, "h")? as usize) {
                *hs += count(&row, "n")?;
            }
        }
        let mut peaks: Vec<(u32, i64)> = last_week
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(h, n)| (h as u32, *n))
            .collect();
        peaks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        peaks.truncate(3);

        let days = q.days();
        let staffing = by_hour
            .iter()
            .enumerate()
            .map(|(h, n)| {
                let arrivals_per_hour = *n as f64 / days;
                let agents = handle_mean_secs.map(|aht| {
                    let erlangs = arrivals_per_hour / 3600.0 * aht;
                    erlang_c_servers(erlangs, aht, frt_target_secs).div_ceil(concurrency)
                });
                HourStaffing {
                    hour: h as u32,
                    conversations: *n,
                    arrivals_per_hour,
                    agents,
                }
            })
            .collect();
        Ok(TimeOfDay {
            by_hour,
            by_weekday,
            peak_hours: peaks,
            handle_mean_secs,
            frt_target_secs,
            concurrency,
            staffing,
        })
    }

    async fn hour_weekday(&self, q: &MetricsQuery) -> Result<Vec<sea_orm::QueryResult>> {
        let backend = self.db.get_database_backend();
        let plan = self.metrics_plan(q, None, &q.filters, true).await?;
        let hour_dow = |local: &str| match backend {
            DbBackend::Postgres => (
                format!("CAST(EXTRACT(HOUR FROM {local}) AS BIGINT)"),
                format!("CAST(EXTRACT(ISODOW FROM {local}) AS BIGINT)"),
            ),
            _ => (
                format!("CAST(strftime('%H', {local}) AS INTEGER)"),
                format!("((CAST(strftime('%w', {local}) AS INTEGER) + 6) % 7 + 1)"),
            ),
        };
        let mut s = Sql::new(backend);
        let mut parts = vec![];
        if !plan.live.is_empty() {
            let local = local_time(&mut s, "c.created_at", q);
            let (hour, dow) = hour_dow(&local);
            let within = ranges_sql(&mut s, "c.created_at", &plan.live);
            let filters = filter_sql(&mut s, &q.filters);
            parts.push(format!(
                "SELECT {hour} AS h, {dow} AS d, CAST(COUNT(*) AS BIGINT) AS n \
                 FROM conversations c WHERE {within}{filters} GROUP BY 1, 2"
            ));
        }
        // A rolled hour lies in one local hour: the zone's offset is whole hours.
        if let Some(w) = plan.rollup_where(&mut s, "r") {
            let local = hour_local_time(&mut s, "r.hour", q);
            let (hour, dow) = hour_dow(&local);
            parts.push(format!(
                "SELECT {hour} AS h, {dow} AS d, CAST(SUM(r.conversations) AS BIGINT) AS n \
                 FROM metrics_rollup r WHERE 1 = 1{w} GROUP BY 1, 2"
            ));
        }
        if parts.is_empty() {
            return Ok(vec![]);
        }
        let sql = format!(
            "SELECT h, d, CAST(SUM(n) AS BIGINT) AS n FROM ({}) u GROUP BY h, d",
            parts.join(" UNION ALL ")
        );
        s.all(&self.read, &sql).await
    }

    async fn handle_time(&self, q: &MetricsQuery) -> Result<Option<f64>> {
        let plan = self.metrics_plan(q, None, &q.filters, false).await?;
        let mut s = Sql::new(self.db.get_database_backend());
        let mut parts = vec![];
        if !plan.live.is_empty() {
            let within = ranges_sql(&mut s, "c.created_at", &plan.live);
            let filters = filter_sql(&mut s, &q.filters);
            parts.push(format!(
                "SELECT {n} AS handle_n, {sum} AS handle_sum FROM conversations c \
                 WHERE {within}{filters}",
                n = count_if(HANDLED),
                sum = sum_if(HANDLED, &handle_ms(&s)),
            ));
        }
        if let Some(w) = plan.rollup_where(&mut s, "r") {
            parts.push(format!(
                "SELECT CAST(SUM(r.handle_n) AS BIGINT) AS handle_n, \
                 CAST(SUM(r.handle_sum) AS BIGINT) AS handle_sum \
                 FROM metrics_rollup r WHERE 1 = 1{w}"
            ));
        }
        if parts.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT CAST(SUM(handle_n) AS BIGINT) AS handle_n, \
             CAST(SUM(handle_sum) AS BIGINT) AS handle_sum FROM ({}) u",
            parts.join(" UNION ALL ")
        );
        let rows = s.all(&self.read, &sql).await?;
        match rows.first() {
            Some(r) => Ok(round_ms(
                ratio(count(r, "handle_sum")?, count(r, "handle_n")?).map(|ms| ms / 1000.0),
            )),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_sizes_half_an_erlang_to_two_servers_for_a_150_s_target() {
        // 2 chats an hour, 15 min each: 0.5 erlang. One server: wait 900 s;
        // two: P(wait) = 0.1, ASA = 0.1 × 900 / 1.5 = 60 s.
        assert_eq!(erlang_c_servers(0.5, 900.0, 150.0), 2);
        assert_eq!(erlang_c_servers(0.5, 900.0, 900.0), 1);
        assert_eq!(erlang_c_servers(0.0, 900.0, 150.0), 0);
    }
}
