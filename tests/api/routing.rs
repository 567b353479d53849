//! The routing worker: smart and round-robin choices on crafted teams, the
//! queue order, event-driven assignment, and never twice / never over
//! capacity under concurrency (two instances on one PostgreSQL database).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use domain::events::{EventPayload, QueueChange};
use entity::{AssignmentKind, ConversationStatus, Priority, assignment, conversation, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with, spawn_instance};

/// An app whose routing the test drives with `domain.route_queue()`.
async fn manual_routing_app() -> TestApp {
    spawn_app_with(|c| c.routing_worker = false).await
}

/// An app with its routing worker listening to events.
async fn routing_app() -> TestApp {
    spawn_app_with(|c| c.routing_worker = true).await
}

async fn set_last_assigned(app: &TestApp, user_id: i64, at: DateTime<Utc>) {
    user::Entity::update_many()
        .col_expr(user::Column::LastAssignedAt, Expr::value(at))
        .filter(user::Column::Id.eq(user_id))
        .exec(&app.domain.db)
        .await
        .unwrap();
}

/// Routes one new queued conversation and returns who got it.
async fn route_one(
    app: &TestApp,
    channel: i64,
    department: Option<i64>,
    topic: Option<&str>,
) -> Option<i64> {
    app.clock.advance(Duration::seconds(1));
    let id = app
        .seed_queued(channel, department, Priority::Normal, topic)
        .await;
    app.domain.route_queue().await.unwrap();
    app.conversation_row(id).await.assignee_id
}

/// Open and pending conversations per assignee.
async fn loads(app: &TestApp) -> HashMap<i64, u64> {
    let rows = conversation::Entity::find()
        .filter(
            conversation::Column::Status
                .is_in([ConversationStatus::Open, ConversationStatus::Pending]),
        )
        .filter(conversation::Column::AssigneeId.is_not_null())
        .all(&app.domain.db)
        .await
        .unwrap();
    let mut out = HashMap::new();
    for c in rows {
        *out.entry(c.assignee_id.unwrap()).or_default() += 1;
    }
    out
}

/// Auto-assignment history rows per conversation.
async fn auto_assignments(app: &TestApp) -> HashMap<i64, u64> {
    let rows = assignment::Entity::find()
        .filter(assignment::Column::Kind.eq(AssignmentKind::Auto))
        .all(&app.domain.db)
        .await
        .unwrap();
    let mut out = HashMap::new();
    for r in rows {
        *out.entry(r.conversation_id).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn smart_routing_picks_the_least_loaded_online_specialist_idle_longest() {
    let app = manual_routing_app().await;
    let channel = app.seed_channel().await;
    let logistics = app.department("Logistics", "SMART").await;
    let (ada, ada_t) = app.agent("Ada", &["logistics"], &[], 3).await;
    let (bruno, bruno_t) = app.agent("Bruno", &["Logistics"], &[], 3).await;
    let (carla, carla_t) = app.agent("Carla", &["logistics", "returns"], &[], 3).await;
    // Specialist but never online.
    let (dario, _) = app.agent("Dario", &["logistics"], &[], 3).await;
    // Member without the skill: the team declares specialists, so not eligible.
    let (elena, elena_t) = app.agent("Elena", &[], &[logistics], 3).await;
    // Online, free, but the wrong skill.
    let (fabio, fabio_t) = app.agent("Fabio", &["technical"], &[], 3).await;
    for t in [&ada_t, &bruno_t, &carla_t, &elena_t, &fabio_t] {
        app.heartbeat(t, "ONLINE").await;
    }
    // Ada already has one conversation; Bruno was given one a while ago.
    app.seed_conversation(channel, Some(ada)).await;
    set_last_assigned(&app, ada, app.now() - Duration::minutes(30)).await;
    set_last_assigned(&app, bruno, app.now() - Duration::minutes(10)).await;

    let mut got = vec![];
    for _ in 0..4 {
        got.push(route_one(&app, channel, Some(logistics), None).await);
    }
    // 1: Bruno and Carla are free; Carla has never been assigned (idle longest).
    // 2: Bruno is the only one with no conversation.
    // 3: all at one; Ada's last assignment is the oldest.
    // 4: Bruno and Carla at one; Carla's last assignment (1) is older than Bruno's (2).
    assert_eq!(got, vec![Some(carla), Some(bruno), Some(ada), Some(carla)]);
    let l = loads(&app).await;
    for nobody in [dario, elena, fabio] {
        assert_eq!(l.get(&nobody), None);
    }
}

#[tokio::test]
async fn without_declared_specialists_members_of_the_department_are_routed() {
    let app = manual_routing_app().await;
    let channel = app.seed_channel().await;
    let returns = app.department("Returns", "SMART").await;
    let (gina, gina_t) = app.agent("Gina", &[], &[returns], 3).await;
    let (hugo, hugo_t) = app.agent("Hugo", &["vip"], &[], 3).await;
    app.heartbeat(&gina_t, "ONLINE").await;
    app.heartbeat(&hugo_t, "ONLINE").await;
    // Nobody lists "returns": membership decides.
    assert_eq!(
        route_one(&app, channel, Some(returns), None).await,
        Some(gina)
    );
    // The topic "vip" is declared by Hugo: only specialists match.
    assert_eq!(
        route_one(&app, channel, Some(returns), Some("vip")).await,
        Some(hugo)
    );
    // No department and no topic: anyone online. Both have one conversation;
    // Gina's was assigned first, so she has been idle longer.
    assert_eq!(route_one(&app, channel, None, None).await, Some(gina));
}

#[tokio::test]
async fn away_offline_and_stale_agents_are_not_routed() {
    let app = manual_routing_app().await;
    let channel = app.seed_channel().await;
    let sales = app.department("Sales", "SMART").await;
    let (ivo, away_t) = app.agent("Ivo", &[], &[sales], 3).await;
    let (lia, lia_t) = app.agent("Lia", &[], &[sales], 3).await;
    app.heartbeat(&away_t, "AWAY").await;
    app.heartbeat(&lia_t, "ONLINE").await;
    // Five minutes without activity: not online any more, even before the sweep.
    app.clock.advance(Duration::minutes(5));
    assert_eq!(route_one(&app, channel, Some(sales), None).await, None);
    app.heartbeat(&lia_t, "ONLINE").await;
    let waiting = app
        .seed_queued(channel, Some(sales), Priority::Normal, None)
        .await;
    app.domain.route_queue().await.unwrap();
    // Lia takes the older one first, then the new one.
    assert_eq!(app.conversation_row(waiting).await.assignee_id, Some(lia));
    let l = loads(&app).await;
    assert_eq!(l.get(&lia), Some(&2));
    assert_eq!(l.get(&ivo), None);
}

#[tokio::test]
async fn round_robin_takes_members_in_turn_within_capacity() {
    let app = manual_routing_app().await;
    let channel = app.seed_channel().await;
    let sales = app.department("Sales", "ROUND_ROBIN").await;
    let (m1, t1) = app.agent("Mara", &[], &[sales], 3).await;
    let (m2, t2) = app.agent("Nico", &[], &[sales], 1).await;
    let (m3, t3) = app.agent("Olga", &[], &[sales], 3).await;
    // Online and free, with the department's name as a skill, but not a member.
    let (_, outsider) = app.agent("Piero", &["sales"], &[], 3).await;
    for t in [&t1, &t2, &t3, &outsider] {
        app.heartbeat(t, "ONLINE").await;
    }
    let mut got = vec![];
    for _ in 0..8 {
        got.push(route_one(&app, channel, Some(sales), None).await);
    }
    // Nico's capacity is 1: after his first turn he is skipped.
    assert_eq!(
        got,
        vec![
            Some(m1),
            Some(m2),
            Some(m3),
            Some(m1),
            Some(m3),
            Some(m1),
            Some(m3),
            None
        ]
    );
}

#[tokio::test]
async fn the_queue_is_served_urgent_first_then_oldest() {
    let app = manual_routing_app().await;
    let channel = app.seed_channel().await;
    let support = app.department("Support", "SMART").await;
    let (_, agent_t) = app.agent("Quinto", &[], &[support], 1).await;
    let low = app
        .seed_queued(channel, Some(support), Priority::Low, None)
        .await;
    app.clock.advance(Duration::seconds(1));
    let normal = app
        .seed_queued(channel, Some(support), Priority::Normal, None)
        .await;
    app.clock.advance(Duration::seconds(1));
    let older_urgent = app
        .seed_queued(channel, Some(support), Priority::Urgent, None)
        .await;
    app.clock.advance(Duration::seconds(1));
    let urgent = app
        .seed_queued(channel, Some(support), Priority::Urgent, None)
        .await;
    let order = app
        .gql(
            &app.admin_token,
            "query($d:ID){ queue(departmentId:$d){ edges { node { id } } } }",
            json!({"d": support.to_string()}),
        )
        .await;
    let ids: Vec<i64> = order.data()["queue"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, vec![older_urgent, urgent, normal, low]);
    app.heartbeat(&agent_t, "ONLINE").await;
    app.domain.route_queue().await.unwrap();
    let mut assigned = vec![];
    for id in [older_urgent, urgent, normal, low] {
        assigned.push(app.conversation_row(id).await.assignee_id.is_some());
    }
    assert_eq!(assigned, vec![true, false, false, false]);
}

#[tokio::test]
async fn a_waiting_conversation_is_assigned_when_an_agent_comes_online_or_frees_up() {
    let app = routing_app().await;
    let channel = app.seed_channel().await;
    let support = app.department("Support", "SMART").await;
    let (rita, rita_t) = app.agent("Rita", &[], &[support], 1).await;
    let first = app
        .seed_queued(channel, Some(support), Priority::Normal, None)
        .await;
    app.clock.advance(Duration::seconds(1));
    let second = app
        .seed_queued(channel, Some(support), Priority::Normal, None)
        .await;
    // Nobody online: both wait.
    app.domain.route_queue().await.unwrap();
    assert_eq!(app.conversation_row(first).await.assignee_id, None);
    // Rita comes online: the worker hears it and assigns the older one.
    app.heartbeat(&rita_t, "ONLINE").await;
    app.eventually("the first conversation goes to Rita", || async {
        app.conversation_row(first).await.assignee_id == Some(rita)
    })
    .await;
    assert_eq!(app.conversation_row(second).await.assignee_id, None);
    // She resolves it: capacity is free, the second one follows at once.
    app.gql(
        &rita_t,
        "mutation($id:ID!){ resolve(conversationId:$id){ status } }",
        json!({"id": first.to_string()}),
    )
    .await
    .data();
    app.eventually("the second conversation goes to Rita", || async {
        app.conversation_row(second).await.assignee_id == Some(rita)
    })
    .await;
    // A conversation entering the queue is routed on the event alone.
    let (_, sara_t) = app.agent("Sara", &[], &[support], 3).await;
    app.heartbeat(&sara_t, "ONLINE").await;
    let third = app
        .seed_queued(channel, Some(support), Priority::Normal, None)
        .await;
    app.domain.emit(EventPayload::QueueChanged {
        department_id: Some(support),
        conversation_id: third,
        change: QueueChange::Entered,
        queue_length: 1,
    });
    app.eventually("the new conversation is assigned", || async {
        app.conversation_row(third).await.assignee_id.is_some()
    })
    .await;
}

/// Ten online agents with `capacity` each in one department.
async fn team_of_ten(app: &TestApp, capacity: i32) -> (i64, Vec<i64>) {
    let department = app.department("Orders", "SMART").await;
    let mut agents = vec![];
    for i in 0..10 {
        let (id, token) = app
            .agent(&format!("Agent{i}"), &[], &[department], capacity)
            .await;
        app.heartbeat(&token, "ONLINE").await;
        agents.push(id);
    }
    (department, agents)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_never_exceeded_when_200_conversations_arrive_at_once() {
    let app = routing_app().await;
    let channel = app.seed_channel().await;
    let (department, agents) = team_of_ten(&app, 3).await;
    // Each arrival enters the queue, announces it (waking the worker) and
    // runs a routing pass of its own: many passes race each other.
    let arrivals = (0..200).map(|_| async {
        let id = app
            .seed_queued(channel, Some(department), Priority::Normal, None)
            .await;
        app.domain.emit(EventPayload::QueueChanged {
            department_id: Some(department),
            conversation_id: id,
            change: QueueChange::Entered,
            queue_length: 1,
        });
        app.domain.route_queue().await.unwrap();
    });
    futures_util::future::join_all(arrivals).await;
    app.domain.route_queue().await.unwrap();
    let l = loads(&app).await;
    for a in &agents {
        assert_eq!(l.get(a), Some(&3), "agent {a} must be exactly full: {l:?}");
    }
    let history = auto_assignments(&app).await;
    assert_eq!(history.len(), 30);
    assert!(history.values().all(|n| *n == 1), "{history:?}");
    let waiting = conversation::Entity::find()
        .filter(conversation::Column::AssigneeId.is_null())
        .count(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(waiting, 170);
}

fn postgres_only(test: &str) -> bool {
    let on = std::env::var("TEST_DATABASE_URL").is_ok();
    if !on {
        println!("{test}: skipped, it needs PostgreSQL (set TEST_DATABASE_URL)");
    }
    on
}

/// Runs routing passes on both instances at once, `rounds` times each.
async fn race_two_instances(a: &TestApp, b: &TestApp, rounds: usize) {
    let passes = (0..rounds).flat_map(|_| [a, b]).map(|app| async move {
        app.domain.route_queue().await.unwrap();
    });
    futures_util::future::join_all(passes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_never_assign_a_conversation_twice() {
    if !postgres_only("two_instances_never_assign_a_conversation_twice") {
        return;
    }
    let a = routing_app().await;
    let b = spawn_instance(&a, |c| c.routing_worker = true).await;
    let channel = a.seed_channel().await;
    let mut queued = vec![];
    let department = a.department("Orders", "SMART").await;
    for _ in 0..200 {
        queued.push(
            a.seed_queued(channel, Some(department), Priority::Normal, None)
                .await,
        );
    }
    // Enough room for everyone: every conversation must be assigned exactly once.
    let mut agents = vec![];
    for i in 0..10 {
        let (id, token) = a.agent(&format!("Agent{i}"), &[], &[department], 20).await;
        agents.push((id, token));
    }
    let online = agents.iter().map(|(_, t)| a.heartbeat(t, "ONLINE"));
    futures_util::future::join_all(online).await;
    race_two_instances(&a, &b, 4).await;
    // Racing passes may each leave the last few to the next pass (their views
    // of the loads were stale); the worker's next pass, as here, takes them.
    a.domain.route_queue().await.unwrap();
    b.domain.route_queue().await.unwrap();
    let history = auto_assignments(&a).await;
    assert_eq!(history.len(), 200, "every conversation assigned");
    assert!(
        history.values().all(|n| *n == 1),
        "a conversation was assigned twice: {history:?}"
    );
    let l = loads(&a).await;
    assert_eq!(l.values().sum::<u64>(), 200);
    assert!(l.values().all(|n| *n <= 20), "{l:?}");
    // Every assignment is audited once, by the system.
    let audited = entity::audit_log::Entity::find()
        .filter(entity::audit_log::Column::Action.eq("conversation.assign"))
        .count(&a.domain.db)
        .await
        .unwrap();
    assert_eq!(audited, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_never_push_an_agent_over_capacity() {
    if !postgres_only("two_instances_never_push_an_agent_over_capacity") {
        return;
    }
    let a = routing_app().await;
    let b = spawn_instance(&a, |c| c.routing_worker = true).await;
    let channel = a.seed_channel().await;
    let (department, agents) = team_of_ten(&a, 3).await;
    // Conversations arrive on both instances at once; each arrival wakes its
    // instance's worker and runs a pass there: 200 passes race on two pools.
    let arrivals = (0..200).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        async move {
            let id = app
                .seed_queued(channel, Some(department), Priority::Normal, None)
                .await;
            app.domain.emit(EventPayload::QueueChanged {
                department_id: Some(department),
                conversation_id: id,
                change: QueueChange::Entered,
                queue_length: 1,
            });
            app.domain.route_queue().await.unwrap();
        }
    });
    futures_util::future::join_all(arrivals).await;
    race_two_instances(&a, &b, 2).await;
    let l = loads(&a).await;
    for id in &agents {
        assert_eq!(l.get(id), Some(&3), "agent {id}: {l:?}");
    }
    assert!(auto_assignments(&a).await.values().all(|n| *n == 1));
}
