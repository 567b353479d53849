//! A page of conversations with contacts, assignees, departments and tags
//! costs the same number of SQL queries for 10 rows as for 100.

use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

const PAGE: &str = "query($n:Int!){ conversations(first:$n){ edges { node { id status contact { displayName waId } assignee { name } department { name } channel { name } tags { name } recentMessages { body } } } } }";

/// The fewest queries over three runs: a loader batch split by a busy
/// machine must not make the test flaky, while N+1 queries would still show.
async fn queries_for(app: &TestApp, n: usize) -> u64 {
    let mut fewest = u64::MAX;
    for _ in 0..3 {
        let before = app.queries.get();
        let r = app.gql(&app.admin_token, PAGE, json!({"n": n})).await;
        assert_eq!(
            r.data()["conversations"]["edges"].as_array().unwrap().len(),
            n
        );
        fewest = fewest.min(app.queries.get() - before);
    }
    fewest
}

#[tokio::test]
async fn a_page_of_conversations_costs_a_constant_number_of_queries() {
    let app = spawn_app().await;
    let mut agents = vec![];
    for i in 0..5 {
        agents.push(app.staff(&format!("Agent{i}"), "AGENT").await.0);
    }
    let channel = app.seed_channel().await;
    for i in 0..100 {
        app.seed_conversation(channel, Some(agents[i % agents.len()]))
            .await;
    }
    let small = queries_for(&app, 10).await;
    let large = queries_for(&app, 100).await;
    // N+1 queries would add about 90 here; one more is a loader batch split
    // in two by a busy machine (the loaders wait a few milliseconds for keys).
    assert!(
        large <= small + 1,
        "queries must not grow with the page size: {small} for 10 rows, {large} for 100"
    );
    // Authentication (2: user, maybe token) + page + 6 loaders at most.
    assert!(large <= 9, "{large} queries for one page");
}
