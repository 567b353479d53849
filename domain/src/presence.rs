//! Agent presence: online / away / offline, with heartbeat and online duration.
//!
//! # The rules
//! - *Activity* is a `heartbeat`, any authenticated request, or an open
//!   subscription connection (authenticated at `connection_init`, then
//!   [`Domain::touch_presence`] periodically while it stays open). Only staff who handle
//!   conversations (Admin, Editor, Agent) have a presence; Analysts and API
//!   tokens never change it.
//! - Activity brings an **offline** user online. An **away** user stays away
//!   (away is chosen with `heartbeat(status: AWAY)`: "I am here, do not route
//!   to me") until it sends `heartbeat(status: ONLINE)`.
//! - A user is effectively online only while its last activity is within
//!   [`ONLINE_WINDOW`] (5 minutes); the presence sweep marks stale users
//!   offline, closing their interval at their last activity.
//! - Every online or away period is a row of `presence_intervals`, opened on the
//!   transition and closed on the next one. Transitions are conditional
//!   UPDATEs of the `users` row (`… WHERE presence = <what we read>`), so two
//!   requests racing to bring one agent online open one interval, not two.
//! - Online time per day (KPI, target [`ONLINE_TARGET_SECS`] = 6.5 h) is the
//!   sum of the `online` intervals, split at local midnight of a time zone.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use entity::{Presence, presence_interval, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

use crate::audit::{self, Change};
use crate::events::EventPayload;
use crate::permissions::allows;
use crate::{Actor, Capability, Domain, DomainError, Result};

/// Activity within this window means online.
pub const ONLINE_WINDOW: Duration = Duration::minutes(5);
/// The daily online-time target of the source (6.5 h).
pub const ONLINE_TARGET_SECS: i64 = 6 * 3600 + 30 * 60;
/// Requests closer together than this do not rewrite `last_seen_at`.
const ACTIVITY_RESOLUTION: Duration = Duration::seconds(30);
/// The longest range `online_time` reports, in days.
const MAX_REPORT_DAYS: i64 = 93;

/// Online seconds on one local day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineDay {
    pub date: NaiveDate,
    pub online_seconds: i64,
}

/// Whether the user's last activity is older than the online window.
pub fn is_stale(u: &user::Model, now: DateTime<Utc>) -> bool {
    u.last_seen_at.is_none_or(|s| s <= now - ONLINE_WINDOW)
}

/// Whether the user counts as online at `now` (the routing candidates).
pub fn is_online(u: &user::Model, now: DateTime<Utc>) -> bool {
    u.presence == Presence::Online && !is_stale(u, now)
}

/// Where a stale user's open interval ends: its last activity.
fn end_of_activity(u: &user::Model, now: DateTime<Utc>) -> DateTime<Utc> {
    u.last_seen_at.map_or(now, |s| s.min(now))
}

fn stale_guard(u: &user::Model, now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(user::Column::Presence.eq(u.presence))
        .add(
            Condition::any()
                .add(user::Column::LastSeenAt.is_null())
                .add(user::Column::LastSeenAt.lte(now - ONLINE_WINDOW)),
        )
}

async fn close_intervals(db: &impl ConnectionTrait, user_id: i64, at: DateTime<Utc>) -> Result<()> {
    // An interval that would end before it started is noise: drop it.
    presence_interval::Entity::delete_many()
        .filter(presence_interval::Column::UserId.eq(user_id))
        .filter(presence_interval::Column::EndedAt.is_null())
        .filter(presence_interval::Column::StartedAt.gte(at))
        .exec(db)
        .await?;
    presence_interval::Entity::update_many()
        .col_expr(presence_interval::Column::EndedAt, Expr::value(at))
        .filter(presence_interval::Column::UserId.eq(user_id))
        .filter(presence_interval::Column::EndedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// One presence change to apply atomically.
struct Transition<'a> {
    to: Presence,
    /// The new `last_seen_at`, when the change comes with activity.
    seen: Option<DateTime<Utc>>,
    /// Where the current interval ends.
    close_at: DateTime<Utc>,
    /// The row must still match this (what we read), or nothing happens.
    guard: Condition,
    /// Audited when a person chose the change.
    by: Option<&'a Actor>,
}

impl Domain {
    /// Applies `t` in one transaction; false when the row changed meanwhile.
    async fn transition(&self, u: &user::Model, t: Transition<'_>) -> Result<bool> {
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let mut update = user::Entity::update_many()
            .col_expr(user::Column::Presence, Expr::value(t.to))
            .filter(user::Column::Id.eq(u.id))
            .filter(t.guard);
        if let Some(seen) = t.seen {
            update = update.col_expr(user::Column::LastSeenAt, Expr::value(seen));
        }
        if update.exec(&txn).await?.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        close_intervals(&txn, u.id, t.close_at).await?;
        if t.to != Presence::Offline {
            presence_interval::ActiveModel {
                user_id: Set(u.id),
                status: Set(t.to),
                started_at: Set(t.seen.unwrap_or(now)),
                ended_at: Set(None),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
        }
        if let Some(actor) = t.by {
            audit::record(
                &txn,
                actor,
                now,
                Change::new("staff.presence", "user", u.id)
                    .before(&serde_json::json!({ "presence": u.presence }))
                    .after(&serde_json::json!({ "presence": t.to })),
            )
            .await?;
        }
        txn.commit().await?;
        self.emit_presence(u.id, t.to).await;
        Ok(true)
    }

    async fn emit_presence(&self, user_id: i64, presence: Presence) {
        let department_ids = self.department_ids_of(user_id).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, user_id, "could not read departments for a presence event");
            vec![]
        });
        self.emit(EventPayload::AgentPresenceChanged {
            user_id,
            presence,
            department_ids,
        });
    }

    /// The caller's heartbeat: records activity and, with `status`, sets its
    /// presence (ONLINE, AWAY or OFFLINE). Returns the updated user.
    pub async fn heartbeat(&self, actor: &Actor, status: Option<Presence>) -> Result<user::Model> {
        actor.require(Capability::ReportPresence)?;
        let user_id = actor
            .user_id()
            .ok_or_else(|| DomainError::forbidden("presence belongs to staff users"))?;
        for _ in 0..3 {
            let u = self.user_row(user_id).await?;
            let now = self.clock.now();
            let stale = is_stale(&u, now);
            let to = status.unwrap_or(match u.presence {
                Presence::Offline => Presence::Online,
                other => other,
            });
            if to == u.presence && !stale {
                user::Entity::update_many()
                    .col_expr(user::Column::LastSeenAt, Expr::value(now))
                    .filter(user::Column::Id.eq(user_id))
                    .exec(&self.db)
                    .await?;
                return self.user_row(user_id).await;
            }
            let (guard, close_at) = if stale {
                (stale_guard(&u, now), end_of_activity(&u, now))
            } else {
                (
                    Condition::all().add(user::Column::Presence.eq(u.presence)),
                    now,
                )
            };
            let t = Transition {
                to,
                seen: Some(now),
                close_at,
                guard,
                by: (to != u.presence).then_some(actor),
            };
            if self.transition(&u, t).await? {
                return self.user_row(user_id).await;
            }
        }
        Err(DomainError::Conflict(
            "presence changed concurrently: try again".into(),
        ))
    }

    /// Activity by an authenticated staff user (any request). Best effort: a
    /// failure is logged and never fails the request.
    pub async fn record_activity(&self, u: &user::Model) {
        if !u.is_active || !allows(u.role, Capability::ReportPresence) {
            return;
        }
        if let Err(e) = self.try_record_activity(u).await {
            tracing::warn!(error = %e, user_id = u.id, "could not record activity");
        }
    }

    async fn try_record_activity(&self, u: &user::Model) -> Result<()> {
        let now = self.clock.now();
        if u.presence == Presence::Offline {
            let t = Transition {
                to: Presence::Online,
                seen: Some(now),
                close_at: now,
                guard: Condition::all().add(user::Column::Presence.eq(Presence::Offline)),
                by: None,
            };
            self.transition(u, t).await?;
        } else if is_stale(u, now) {
            // Back after a gap the sweep has not seen yet: the gap is not online time.
            let t = Transition {
                to: u.presence,
                seen: Some(now),
                close_at: end_of_activity(u, now),
                guard: stale_guard(u, now),
                by: None,
            };
            self.transition(u, t).await?;
        } else if u
            .last_seen_at
            .is_none_or(|s| s <= now - ACTIVITY_RESOLUTION)
        {
            user::Entity::update_many()
                .col_expr(user::Column::LastSeenAt, Expr::value(now))
                .filter(user::Column::Id.eq(u.id))
                .filter(user::Column::LastSeenAt.lt(now))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Activity by a staff user without a request, e.g. an open subscription
    /// connection (the WebSocket layer calls this periodically).
    pub async fn touch_presence(&self, user_id: i64) -> Result<()> {
        let u = self.user_row(user_id).await?;
        self.record_activity(&u).await;
        Ok(())
    }

    /// The presence sweep: marks offline everyone whose last activity is older
    /// than [`ONLINE_WINDOW`], closing their interval at that last activity.
    /// Returns the users it marked offline.
    pub async fn expire_presence(&self) -> Result<Vec<i64>> {
        let now = self.clock.now();
        let stale = user::Entity::find()
            .filter(user::Column::Presence.ne(Presence::Offline))
            .filter(
                Condition::any()
                    .add(user::Column::LastSeenAt.is_null())
                    .add(user::Column::LastSeenAt.lte(now - ONLINE_WINDOW)),
            )
            .all(&self.db)
            .await?;
        let mut offline = vec![];
        for u in stale {
            let t = Transition {
                to: Presence::Offline,
                seen: None,
                close_at: end_of_activity(&u, now),
                guard: stale_guard(&u, now),
                by: None,
            };
            if self.transition(&u, t).await? {
                offline.push(u.id);
            }
        }
        Ok(offline)
    }

    /// Online seconds per local day of `time_zone` (IANA name) in `[from, to)`.
    /// The user itself may read its own; others need `ReadMetrics`.
    pub async fn online_time(
        &self,
        actor: &Actor,
        user_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        time_zone: &str,
    ) -> Result<Vec<OnlineDay>> {
        if actor.user_id() != Some(user_id) {
            actor.require(Capability::ReadMetrics)?;
        }
        let tz: Tz = time_zone
            .parse()
            .map_err(|_| DomainError::invalid("timeZone", "is not an IANA time zone"))?;
        if to <= from {
            return Err(DomainError::invalid("to", "must be after from"));
        }
        if to - from > Duration::days(MAX_REPORT_DAYS) {
            return Err(DomainError::invalid(
                "to",
                format!("a report covers at most {MAX_REPORT_DAYS} days"),
            ));
        }
        let u = self.user_row(user_id).await?;
        let now = self.clock.now();
        let intervals = presence_interval::Entity::find()
            .filter(presence_interval::Column::UserId.eq(user_id))
            .filter(presence_interval::Column::Status.eq(Presence::Online))
            .filter(presence_interval::Column::StartedAt.lt(to))
            .filter(
                Condition::any()
                    .add(presence_interval::Column::EndedAt.is_null())
                    .add(presence_interval::Column::EndedAt.gt(from)),
            )
            .order_by_asc(presence_interval::Column::StartedAt)
            .all(&self.db)
            .await?;
        // An open interval runs to now while the user is active, else to its
        // last activity (the sweep will close it there).
        let open_end = if is_stale(&u, now) {
            end_of_activity(&u, now)
        } else {
            now
        };
        let spans = intervals
            .iter()
            .map(|i| (i.started_at, i.ended_at.unwrap_or(open_end)));
        Ok(split_by_day(spans, from, to, &tz))
    }

    async fn user_row(&self, id: i64) -> Result<user::Model> {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("user", id))
    }
}

/// The next local midnight after `at`, in UTC.
fn next_midnight(at: DateTime<Utc>, tz: &Tz) -> DateTime<Utc> {
    let day = at.with_timezone(tz).date_naive();
    let fallback = at + Duration::days(1);
    let Some(next) = day.succ_opt() else {
        return fallback;
    };
    // Where midnight does not exist (a DST gap), the day starts at the earliest valid time.
    (0..4)
        .find_map(|h| {
            next.and_hms_opt(h, 0, 0)
                .and_then(|t| tz.from_local_datetime(&t).earliest())
        })
        .map_or(fallback, |t| t.with_timezone(&Utc))
}

/// Sums `spans` clipped to `[from, to)` per local day, to the nearest second
/// (summed in milliseconds first: a span split at midnight loses nothing to
/// truncation); every day of the range appears, with zero when nothing was
/// online.
pub fn split_by_day(
    spans: impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: &Tz,
) -> Vec<OnlineDay> {
    let mut days: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let mut cursor = from;
    while cursor < to {
        days.insert(cursor.with_timezone(tz).date_naive(), 0);
        cursor = next_midnight(cursor, tz);
    }
    for (start, end) in spans {
        let mut s = start.max(from);
        let e = end.min(to);
        while s < e {
            let chunk_end = next_midnight(s, tz).min(e);
            *days.entry(s.with_timezone(tz).date_naive()).or_default() +=
                (chunk_end - s).num_milliseconds();
            s = chunk_end;
        }
    }
    days.into_iter()
        .map(|(date, ms)| OnlineDay {
            date,
            online_seconds: (ms + 500) / 1000,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_span_across_midnight_keeps_its_fractions_of_a_second() {
        let spans = [(
            at("2026-12-07T23:59:59.600Z"),
            at("2026-12-08T00:01:59.600Z"),
        )];
        let days = split_by_day(
            spans.into_iter(),
            at("2026-12-07T12:00:00Z"),
            at("2026-12-08T12:00:00Z"),
            &Tz::UTC,
        );
        let seconds: Vec<i64> = days.iter().map(|d| d.online_seconds).collect();
        assert_eq!(seconds, vec![0, 120]);
    }

    #[test]
    fn online_time_is_split_at_local_midnight() {
        let tz: Tz = "Europe/Rome".parse().unwrap();
        // 22:00–01:00 UTC is 23:00–02:00 in Rome (winter): 1 h, then 2 h.
        let spans = [(at("2026-01-10T22:00:00Z"), at("2026-01-11T01:00:00Z"))];
        let days = split_by_day(
            spans.into_iter(),
            at("2026-01-09T23:00:00Z"),
            at("2026-01-11T23:00:00Z"),
            &tz,
        );
        let got: Vec<(String, i64)> = days
            .iter()
            .map(|d| (d.date.to_string(), d.online_seconds))
            .collect();
        assert_eq!(
            got,
            vec![("2026-01-10".into(), 3600), ("2026-01-11".into(), 7200)]
        );
    }

    #[test]
    fn spans_are_clipped_to_the_range() {
        let tz: Tz = "UTC".parse().unwrap();
        let spans = [(at("2026-01-09T20:00:00Z"), at("2026-01-10T02:00:00Z"))];
        let days = split_by_day(
            spans.into_iter(),
            at("2026-01-10T00:00:00Z"),
            at("2026-01-11T00:00:00Z"),
            &tz,
        );
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].online_seconds, 2 * 3600);
    }
}
