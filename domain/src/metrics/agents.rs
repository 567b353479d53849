//! Per-agent KPIs, the weekly ranking and the effective interaction ratio.
//!
//! An agent's conversations are the cohort's conversations whose current
//! assignee it is (`assignee_id`), unless a KPI says otherwise.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use entity::user;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::rollup::{Plan, ranges_sql};
use super::sql::{Sql, count, count_if, get};
use super::{Dimension, MetricsFilter, MetricsQuery, filter_sql, ratio, round_ms};
use crate::presence::ONLINE_TARGET_SECS;
use crate::{Actor, Capability, Domain, Result};

/// Resolution rate below this is flagged (SPEC: ideal above 85 %).
pub const RESOLUTION_RATE_FLOOR: f64 = 0.85;
/// Transfer rate above this is flagged for training (15 %).
pub const TRANSFER_RATE_CEILING: f64 = 0.15;
/// Customer rating below this raises an alert (4 stars).
pub const RATING_ALERT_BELOW: f64 = 4.0;
/// Utilisation target band (85–90 %).
pub const UTILISATION_TARGET: (f64, f64) = (0.85, 0.90);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentKpis {
    pub agent_id: i64,
    pub name: Option<String>,
    /// Cohort conversations the agent is the assignee of.
    pub assigned: i64,
    /// Of those, resolved (`resolved_at` set).
    pub resolved: i64,
    /// **Average response speed**: mean seconds from the conversation reaching
    /// the agent (`assigned_at`, or `created_at` when never assigned through
    /// routing) to the first response, over its responded conversations
    /// (negative spans count as zero).
    pub response_mean_secs: Option<f64>,
    /// Distinct cohort conversations the agent handled: assigned to it at any
    /// time (assignment history `to_user_id`) or its current assignee.
    pub handled: i64,
    /// Of those, the ones it transferred to someone else (a `transfer` in
    /// the history with `from_user_id` = the agent).
    pub transferred_out: i64,
    /// **Customer rating**: CSAT answers (1–5) on its conversations and their mean.
    pub rating_answers: i64,
    pub rating_mean: Option<f64>,
    /// **Online duration**: seconds of `online` presence intervals clipped to
    /// the range (an open interval runs until now).
    pub online_secs: f64,
    /// The online target for the range: 6.5 h per day of the range.
    pub online_target_secs: f64,
    /// Seconds in which the agent had at least one conversation assigned and
    /// not yet resolved (`assigned_at` … `resolved_at` or now, of every
    /// conversation it is the assignee of, merged where they overlap and
    /// clipped to the range; not limited to the cohort), with every instant
    /// in whole milliseconds: see [`busy_sql`].
    pub handling_secs: f64,
    /// Characters of message text the agent sent in the range.
    pub agent_characters: i64,
}

impl AgentKpis {
    /// **Resolution rate**: resolved ÷ assigned; flagged under 85 %.
    pub fn resolution_rate(&self) -> Option<f64> {
        ratio(self.resolved, self.assigned)
    }
    pub fn resolution_rate_flag(&self) -> bool {
        self.resolution_rate()
            .is_some_and(|r| r < RESOLUTION_RATE_FLOOR)
    }
    /// **Transfer rate**: transferred out ÷ handled; flagged over 15 %.
    pub fn transfer_rate(&self) -> Option<f64> {
        ratio(self.transferred_out, self.handled)
    }
    pub fn transfer_rate_flag(&self) -> bool {
        self.transfer_rate()
            .is_some_and(|r| r > TRANSFER_RATE_CEILING)
    }
    /// Alert when the mean rating is under 4.
    pub fn rating_alert(&self) -> bool {
        self.rating_mean.is_some_and(|r| r < RATING_ALERT_BELOW)
    }
    /// Whether the online time reaches the 6.5 h/day target.
    pub fn online_meets_target(&self) -> bool {
        self.online_secs >= self.online_target_secs
    }
    /// **Utilisation**: handling time ÷ online time (target 85–90 %).
    pub fn utilisation(&self) -> Option<f64> {
        (self.online_secs > 0.0).then(|| self.handling_secs / self.online_secs)
    }
    /// **Effective interaction ratio**: resolved conversations per 100
    /// characters of agent text.
    pub fn effective_interaction_ratio(&self) -> Option<f64> {
        (self.agent_characters > 0)
            .then(|| self.resolved as f64 * 100.0 / self.agent_characters as f64)
    }
}

/// One agent's place in the weekly comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedAgent {
    pub rank: usize,
    pub kpis: AgentKpis,
    /// Its rank and resolved count in the week before (None: absent then).
    pub previous_rank: Option<usize>,
    pub previous_resolved: Option<i64>,
}

/// **Weekly comparison**: agents of the 7 days ending at the range's end,
/// ranked by resolved conversations (then resolution rate, then faster
/// response), against the 7 days before.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRanking {
    pub week_start: DateTime<Utc>,
    pub week_end: DateTime<Utc>,
    pub agents: Vec<RankedAgent>,
    /// Best minus worst resolved count.
    pub resolved_spread: Option<i64>,
    /// Best minus worst resolution rate.
    pub resolution_rate_spread: Option<f64>,
    /// Slowest minus fastest average response speed.
    pub response_spread_secs: Option<f64>,
}

impl Domain {
    /// The per-agent KPIs of the range, by agent id.
    pub async fn agent_kpis(&self, actor: &Actor, q: &MetricsQuery) -> Result<Vec<AgentKpis>> {
        actor.require(Capability::ReadMetrics)?;
        let now = self.clock.now();
        let only = q.filters.agent_id;
        // The agent filter selects output rows: a conversation transferred
        // away from the agent no longer has it as assignee.
        let f = MetricsFilter {
            agent_id: None,
            ..q.filters.clone()
        };
        let mut agents: BTreeMap<i64, AgentKpis> = BTreeMap::new();
        let target = ONLINE_TARGET_SECS as f64 * q.days();
        let plan = self
            .metrics_plan(q, Some(Dimension::Agent), &f, false)
            .await?;
        let (base, transfers, online, handling, characters) = tokio::try_join!(
            self.core_partials(q, &plan, false, Some(Dimension::Agent), &f),
            self.agent_transfers(&plan, &f),
            self.agent_online(q, now),
            self.agent_handling(&plan, &f, now),
            self.agent_characters(&plan, &f),
        )?;
        for ((_, key), (_, p)) in base {
            let Some(id) = key.and_then(|k| k.parse::<i64>().ok()) else {
                continue;
            };
            let a = slot(&mut agents, id, target);
            a.assigned = p.get("conversations");
            a.resolved = p.get("resolved");
            a.response_mean_secs = p.mean_secs("speed_sum", "responded");
            a.rating_answers = p.get("csat_answers");
            a.rating_mean = ratio(p.get("csat_sum"), p.get("csat_answers"));
        }
        for row in transfers {
            let a = slot(&mut agents, count(&row, "agent")?, target);
            a.handled = count(&row, "handled")?;
            a.transferred_out = count(&row, "transferred")?;
        }
        for row in online {
            let id = count(&row, "agent")?;
            if agents.contains_key(&id) || only == Some(id) {
                slot(&mut agents, id, target).online_secs =
                    round_ms(get(&row, "online")?).unwrap_or(0.0);
            }
        }
        for row in handling {
            slot(&mut agents, count(&row, "agent")?, target).handling_secs =
                count(&row, "busy_ms")? as f64 / 1000.0;
        }
        for row in characters {
            slot(&mut agents, count(&row, "agent")?, target).agent_characters =
                count(&row, "chars")?;
        }
        if let Some(id) = only {
            agents.retain(|k, _| *k == id);
        }
        let ids: Vec<i64> = agents.keys().copied().collect();
        if !ids.is_empty() {
            for u in user::Entity::find()
                .filter(user::Column::Id.is_in(ids))
                .all(&self.read)
                .await?
            {
                if let Some(a) = agents.get_mut(&u.id) {
                    a.name = Some(u.name);
                }
            }
        }
        Ok(agents.into_values().collect())
    }

    /// The weekly comparison ending at `q.to`.
    pub async fn agent_ranking(&self, actor: &Actor, q: &MetricsQuery) -> Result<AgentRanking> {
        let week = q.with_range(q.to - Duration::days(7), q.to);
        let before = week.previous();
        let (mut current, previous) = tokio::try_join!(
            self.agent_kpis(actor, &week),
            self.agent_kpis(actor, &before),
        )?;
        let previous = rank(previous);
        current.retain(|a| a.assigned > 0);
        let ranked = rank(current);
        let spread_i = |v: Vec<i64>| Some(*v.iter().max()? - *v.iter().min()?);
        let spread_f = |v: Vec<f64>| {
            let max = v
                .iter()
                .copied()
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))?;
            let min = v
                .iter()
                .copied()
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x))))?;
            Some(max - min)
        };
        let agents: Vec<RankedAgent> = ranked
            .into_iter()
            .map(|(rank, kpis)| {
                let prev = previous.iter().find(|(_, p)| p.agent_id == kpis.agent_id);
                RankedAgent {
                    rank,
                    previous_rank: prev.filter(|(_, p)| p.assigned > 0).map(|(r, _)| *r),
                    previous_resolved: prev.map(|(_, p)| p.resolved),
                    kpis,
                }
            })
            .collect();
        Ok(AgentRanking {
            week_start: week.from,
            week_end: week.to,
            resolved_spread: spread_i(agents.iter().map(|a| a.kpis.resolved).collect()),
            resolution_rate_spread: spread_f(
                agents
                    .iter()
                    .filter_map(|a| a.kpis.resolution_rate())
                    .collect(),
            ),
            response_spread_secs: spread_f(
                agents
                    .iter()
                    .filter_map(|a| a.kpis.response_mean_secs)
                    .collect(),
            ),
            agents,
        })
    }

    /// Conversations handled and transferred away per agent: the plan's
    /// live intervals from the assignment history, its rolled hours from
    /// `metrics_rollup_handlers` (one row per agent and hour, additive since
    /// a conversation belongs to one hour).
    async fn agent_transfers(
        &self,
        plan: &Plan,
        f: &MetricsFilter,
    ) -> Result<Vec<sea_orm::QueryResult>> {
        let mut s = Sql::new(self.db.get_database_backend());
        let mut parts = vec![];
        if !plan.live.is_empty() {
            let within = ranges_sql(&mut s, "c.created_at", &plan.live);
            let filters = filter_sql(&mut s, f);
            parts.push(format!(
                "SELECT h.agent AS agent, CAST(COUNT(*) AS BIGINT) AS handled, \
                 {transferred} AS transferred FROM (SELECT a.conversation_id AS cid, \
                 a.to_user_id AS agent FROM assignments a JOIN k ON k.id = a.conversation_id \
                 WHERE a.to_user_id IS NOT NULL \
                 UNION SELECT k.id, k.assignee_id FROM k WHERE k.assignee_id IS NOT NULL) h \
                 LEFT JOIN (SELECT DISTINCT a.conversation_id AS cid, a.from_user_id AS agent \
                 FROM assignments a JOIN k ON k.id = a.conversation_id \
                 WHERE a.kind = 'transfer' AND a.from_user_id IS NOT NULL) t \
                 ON t.cid = h.cid AND t.agent = h.agent GROUP BY h.agent",
                transferred = count_if("t.cid IS NOT NULL"),
            ));
            let k = format!(
                "WITH k AS (SELECT c.id, c.assignee_id FROM conversations c \
                 WHERE {within}{filters}) "
            );
            parts[0] = format!("{k}{}", parts[0]);
        }
        if plan.dim.is_some() && !plan.rolled.is_empty() {
            let runs = ranges_sql(&mut s, "r.hour", &plan.rolled);
            parts.push(format!(
                "SELECT r.agent_id AS agent, CAST(SUM(r.handled) AS BIGINT) AS handled, \
                 CAST(SUM(r.transferred) AS BIGINT) AS transferred \
                 FROM metrics_rollup_handlers r WHERE {runs} GROUP BY r.agent_id"
            ));
        }
        self.sum_by_agent(s, parts, &["handled", "transferred"])
            .await
    }

    /// Adds up per-agent parts (`agent` and the `cols`) in one statement.
    async fn sum_by_agent(
        &self,
        s: Sql,
        parts: Vec<String>,
        cols: &[&str],
    ) -> Result<Vec<sea_orm::QueryResult>> {
        if parts.is_empty() {
            return Ok(vec![]);
        }
        let sums: Vec<String> = cols
            .iter()
            .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
            .collect();
        // A part with a WITH clause cannot stand inside UNION ALL on SQLite:
        // each part is its own subquery.
        let parts: Vec<String> = parts
            .iter()
            .map(|p| format!("SELECT * FROM ({p}) p"))
            .collect();
        let sql = format!(
            "SELECT agent, {} FROM ({}) u GROUP BY agent",
            sums.join(", "),
            parts.join(" UNION ALL ")
        );
        s.all(&self.read, &sql).await
    }

    async fn agent_online(
        &self,
        q: &MetricsQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<sea_orm::QueryResult>> {
        let mut s = Sql::new(self.db.get_database_backend());
        let (from, to, now_p) = (s.bind(q.from), s.bind(q.to), s.bind(now));
        let (from_e, to_e) = (s.bind(epoch_of(q.from)), s.bind(epoch_of(q.to)));
        let end = s.least(&s.epoch(&format!("COALESCE(p.ended_at, {now_p})")), &to_e);
        let start = s.greatest(&s.epoch("p.started_at"), &from_e);
        let sql = format!(
            "SELECT p.user_id AS agent, CAST(SUM({end} - {start}) AS DOUBLE PRECISION) AS online \
             FROM presence_intervals p WHERE p.status = 'online' \
             AND p.started_at < {to} AND COALESCE(p.ended_at, {now_p}) > {from} \
             GROUP BY p.user_id"
        );
        s.all(&self.read, &sql).await
    }

    /// Handling time per agent (`busy_ms`): the plan's live intervals each
    /// computed from the conversations, its rolled hours (when the query has
    /// no filter) from `metrics_rollup_busy`; the union of spans clipped to
    /// disjoint intervals adds up.
    async fn agent_handling(
        &self,
        plan: &Plan,
        f: &MetricsFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<sea_orm::QueryResult>> {
        let mut s = Sql::new(self.db.get_database_backend());
        let mut parts = vec![];
        for &(a, b) in &plan.live {
            let (ws, we) = (s.bind(a.timestamp_millis()), s.bind(b.timestamp_millis()));
            let window = format!(
                "SELECT CAST(0 AS BIGINT) AS wid, CAST({ws} AS BIGINT) AS ws, \
                 CAST({we} AS BIGINT) AS we"
            );
            let busy = busy_sql(&mut s, &window, (a, b), now, f);
            parts.push(format!("SELECT agent, busy_ms FROM ({busy}) b"));
        }
        if plan.dim.is_some() && !plan.rolled.is_empty() {
            let runs = ranges_sql(&mut s, "r.hour", &plan.rolled);
            parts.push(format!(
                "SELECT r.agent_id AS agent, CAST(SUM(r.busy_ms) AS BIGINT) AS busy_ms \
                 FROM metrics_rollup_busy r WHERE {runs} GROUP BY r.agent_id"
            ));
        }
        self.sum_by_agent(s, parts, &["busy_ms"]).await
    }

    /// Characters agents sent: messages of the plan's live intervals, and
    /// `metrics_rollup_chars` for its rolled hours (by the hour sent).
    async fn agent_characters(
        &self,
        plan: &Plan,
        f: &MetricsFilter,
    ) -> Result<Vec<sea_orm::QueryResult>> {
        let mut s = Sql::new(self.db.get_database_backend());
        let mut parts = vec![];
        if !plan.live.is_empty() {
            let within = ranges_sql(&mut s, "m.created_at", &plan.live);
            let filters = filter_sql(&mut s, f);
            let join = if filters.is_empty() {
                ""
            } else {
                " JOIN conversations c ON c.id = m.conversation_id"
            };
            parts.push(format!(
                "SELECT m.sender_user_id AS agent, \
                 CAST(COALESCE(SUM(LENGTH(m.body)), 0) AS BIGINT) AS chars \
                 FROM messages m{join} WHERE m.sender_kind = 'agent' \
                 AND m.sender_user_id IS NOT NULL AND {within}{filters} \
                 GROUP BY m.sender_user_id"
            ));
        }
        if plan.dim.is_some() && !plan.rolled.is_empty() {
            let runs = ranges_sql(&mut s, "r.hour", &plan.rolled);
            parts.push(format!(
                "SELECT r.agent_id AS agent, CAST(SUM(r.chars) AS BIGINT) AS chars \
                 FROM metrics_rollup_chars r WHERE {runs} GROUP BY r.agent_id"
            ));
        }
        self.sum_by_agent(s, parts, &["chars"]).await
    }
}

/// Handling time (see [`AgentKpis::handling_secs`]) per agent and window:
/// `windows` selects `wid`, `ws`, `we` (window bounds in epoch
/// milliseconds); the statement returns `agent`, `wid` and `busy_ms`, the
/// milliseconds of the window covered by the union of the agent's spans
/// (gaps and islands). `bounds` enclose every window, so that the
/// `resolved_at` and `assigned_at` indexes apply.
pub(crate) fn busy_sql(
    s: &mut Sql,
    windows: &str,
    bounds: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
    f: &MetricsFilter,
) -> String {
    let (from, to, now_p) = (s.bind(bounds.0), s.bind(bounds.1), s.bind(now));
    let filters = filter_sql(s, f);
    let span_s = s.epoch_ms("c.assigned_at");
    let span_e = s.epoch_ms(&format!("COALESCE(c.resolved_at, {now_p})"));
    let start = s.greatest(&span_s, "w.ws");
    let end = s.least(&span_e, "w.we");
    format!(
        "WITH w AS ({windows}), \
         iv AS (SELECT c.assignee_id AS agent, w.wid AS wid, {start} AS s, {end} AS e \
           FROM conversations c JOIN w ON {span_s} < w.we AND {span_e} > w.ws \
           WHERE c.assignee_id IS NOT NULL AND c.assigned_at IS NOT NULL \
           AND c.assigned_at < {to} \
           AND (c.resolved_at > {from} OR (c.resolved_at IS NULL AND {now_p} > {from})){filters}), \
         o AS (SELECT agent, wid, s, e, MAX(e) OVER (PARTITION BY agent, wid ORDER BY s, e \
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end FROM iv WHERE e > s), \
         g AS (SELECT agent, wid, s, e, SUM(CASE WHEN prev_end IS NULL OR s > prev_end \
           THEN 1 ELSE 0 END) OVER (PARTITION BY agent, wid ORDER BY s, e \
           ROWS UNBOUNDED PRECEDING) AS island FROM o) \
         SELECT agent, wid, CAST(SUM(len) AS BIGINT) AS busy_ms FROM \
         (SELECT agent, wid, island, MAX(e) - MIN(s) AS len FROM g GROUP BY agent, wid, island) x \
         GROUP BY agent, wid"
    )
}

fn slot(agents: &mut BTreeMap<i64, AgentKpis>, id: i64, target: f64) -> &mut AgentKpis {
    agents.entry(id).or_insert_with(|| AgentKpis {
        agent_id: id,
        online_target_secs: target,
        ..Default::default()
    })
}

fn epoch_of(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// Ranks agents: more resolved first, then higher resolution rate, then the
/// faster average response; ties on all three share a rank.
fn rank(mut agents: Vec<AgentKpis>) -> Vec<(usize, AgentKpis)> {
    let key = |a: &AgentKpis| {
        (
            -a.resolved,
            -(a.resolution_rate().unwrap_or(0.0) * 1e6) as i64,
            (a.response_mean_secs.unwrap_or(f64::MAX / 4.0) * 1000.0) as i64,
        )
    };
    agents.sort_by_key(|a| (key(a), a.agent_id));
    let mut out: Vec<(usize, AgentKpis)> = Vec::with_capacity(agents.len());
    for (i, a) in agents.into_iter().enumerate() {
        let r = match out.last() {
            Some((r, prev)) if key(prev) == key(&a) => *r,
            _ => i + 1,
        };
        out.push((r, a));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: i64, assigned: i64, resolved: i64, speed: f64) -> AgentKpis {
        AgentKpis {
            agent_id: id,
            assigned,
            resolved,
            response_mean_secs: Some(speed),
            ..Default::default()
        }
    }

    #[test]
    fn agents_rank_by_resolved_then_rate_then_speed() {
        let ranked = rank(vec![
            agent(1, 10, 5, 30.0),
            agent(2, 5, 5, 30.0),
            agent(3, 5, 5, 20.0),
            agent(4, 20, 9, 10.0),
        ]);
        let order: Vec<(usize, i64)> = ranked.iter().map(|(r, a)| (*r, a.agent_id)).collect();
        assert_eq!(order, vec![(1, 4), (2, 3), (3, 2), (4, 1)]);
    }

    #[test]
    fn flags_follow_the_thresholds() {
        let mut a = agent(1, 100, 84, 10.0);
        a.handled = 100;
        a.transferred_out = 16;
        a.rating_mean = Some(3.9);
        assert!(a.resolution_rate_flag() && a.transfer_rate_flag() && a.rating_alert());
        a.resolved = 85;
        a.transferred_out = 15;
        a.rating_mean = Some(4.0);
        assert!(!a.resolution_rate_flag() && !a.transfer_rate_flag() && !a.rating_alert());
    }
}
