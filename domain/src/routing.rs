//! Automatic routing: the routing worker assigns queued conversations to the
//! best available agent, by the department's strategy.
//!
//! # The queue
//! A conversation is *queued* while it is open or pending and nobody is
//! assigned. The queue is served highest priority first (urgent, high,
//! normal, low), then oldest first (`queued_at`, else `created_at`), then by id.
//! A conversation that nobody fits is skipped, not blocking the ones behind it,
//! and waits until someone frees up, comes online or is added.
//!
//! # Candidates
//! Staff users with role **Agent** who are active, **online** (presence
//! `online` with activity within the last 5 minutes, see [`crate::presence`])
//! and **below capacity**: their open and pending assigned conversations are
//! fewer than their `max_concurrent` (default 3). Editors and Admins are never
//! routed to automatically; they take work with `claim` or `assign`.
//!
//! # Smart strategy (the default)
//! 1. The conversation's *skill keys* are its department's name and its topic,
//!    each trimmed and lower-cased (e.g. department "Logistics" with topic
//!    "Damaged" gives `{"logistics", "damaged"}`).
//! 2. The conversation has a *skill requirement* when at least one active
//!    Agent (online or not) lists one of those keys among its skills: the
//!    team has declared specialists for it.
//! 3. With a requirement, a candidate matches when one of its skills is one of
//!    the keys (membership of the department does not matter). Without one, a
//!    candidate matches when it is a member of the conversation's department,
//!    and any candidate matches a conversation that has no department.
//! 4. Among matching candidates: the least loaded first, then the one idle the
//!    longest (`last_assigned_at` oldest, never assigned first), then the
//!    lowest id.
//!
//! # Round-robin strategy
//! Members of the department who are candidates, in user-id order: the first
//! one after the department's `round_robin_cursor` (the last one picked),
//! wrapping around; skills are ignored, capacity is respected. A conversation
//! without a department is always routed by the smart strategy.
//!
//! # Never twice, never over capacity
//! Choices are made in memory for the whole queue, then written in one
//! transaction: the chosen agents' `users` rows are locked in id order (on
//! PostgreSQL; SQLite has one writer), their loads are counted again under
//! the lock and any choice that would now go over capacity is dropped, and a
//! single UPDATE assigns only the conversations still queued. Several workers
//! in several instances can run this at once: a lost race leaves the
//! conversation to the next round.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::{
    AssignmentKind, Presence, Priority, Role, RoutingStrategy, assignment, conversation,
    department, department_member, user,
};
use sea_orm::sea_query::{Expr, Func, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, Order, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use crate::assignment::{ACTIVE, assignment_state, conversation_updated};
use crate::audit::{self, Change};
use crate::events::{EventPayload, QueueChange};
use crate::presence::ONLINE_WINDOW;
use crate::sql::per_row;
use crate::{Actor, Domain, Result};

/// The most queued conversations one round looks at.
const MAX_SCAN: u64 = 5_000;
/// Rounds of one pass: a round whose choices went stale (another worker
/// assigned meanwhile) is followed by another with fresh loads.
const MAX_ROUNDS: usize = 4;

/// A queued conversation, as routing needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub id: i64,
    pub department_id: Option<i64>,
    pub topic: Option<String>,
}

/// One choice of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub conversation: i64,
    pub agent: i64,
    /// The round-robin department whose cursor moves to `agent`.
    pub round_robin: Option<i64>,
}

/// An agent as routing sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: i64,
    pub skills: BTreeSet<String>,
    pub departments: BTreeSet<i64>,
    pub load: i64,
    pub max: i64,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

impl Candidate {
    pub fn has_room(&self) -> bool {
        self.load < self.max
    }
}

/// The trimmed, lower-cased department name and topic.
pub fn skill_keys(department_name: Option<&str>, topic: Option<&str>) -> BTreeSet<String> {
    [department_name, topic]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether some active agent declares one of `keys` as a skill.
pub fn has_skill_requirement(keys: &BTreeSet<String>, declared: &BTreeSet<String>) -> bool {
    keys.iter().any(|k| declared.contains(k))
}

/// Rule 3 of the smart strategy (capacity is checked separately).
pub fn matches_smart(
    c: &Candidate,
    department_id: Option<i64>,
    keys: &BTreeSet<String>,
    requirement: bool,
) -> bool {
    if requirement {
        c.skills.iter().any(|s| keys.contains(s))
    } else {
        department_id.is_none_or(|d| c.departments.contains(&d))
    }
}

/// Rule 4: least loaded, then idle longest, then lowest id.
pub fn choose_smart<'a>(candidates: impl Iterator<Item = &'a Candidate>) -> Option<&'a Candidate> {
    candidates
        .filter(|c| c.has_room())
        .min_by_key(|c| (c.load, c.last_assigned_at, c.id))
}

/// The next member after `cursor` in id order, wrapping around.
pub fn choose_round_robin<'a>(
    members: impl Iterator<Item = &'a Candidate>,
    cursor: Option<i64>,
) -> Option<&'a Candidate> {
    let mut eligible: Vec<&Candidate> = members.filter(|c| c.has_room()).collect();
    eligible.sort_by_key(|c| c.id);
    let after = cursor.unwrap_or(i64::MIN);
    eligible
        .iter()
        .find(|c| c.id > after)
        .or_else(|| eligible.first())
        .copied()
}

/// Events after which a queued conversation may now find an agent: something
/// entered a queue, an agent came online or changed, capacity was freed, or a
/// queued conversation changed in a way that matters for matching.
pub fn wakes_routing(payload: &EventPayload) -> bool {
    match payload {
        EventPayload::QueueChanged { change, .. } => *change == crate::events::QueueChange::Entered,
        EventPayload::AgentPresenceChanged { presence, .. } => *presence == Presence::Online,
        EventPayload::ConversationUpdated { change, .. } => matches!(
            change.as_str(),
            "created"
                | "transferred"
                | "unassigned"
                | "reassigned"
                | "resolved"
                | "closed"
                | "reopened"
                | "priority"
                | "topic"
                | "deleted"
        ),
        _ => false,
    }
}

/// A queue's order: urgent 3, high 2, normal 1, low 0.
pub fn priority_rank() -> Expr {
    Expr::case(conversation::Column::Priority.eq(Priority::Urgent), 3)
        .case(conversation::Column::Priority.eq(Priority::High), 2)
        .case(conversation::Column::Priority.eq(Priority::Normal), 1)
        .finally(0)
        .into()
}

/// When a conversation joined the queue (`queued_at`, else `created_at`).
pub fn queued_since() -> Expr {
    Func::coalesce([
        Expr::col(conversation::Column::QueuedAt),
        Expr::col(conversation::Column::CreatedAt),
    ])
    .into()
}

/// Chooses an agent for each queued conversation, in queue order, keeping
/// count of the loads and round-robin cursors the choices change. A
/// conversation nobody fits is left out: it waits for someone to free up or
/// come online.
pub fn plan(
    queued: &[Queued],
    agents: &mut [Candidate],
    departments: &mut HashMap<i64, department::Model>,
    declared: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Vec<Planned> {
    let mut planned = vec![];
    for item in queued {
        if !agents.iter().any(Candidate::has_room) {
            break;
        }
        let department = item.department_id.and_then(|d| departments.get(&d));
        let round_robin = department
            .filter(|d| d.routing_strategy == RoutingStrategy::RoundRobin)
            .map(|d| (d.id, d.round_robin_cursor));
        let keys = skill_keys(department.map(|d| d.name.as_str()), item.topic.as_deref());
        let requirement = has_skill_requirement(&keys, declared);
        let choice = match round_robin {
            Some((dep, cursor)) => choose_round_robin(
                agents.iter().filter(|c| c.departments.contains(&dep)),
                cursor,
            ),
            None => choose_smart(
                agents
                    .iter()
                    .filter(|c| matches_smart(c, item.department_id, &keys, requirement)),
            ),
        };
        let Some(agent) = choice.map(|c| c.id) else {
            continue;
        };
        if let Some(c) = agents.iter_mut().find(|c| c.id == agent) {
            c.load += 1;
            c.last_assigned_at = Some(now);
        }
        let round_robin = round_robin.map(|(d, _)| d);
        if let Some(d) = round_robin.and_then(|d| departments.get_mut(&d)) {
            d.round_robin_cursor = Some(agent);
        }
        planned.push(Planned {
            conversation: item.id,
            agent,
            round_robin,
        });
    }
    planned
}

fn skills_of(u: &TeamMember) -> BTreeSet<String> {
    serde_json::from_value::<Vec<String>>(u.skills.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// What routing reads of an active agent (not the whole user row).
#[derive(FromQueryResult)]
struct TeamMember {
    id: i64,
    skills: serde_json::Value,
    max_concurrent: i32,
    presence: Presence,
    last_seen_at: Option<DateTime<Utc>>,
    last_assigned_at: Option<DateTime<Utc>>,
}

/// Open and pending conversations assigned to each of `agents`.
pub(crate) async fn loads_of(
    db: &impl ConnectionTrait,
    agents: &[i64],
) -> Result<HashMap<i64, i64>> {
    if agents.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Option<i64>, i64)> = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::AssigneeId)
        .column_as(conversation::Column::Id.count(), "load")
        .filter(conversation::Column::AssigneeId.is_in(agents.to_vec()))
        .filter(conversation::Column::Status.is_in(ACTIVE))
        .group_by(conversation::Column::AssigneeId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(a, n)| a.map(|a| (a, n)))
        .collect())
}

/// What a committed round publishes.
struct Round {
    assigned: Vec<conversation::Model>,
    /// Every choice was written.
    complete: bool,
}

impl Domain {
    /// The online agents as candidates, and every skill some active agent
    /// declares (online or not).
    async fn routing_team(&self, now: DateTime<Utc>) -> Result<(Vec<Candidate>, BTreeSet<String>)> {
        let active = user::Entity::find()
            .select_only()
            .columns([
                user::Column::Id,
                user::Column::Skills,
                user::Column::MaxConcurrent,
                user::Column::Presence,
                user::Column::LastSeenAt,
                user::Column::LastAssignedAt,
            ])
            .filter(user::Column::Role.eq(Role::Agent))
            .filter(user::Column::IsActive.eq(true))
            .into_model::<TeamMember>()
            .all(&self.read)
            .await?;
        let declared: BTreeSet<String> = active.iter().flat_map(skills_of).collect();
        let online: Vec<TeamMember> = active
            .into_iter()
            .filter(|u| {
                u.presence == Presence::Online
                    && u.last_seen_at.is_some_and(|t| t > now - ONLINE_WINDOW)
            })
            .collect();
        let ids: Vec<i64> = online.iter().map(|u| u.id).collect();
        let loads = loads_of(&self.read, &ids).await?;
        let mut memberships: HashMap<i64, BTreeSet<i64>> = HashMap::new();
        if !ids.is_empty() {
            for m in department_member::Entity::find()
                .filter(department_member::Column::UserId.is_in(ids))
                .all(&self.read)
                .await?
            {
                memberships
                    .entry(m.user_id)
                    .or_default()
                    .insert(m.department_id);
            }
        }
        let agents = online
            .into_iter()
            .map(|u| Candidate {
                id: u.id,
                skills: skills_of(&u),
                departments: memberships.remove(&u.id).unwrap_or_default(),
                load: loads.get(&u.id).copied().unwrap_or(0),
                max: i64::from(u.max_concurrent),
                last_assigned_at: u.last_assigned_at,
            })
            .collect();
        Ok((agents, declared))
    }

    async fn queued(&self) -> Result<Vec<Queued>> {
        let rows: Vec<(i64, Option<i64>, Option<String>)> = conversation::Entity::find()
            .select_only()
            .column(conversation::Column::Id)
            .column(conversation::Column::DepartmentId)
            .column(conversation::Column::Topic)
            .filter(conversation::Column::AssigneeId.is_null())
            .filter(conversation::Column::Status.is_in(ACTIVE))
            .order_by(priority_rank(), Order::Desc)
            .order_by(queued_since(), Order::Asc)
            .order_by(conversation::Column::Id, Order::Asc)
            .limit(MAX_SCAN)
            .into_tuple()
            .all(&self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, department_id, topic)| Queued {
                id,
                department_id,
                topic,
            })
            .collect())
    }

    /// One routing pass over every queue: assigns what can be assigned and
    /// returns the conversations it assigned. Safe to run concurrently, in
    /// this instance or others.
    #[tracing::instrument(skip(self))]
    pub async fn route_queue(&self) -> Result<Vec<conversation::Model>> {
        let mut assigned = vec![];
        for _ in 0..MAX_ROUNDS {
            let now = self.clock.now();
            let (mut agents, declared) = self.routing_team(now).await?;
            if !agents.iter().any(Candidate::has_room) {
                break;
            }
            let queued = self.queued().await?;
            if queued.is_empty() {
                break;
            }
            let mut departments: HashMap<i64, department::Model> = department::Entity::find()
                .all(&self.read)
                .await?
                .into_iter()
                .map(|d| (d.id, d))
                .collect();
            let planned = plan(&queued, &mut agents, &mut departments, &declared, now);
            if planned.is_empty() {
                break;
            }
            let round = self.assign_planned(&planned, now).await?;
            assigned.extend(round.assigned);
            if round.complete {
                break;
            }
        }
        if !assigned.is_empty() {
            tracing::debug!(count = assigned.len(), "routed conversations");
        }
        Ok(assigned)
    }

    /// Writes a round's choices in one transaction, with history, audit and
    /// events; drops those that went stale since they were made.
    async fn assign_planned(&self, planned: &[Planned], now: DateTime<Utc>) -> Result<Round> {
        let txn = self.db.begin().await?;
        let mut agents: Vec<i64> = planned.iter().map(|p| p.agent).collect();
        agents.sort_unstable();
        agents.dedup();
        // In id order, so that two rounds wanting the same agents queue up
        // instead of deadlocking; `FOR NO KEY UPDATE` as in `lock_agent`.
        let capacity: HashMap<i64, i64> = user::Entity::find()
            .select_only()
            .columns([user::Column::Id, user::Column::MaxConcurrent])
            .filter(user::Column::Id.is_in(agents.clone()))
            .filter(user::Column::IsActive.eq(true))
            .order_by_asc(user::Column::Id)
            .lock(LockType::NoKeyUpdate)
            .into_tuple::<(i64, i32)>()
            .all(&txn)
            .await?
            .into_iter()
            .map(|(id, max)| (id, i64::from(max)))
            .collect();
        // Counted under the locks: nobody else adds to these loads until commit.
        let mut loads = loads_of(&txn, &agents).await?;
        let mut complete = true;
        let kept: Vec<Planned> = planned
            .iter()
            .filter(|p| {
                let load = loads.entry(p.agent).or_default();
                let room = capacity.get(&p.agent).is_some_and(|max| *load < *max);
                if room {
                    *load += 1;
                } else {
                    complete = false;
                }
                room
            })
            .copied()
            .collect();
        let assignees = per_row(
            conversation::Column::Id,
            conversation::Column::AssigneeId,
            kept.iter()
                .map(|p| (p.conversation, p.agent.into()))
                .collect(),
        );
        let Some(assignees) = assignees else {
            txn.rollback().await?;
            return Ok(Round {
                assigned: vec![],
                complete,
            });
        };
        let mut assigned = conversation::Entity::update_many()
            .col_expr(conversation::Column::AssigneeId, assignees)
            .col_expr(conversation::Column::AssignedAt, Expr::value(now))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.is_in(kept.iter().map(|p| p.conversation)))
            .filter(conversation::Column::AssigneeId.is_null())
            .filter(conversation::Column::Status.is_in(ACTIVE))
            .exec_with_returning(&txn)
            .await?;
        // The rest were taken by another worker or closed meanwhile.
        complete &= assigned.len() == kept.len();
        let order: HashMap<i64, usize> = kept
            .iter()
            .enumerate()
            .map(|(i, p)| (p.conversation, i))
            .collect();
        assigned.sort_by_key(|c| order.get(&c.id).copied());
        let done: Vec<&Planned> = assigned
            .iter()
            .filter_map(|c| order.get(&c.id).map(|&i| &kept[i]))
            .collect();
        if !assigned.is_empty() {
            user::Entity::update_many()
                .col_expr(user::Column::LastAssignedAt, Expr::value(now))
                .filter(user::Column::Id.is_in(done.iter().map(|p| p.agent)))
                .exec(&txn)
                .await?;
        }
        let cursors: HashMap<i64, i64> = done
            .iter()
            .filter_map(|p| p.round_robin.map(|d| (d, p.agent)))
            .collect();
        for (dep, agent) in cursors {
            department::Entity::update_many()
                .col_expr(department::Column::RoundRobinCursor, Expr::value(agent))
                .filter(department::Column::Id.eq(dep))
                .exec(&txn)
                .await?;
        }
        self.record_assignments(&txn, &assigned, now).await?;
        let events: Vec<EventPayload> = assigned
            .iter()
            .map(|c| conversation_updated(c, "assigned"))
            .collect();
        self.enqueue_webhooks_in(&txn, &events).await?;
        txn.commit().await?;
        self.publish_assignments(&assigned, events).await;
        Ok(Round { assigned, complete })
    }

    /// History and audit rows of automatic assignments: each conversation
    /// was queued (no assignee) in the same department and status before.
    async fn record_assignments(
        &self,
        txn: &impl ConnectionTrait,
        assigned: &[conversation::Model],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if assigned.is_empty() {
            return Ok(());
        }
        let system = Actor::system();
        let history: Vec<assignment::ActiveModel> = assigned
            .iter()
            .map(|c| assignment::ActiveModel {
                conversation_id: Set(c.id),
                kind: Set(AssignmentKind::Auto),
                from_user_id: Set(None),
                to_user_id: Set(c.assignee_id),
                from_department_id: Set(c.department_id),
                to_department_id: Set(c.department_id),
                reason: Set(None),
                actor_id: Set(system.user_id()),
                created_at: Set(now),
                ..Default::default()
            })
            .collect();
        for chunk in history.chunks(500) {
            assignment::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(txn)
                .await?;
        }
        audit::record_all(
            txn,
            &system,
            now,
            assigned.iter().map(|after| {
                let before = conversation::Model {
                    assignee_id: None,
                    ..after.clone()
                };
                Change::new("conversation.assign", "conversation", after.id)
                    .before(&assignment_state(&before))
                    .after(&assignment_state(after))
            }),
        )
        .await
    }

    /// Queue events (with each queue's length after that assignment) and
    /// conversation events of a committed round.
    async fn publish_assignments(
        &self,
        assigned: &[conversation::Model],
        events: Vec<EventPayload>,
    ) {
        let mut left: HashMap<Option<i64>, i64> = HashMap::new();
        for c in assigned {
            *left.entry(c.department_id).or_default() += 1;
        }
        let mut lengths = HashMap::new();
        for &department in left.keys() {
            let n = self.queue_length(department).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not count a queue for an event");
                -1
            });
            lengths.insert(department, n);
        }
        for (c, event) in assigned.iter().zip(events) {
            let later = left.entry(c.department_id).or_default();
            *later -= 1;
            let queue_length = lengths
                .get(&c.department_id)
                .map_or(-1, |&n| if n < 0 { n } else { n + *later });
            self.emit(EventPayload::QueueChanged {
                department_id: c.department_id,
                conversation_id: c.id,
                change: QueueChange::Assigned,
                queue_length,
            });
            self.emit_about(event, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Scope;
    use entity::ConversationStatus;

    fn agent(id: i64, skills: &[&str], deps: &[i64], load: i64) -> Candidate {
        Candidate {
            id,
            skills: skills.iter().map(|s| s.to_string()).collect(),
            departments: deps.iter().copied().collect(),
            load,
            max: 3,
            last_assigned_at: None,
        }
    }

    #[test]
    fn skill_keys_are_the_lowercased_department_and_topic() {
        let keys = skill_keys(Some(" Logistics "), Some("Damaged"));
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            vec!["damaged", "logistics"]
        );
        assert!(skill_keys(None, Some("  ")).is_empty());
    }

    #[test]
    fn specialists_match_when_the_team_declares_the_skill() {
        let keys = skill_keys(Some("Technical"), None);
        let declared: BTreeSet<String> = ["technical".to_string()].into();
        let requirement = has_skill_requirement(&keys, &declared);
        assert!(requirement);
        let member_without_skill = agent(1, &[], &[9], 0);
        let specialist_elsewhere = agent(2, &["technical"], &[], 0);
        assert!(!matches_smart(
            &member_without_skill,
            Some(9),
            &keys,
            requirement
        ));
        assert!(matches_smart(
            &specialist_elsewhere,
            Some(9),
            &keys,
            requirement
        ));
    }

    #[test]
    fn members_match_when_nobody_declares_the_skill() {
        let keys = skill_keys(Some("Returns"), None);
        let requirement = has_skill_requirement(&keys, &BTreeSet::new());
        assert!(!requirement);
        assert!(matches_smart(
            &agent(1, &[], &[9], 0),
            Some(9),
            &keys,
            false
        ));
        assert!(!matches_smart(
            &agent(2, &[], &[8], 0),
            Some(9),
            &keys,
            false
        ));
        assert!(matches_smart(&agent(2, &[], &[], 0), None, &keys, false));
    }

    #[test]
    fn smart_prefers_the_least_loaded_then_the_longest_idle() {
        let t = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        let mut a = agent(1, &[], &[], 1);
        let mut b = agent(2, &[], &[], 1);
        let c = agent(3, &[], &[], 3);
        a.last_assigned_at = t("2026-01-01T10:00:00Z");
        b.last_assigned_at = t("2026-01-01T09:00:00Z");
        let team = [a.clone(), b.clone(), c];
        assert_eq!(choose_smart(team.iter()).map(|c| c.id), Some(2));
        b.load = 2;
        let team = [a, b];
        assert_eq!(choose_smart(team.iter()).map(|c| c.id), Some(1));
    }

    #[test]
    fn round_robin_takes_the_next_member_with_room_and_wraps() {
        let team = [
            agent(4, &[], &[], 0),
            agent(7, &[], &[], 3),
            agent(9, &[], &[], 0),
        ];
        assert_eq!(
            choose_round_robin(team.iter(), Some(4)).map(|c| c.id),
            Some(9)
        );
        assert_eq!(
            choose_round_robin(team.iter(), Some(9)).map(|c| c.id),
            Some(4)
        );
        assert_eq!(choose_round_robin(team.iter(), None).map(|c| c.id), Some(4));
    }

    fn queued(id: i64, department_id: Option<i64>) -> Queued {
        Queued {
            id,
            department_id,
            topic: None,
        }
    }

    #[test]
    fn a_round_spreads_the_queue_in_order_within_capacity() {
        let now = Utc::now();
        let mut a = agent(1, &[], &[], 2);
        a.max = 3;
        let mut agents = vec![a, agent(2, &[], &[], 0)];
        let queue: Vec<Queued> = (10..15).map(|id| queued(id, None)).collect();
        let planned = plan(
            &queue,
            &mut agents,
            &mut HashMap::new(),
            &BTreeSet::new(),
            now,
        );
        let pairs: Vec<(i64, i64)> = planned.iter().map(|p| (p.conversation, p.agent)).collect();
        // Agent 2 starts empty and takes turns once both are at 2; nobody
        // goes over 3, and the fifth conversation waits.
        assert_eq!(pairs, vec![(10, 2), (11, 2), (12, 1), (13, 2)]);
        assert!(agents.iter().all(|c| c.load == c.max));
    }

    #[test]
    fn a_round_moves_the_round_robin_cursor_as_it_goes() {
        let now = Utc::now();
        let department = department::Model {
            id: 7,
            name: "Sales".into(),
            description: None,
            keywords: serde_json::json!([]),
            routing_strategy: RoutingStrategy::RoundRobin,
            round_robin_cursor: Some(4),
            created_at: now,
            updated_at: now,
        };
        let mut departments = HashMap::from([(7, department)]);
        let mut agents = vec![
            agent(4, &[], &[7], 0),
            agent(5, &[], &[7], 0),
            agent(6, &[], &[], 0),
        ];
        let queue: Vec<Queued> = (1..=3).map(|id| queued(id, Some(7))).collect();
        let planned = plan(&queue, &mut agents, &mut departments, &BTreeSet::new(), now);
        let picks: Vec<i64> = planned.iter().map(|p| p.agent).collect();
        assert_eq!(picks, vec![5, 4, 5]);
        assert!(planned.iter().all(|p| p.round_robin == Some(7)));
        assert_eq!(departments[&7].round_robin_cursor, Some(5));
    }

    #[test]
    fn only_relevant_events_wake_the_router() {
        let scope = Scope {
            conversation_id: 1,
            assignee_id: None,
            department_id: None,
        };
        let updated = |change: &str| EventPayload::ConversationUpdated {
            scope,
            status: ConversationStatus::Open,
            priority: Priority::Normal,
            change: change.into(),
        };
        assert!(wakes_routing(&updated("resolved")));
        assert!(!wakes_routing(&updated("assigned")));
        assert!(!wakes_routing(&updated("tags")));
        let queue = |change| EventPayload::QueueChanged {
            department_id: None,
            conversation_id: 1,
            change,
            queue_length: 1,
        };
        assert!(wakes_routing(&queue(QueueChange::Entered)));
        assert!(!wakes_routing(&queue(QueueChange::Assigned)));
    }
}
