//! GraphQL over HTTP: media types, status codes, GET rules.

use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn json_is_answered_as_json_by_default() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Accept", "application/json")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "QueryRoot");
}

#[tokio::test]
async fn a_parse_error_is_400_without_data_for_graphql_response_json() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Accept", "application/graphql-response+json")
        .json(&json!({"query": "{ me { "}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/graphql-response+json"), "{ct}");
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("data").is_none(), "{body}");
    assert!(body["errors"].as_array().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn a_validation_error_is_400() {
    let app = spawn_app().await;
    let r = app.gql("", "{ noSuchField }", json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn a_body_that_is_not_a_graphql_request_is_400_and_a_wrong_type_415() {
    let app = spawn_app().await;
    let post = |ct: &'static str, body: &'static str| {
        app.client
            .post(format!("{}/graphql", app.address))
            .header("Content-Type", ct)
            .body(body)
            .send()
    };
    assert_eq!(
        post("application/json", "{not json")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post("text/plain", "{ __typename }").await.unwrap().status(),
        415
    );
}

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations() {
    let app = spawn_app().await;
    let get = |q: &'static str| {
        app.client
            .get(format!("{}/graphql", app.address))
            .query(&[("query", q)])
            .send()
    };
    assert_eq!(get("{ __typename }").await.unwrap().status(), 200);
    let resp = get("mutation { login(email:\"a@b.c\", password:\"x\") { accessToken } }")
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn get_without_a_query_serves_graphiql() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/graphql", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    for path in ["healthz", "readyz"] {
        let resp = app
            .client
            .get(format!("{}/{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn queries_deeper_than_the_limit_are_refused() {
    let app = spawn_app_with(|c| c.graphql_max_depth = 5).await;
    let deep = "{ me { departments { members { departments { members { id } } } } } }";
    let r = app.gql(&app.admin_token, deep, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let shallow = app.gql(&app.admin_token, "{ me { id } }", json!({})).await;
    assert_eq!(shallow.status, 200, "{}", shallow.body);
}
