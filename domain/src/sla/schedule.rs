//! Which SLA levels a conversation has reached and when it reaches the next
//! one. The clocks store that next instant (`sla_next_at`) whenever they
//! start, pause, resume or move, and the sweep after deciding, so a tick
//! reads only `WHERE sla_next_at <= now` through an index instead of every
//! running clock.
//!
//! Pure: no database, no wall clock.

use chrono::{DateTime, Duration, Utc};
use entity::{SlaKind, SlaLevel, conversation};

use super::policy::{Effective, is_important};
use crate::assignment::ACTIVE;

/// A clock of a conversation that runs now: its kind, due time and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    pub kind: SlaKind,
    pub due: DateTime<Utc>,
    pub target: Duration,
}

/// The clocks that run on `c` (none while resolved or paused).
pub fn running(c: &conversation::Model, eff: &Effective) -> Vec<Running> {
    if !ACTIVE.contains(&c.status) || c.resolved_at.is_some() || c.sla_paused_at.is_some() {
        return vec![];
    }
    let unanswered = c.first_response_at.is_none();
    let mut clocks = vec![];
    if let (true, Some(due)) = (unanswered, c.first_response_due_at) {
        clocks.push(Running {
            kind: SlaKind::FirstResponse,
            due,
            target: eff.first_response,
        });
    }
    if let Some(due) = c.resolution_due_at {
        clocks.push(Running {
            kind: SlaKind::Resolution,
            due,
            target: eff.resolution,
        });
    }
    if let (true, true, Some(due)) = (
        unanswered,
        is_important(c.priority),
        c.important_wait_due_at,
    ) {
        clocks.push(Running {
            kind: SlaKind::ImportantWait,
            due,
            target: super::IMPORTANT_WAIT,
        });
    }
    clocks
}

/// The levels of a clock, in the order they are claimed (the same order on
/// every instance, so two of them wait for each other instead of deadlocking).
pub fn levels(kind: SlaKind) -> &'static [SlaLevel] {
    match kind {
        SlaKind::ImportantWait => &[SlaLevel::Alert],
        SlaKind::FirstResponse | SlaKind::Resolution => {
            &[SlaLevel::Warning, SlaLevel::Escalation, SlaLevel::Breach]
        }
    }
}

/// The instant `level` of `clock` is reached, seen from `now` (`now` itself
/// when already reached). The warning comes when the business time left is
/// down to the policy's lead (20 % of the target by default).
pub fn reached_at(
    eff: &Effective,
    clock: &Running,
    level: SlaLevel,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let at = match level {
        SlaLevel::Breach | SlaLevel::Alert => clock.due,
        SlaLevel::Warning | SlaLevel::Escalation => {
            let left = eff.calendar.between(now, clock.due);
            let lead = eff.warning_lead(clock.target);
            if left <= lead {
                now
            } else {
                eff.calendar.add(now, left - lead)
            }
        }
    };
    at.max(now)
}

/// What the sweep does with a conversation at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Levels reached and not yet recorded: (clock, level).
    pub fire: Vec<(Running, SlaLevel)>,
    /// The earliest level still ahead; `None` when nothing is left.
    pub next_at: Option<DateTime<Utc>>,
}

/// The plan of `c` at `now`; `recorded` tells the levels already recorded in
/// the clock's current cycle.
pub fn plan(
    c: &conversation::Model,
    eff: &Effective,
    now: DateTime<Utc>,
    recorded: impl Fn(SlaKind, SlaLevel) -> bool,
) -> Plan {
    let mut out = Plan::default();
    for clock in running(c, eff) {
        for &level in levels(clock.kind) {
            if recorded(clock.kind, level) {
                continue;
            }
            let at = reached_at(eff, &clock, level, now);
            if at <= now {
                out.fire.push((clock, level));
            } else {
                out.next_at = Some(out.next_at.map_or(at, |n| n.min(at)));
            }
        }
    }
    out
}

/// The next check to store when a clock starts, pauses, resumes or moves:
/// the earliest level not reached yet, or `now` when one is (recorded levels
/// are not known here; the sweep skips them and stores the real next check).
pub fn next_check(
    c: &conversation::Model,
    eff: &Effective,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let p = plan(c, eff, now, |_, _| false);
    if p.fire.is_empty() {
        p.next_at
    } else {
        Some(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::Calendar;
    use chrono::TimeZone;
    use entity::{ConversationStatus, Priority};

    fn eff(calendar: Calendar) -> Effective {
        Effective {
            policy_id: None,
            name: "Test".into(),
            first_response: Duration::minutes(10),
            resolution: Duration::hours(24),
            warn_percent: 80,
            pause_when_pending: true,
            escalation: super::super::policy::Escalation {
                kind: entity::EscalationKind::Hierarchical,
                to_user_id: None,
                to_department_id: None,
            },
            notify_customer_on_breach: false,
            calendar,
        }
    }

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, h, m, 0).unwrap()
    }

    fn conversation(priority: Priority) -> conversation::Model {
        let start = t(10, 0);
        conversation::Model {
            id: 1,
            channel_id: 1,
            contact_id: 1,
            status: ConversationStatus::Open,
            priority,
            topic: None,
            language: None,
            department_id: None,
            assignee_id: None,
            lock_holder_id: None,
            lock_acquired_at: None,
            lock_last_activity_at: None,
            lock_expires_at: None,
            sla_policy_id: None,
            first_response_due_at: Some(start + Duration::minutes(10)),
            resolution_due_at: Some(start + Duration::hours(24)),
            sla_paused_at: None,
            important_wait_due_at: Some(start + Duration::minutes(5)),
            sla_next_at: None,
            escalation_level: 0,
            transfer_count: 0,
            reopen_count: 0,
            queued_at: Some(start),
            assigned_at: None,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            last_message_at: Some(start),
            last_inbound_at: Some(start),
            csat: None,
            nps: None,
            converted_at: None,
            conversion_amount_micros: None,
            archived_at: None,
            created_at: start,
            updated_at: start,
        }
    }

    #[test]
    fn the_next_check_is_the_warning_then_the_breach() {
        let e = eff(Calendar::always());
        let c = conversation(Priority::Normal);
        // 80 % of 10 minutes.
        assert_eq!(next_check(&c, &e, t(10, 0)), Some(t(10, 8)));
        let p = plan(&c, &e, t(10, 8), |_, _| false);
        assert_eq!(
            p.fire.iter().map(|(r, l)| (r.kind, *l)).collect::<Vec<_>>(),
            vec![
                (SlaKind::FirstResponse, SlaLevel::Warning),
                (SlaKind::FirstResponse, SlaLevel::Escalation)
            ]
        );
        assert_eq!(p.next_at, Some(t(10, 10)));
        // Warned: next is the breach; breached too: the resolution warning.
        let warned = |_: SlaKind, l: SlaLevel| l != SlaLevel::Breach;
        let p = plan(&c, &e, t(10, 9), |k, l| {
            k == SlaKind::FirstResponse && warned(k, l)
        });
        assert!(p.fire.is_empty());
        assert_eq!(p.next_at, Some(t(10, 10)));
        let p = plan(&c, &e, t(10, 11), |k, _| k == SlaKind::FirstResponse);
        assert_eq!(p.next_at, Some(t(10, 0) + Duration::minutes(24 * 48)));
    }

    #[test]
    fn an_important_conversation_is_checked_at_its_five_minutes() {
        let e = eff(Calendar::always());
        let c = conversation(Priority::High);
        assert_eq!(next_check(&c, &e, t(10, 0)), Some(t(10, 5)));
        let p = plan(&c, &e, t(10, 5), |_, _| false);
        assert_eq!(p.fire.len(), 1);
        assert_eq!(p.fire[0].1, SlaLevel::Alert);
        assert_eq!(p.next_at, Some(t(10, 8)));
    }

    #[test]
    fn the_warning_waits_for_business_time() {
        let day = serde_json::json!([["09:00", "18:00"]]);
        let office = Calendar::from_stored(
            "UTC",
            &serde_json::json!({"mon": day, "tue": day, "wed": day, "thu": day, "fri": day}),
            [],
        )
        .unwrap();
        let e = eff(office);
        let mut c = conversation(Priority::Normal);
        // Wednesday 17:55: 5 minutes today, 5 tomorrow; 80 % is reached at 09:03.
        c.first_response_due_at = Some(Utc.with_ymd_and_hms(2026, 12, 3, 9, 5, 0).unwrap());
        c.resolution_due_at = None;
        assert_eq!(
            next_check(&c, &e, t(17, 55)),
            Some(Utc.with_ymd_and_hms(2026, 12, 3, 9, 3, 0).unwrap())
        );
    }

    #[test]
    fn paused_or_resolved_clocks_need_no_check() {
        let e = eff(Calendar::always());
        let mut c = conversation(Priority::High);
        c.sla_paused_at = Some(t(10, 1));
        assert_eq!(next_check(&c, &e, t(10, 2)), None);
        c.sla_paused_at = None;
        c.status = ConversationStatus::Resolved;
        c.resolved_at = Some(t(10, 2));
        assert_eq!(next_check(&c, &e, t(10, 3)), None);
    }
}
