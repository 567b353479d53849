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
//! Choices are made in memory, but an assignment is one conditional UPDATE
//! (see [`crate::assignment`]): it only succeeds while the conversation is
//! still queued and the agent still below capacity, with the agent's `users`
//! row locked (`FOR UPDATE`) on PostgreSQL. Several workers in several
//! instances can run this at once; a lost race just moves on.

use std::collections::{BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use entity::{
    ConversationStatus, Presence, Priority, Role, RoutingStrategy, conversation, department,
    department_member, user,
};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::assignment::{ACTIVE, AssignOutcome, assign_if, record_history};
use crate::audit::{self, Change};
use crate::events::EventPayload;
use crate::presence::ONLINE_WINDOW;
use crate::{Actor, Domain, Result};

/// The most queued conversations one pass looks at.
const MAX_SCAN: u64 = 5_000;
/// Attempts to place one conversation before a pass moves on.
const MAX_ATTEMPTS: usize = 8;
/// Assignments of one pass in flight at once (each its own transaction).
const PARALLEL_ASSIGNMENTS: usize = 8;

/// A queued conversation being placed, with the agents that turned out full.
struct Placement {
    id: i64,
    department_id: Option<i64>,
    topic: Option<String>,
    excluded: BTreeSet<i64>,
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

/// The online agents with their loads, memberships and skills.
struct Team {
    agents: Vec<Candidate>,
}

impl Team {
    fn has_room(&self) -> bool {
        self.agents.iter().any(Candidate::has_room)
    }

    fn get_mut(&mut self, id: i64) -> Option<&mut Candidate> {
        self.agents.iter_mut().find(|c| c.id == id)
    }
}

fn skills_of(u: &user::Model) -> BTreeSet<String> {
    serde_json::from_value::<Vec<String>>(u.skills.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Domain {
    /// Open and pending conversations assigned to each of `agents`.
    pub(crate) async fn loads_of(&self, agents: &[i64]) -> Result<HashMap<i64, i64>> {
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
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(a, n)| a.map(|a| (a, n)))
            .collect())
    }

    async fn refresh_loads(&self, team: &mut Team) -> Result<()> {
        let ids: Vec<i64> = team.agents.iter().map(|c| c.id).collect();
        let loads = self.loads_of(&ids).await?;
        for c in &mut team.agents {
            c.load = loads.get(&c.id).copied().unwrap_or(0);
        }
        Ok(())
    }

    async fn routing_team(&self, now: DateTime<Utc>) -> Result<Team> {
        let online = user::Entity::find()
            .filter(user::Column::Role.eq(Role::Agent))
            .filter(user::Column::IsActive.eq(true))
            .filter(user::Column::Presence.eq(Presence::Online))
            .filter(user::Column::LastSeenAt.gt(now - ONLINE_WINDOW))
            .all(&self.db)
            .await?;
        let ids: Vec<i64> = online.iter().map(|u| u.id).collect();
        let loads = self.loads_of(&ids).await?;
        let mut memberships: HashMap<i64, BTreeSet<i64>> = HashMap::new();
        if !ids.is_empty() {
            for m in department_member::Entity::find()
                .filter(department_member::Column::UserId.is_in(ids))
                .all(&self.db)
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
        Ok(Team { agents })
    }

    /// Every skill some active agent declares.
    async fn declared_skills(&self) -> Result<BTreeSet<String>> {
        let rows: Vec<serde_json::Value> = user::Entity::find()
            .select_only()
            .column(user::Column::Skills)
            .filter(user::Column::Role.eq(Role::Agent))
            .filter(user::Column::IsActive.eq(true))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .flat_map(|v| serde_json::from_value::<Vec<String>>(v).unwrap_or_default())
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect())
    }

    /// One routing pass over every queue: assigns what can be assigned and
    /// returns the conversations it assigned. Safe to run concurrently, in
    /// this instance or others.
    #[tracing::instrument(skip(self))]
    pub async fn route_queue(&self) -> Result<Vec<conversation::Model>> {
        let now = self.clock.now();
        let mut team = self.routing_team(now).await?;
        if !team.has_room() {
            return Ok(vec![]);
        }
        let mut departments: HashMap<i64, department::Model> = department::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect();
        let declared = self.declared_skills().await?;
        let queued: Vec<(i64, Option<i64>, Option<String>)> = conversation::Entity::find()
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
            .all(&self.db)
            .await?;
        // Choices are made in memory, a batch at a time, and the batch's
        // conditional UPDATEs run concurrently: the database still decides
        // (a stale choice comes back as `AgentFull` or `Gone`), the pass just
        // does not wait for one commit before starting the next.
        let mut pending: VecDeque<Placement> = queued
            .into_iter()
            .map(|(id, department_id, topic)| Placement {
                id,
                department_id,
                topic,
                excluded: BTreeSet::new(),
            })
            .collect();
        let mut assigned = vec![];
        while team.has_room() {
            let mut batch = vec![];
            while batch.len() < PARALLEL_ASSIGNMENTS
                && let Some(item) = pending.pop_front()
            {
                if item.excluded.len() >= MAX_ATTEMPTS {
                    continue;
                }
                let department = item.department_id.and_then(|d| departments.get(&d));
                let round_robin = department
                    .filter(|d| d.routing_strategy == RoutingStrategy::RoundRobin)
                    .map(|d| (d.id, d.round_robin_cursor));
                let keys = skill_keys(department.map(|d| d.name.as_str()), item.topic.as_deref());
                let requirement = has_skill_requirement(&keys, &declared);
                let pool = team
                    .agents
                    .iter()
                    .filter(|c| !item.excluded.contains(&c.id));
                let choice = match round_robin {
                    Some((dep, cursor)) => {
                        choose_round_robin(pool.filter(|c| c.departments.contains(&dep)), cursor)
                    }
                    None => choose_smart(
                        pool.filter(|c| matches_smart(c, item.department_id, &keys, requirement)),
                    ),
                };
                // Nobody fits: it waits for someone to free up or come online.
                let Some(agent) = choice.map(|c| c.id) else {
                    continue;
                };
                if let Some(c) = team.get_mut(agent) {
                    c.load += 1;
                    c.last_assigned_at = Some(now);
                }
                let round_robin = round_robin.map(|(d, _)| d);
                if let Some(d) = round_robin.and_then(|d| departments.get_mut(&d)) {
                    d.round_robin_cursor = Some(agent);
                }
                batch.push((item, agent, round_robin));
            }
            if batch.is_empty() {
                break;
            }
            let outcomes = futures_util::future::join_all(
                batch
                    .iter()
                    .map(|(item, agent, rr)| self.assign_queued(item.id, *agent, *rr)),
            )
            .await;
            let mut stale = false;
            for ((mut item, agent, _), outcome) in batch.into_iter().zip(outcomes) {
                match outcome? {
                    AssignOutcome::Assigned(after) => assigned.push(*after),
                    // Another worker took it.
                    AssignOutcome::Gone => stale = true,
                    // Our view of the loads was stale: try someone else.
                    AssignOutcome::AgentFull => {
                        stale = true;
                        item.excluded.insert(agent);
                        pending.push_front(item);
                    }
                }
            }
            if stale {
                self.refresh_loads(&mut team).await?;
            }
        }
        if !assigned.is_empty() {
            tracing::debug!(count = assigned.len(), "routed conversations");
        }
        Ok(assigned)
    }

    /// Assigns one queued conversation to `agent` on behalf of the routing
    /// worker, with history, audit and events.
    async fn assign_queued(
        &self,
        id: i64,
        agent: i64,
        round_robin_department: Option<i64>,
    ) -> Result<AssignOutcome> {
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let Some(before) = conversation::Entity::find_by_id(id).one(&txn).await? else {
            txn.rollback().await?;
            return Ok(AssignOutcome::Gone);
        };
        if before.assignee_id.is_some()
            || !matches!(
                before.status,
                ConversationStatus::Open | ConversationStatus::Pending
            )
        {
            txn.rollback().await?;
            return Ok(AssignOutcome::Gone);
        }
        if !assign_if(&txn, id, agent, None, now, Default::default()).await? {
            txn.rollback().await?;
            // Lost the conversation to another worker, or the agent filled up.
            let still_queued = conversation::Entity::find_by_id(id)
                .filter(conversation::Column::AssigneeId.is_null())
                .filter(conversation::Column::Status.is_in(ACTIVE))
                .one(&self.db)
                .await?
                .is_some();
            return Ok(if still_queued {
                AssignOutcome::AgentFull
            } else {
                AssignOutcome::Gone
            });
        }
        if let Some(dep) = round_robin_department {
            department::Entity::update_many()
                .col_expr(department::Column::RoundRobinCursor, Expr::value(agent))
                .filter(department::Column::Id.eq(dep))
                .exec(&txn)
                .await?;
        }
        let after = conversation::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| crate::DomainError::not_found("conversation", id))?;
        let system = Actor::system();
        record_history(
            &txn,
            &system,
            &before,
            &after,
            entity::AssignmentKind::Auto,
            None,
            now,
        )
        .await?;
        audit::record(
            &txn,
            &system,
            now,
            Change::new("conversation.assign", "conversation", id)
                .before(&crate::assignment::assignment_state(&before))
                .after(&crate::assignment::assignment_state(&after)),
        )
        .await?;
        self.commit_change(txn, &before, &after, "assigned", vec![])
            .await?;
        Ok(AssignOutcome::Assigned(Box::new(after)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{QueueChange, Scope};

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
