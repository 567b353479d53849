//! Inbound message to assignment: each delivery comes from a new customer, so
//! it opens a conversation the routing worker must hand to an online agent.
//! The clock starts when the delivery is posted and stops when the
//! `conversationUpdated` event saying "assigned" reaches a subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{
    delivery, graphql, histogram, login, next_json, percentiles, pong, post_delivery, record_since,
    subscribe,
};

pub struct Params {
    pub url: String,
    pub admin_token: String,
    pub secret: String,
    pub phone_number_id: String,
    pub rate: u64,
    pub seconds: u64,
    pub agents: u32,
    pub capacity: u32,
}

const ASSIGNED: &str = "subscription { conversationUpdated(filter: {changes: [\"assigned\"]}) { conversation { contact { waId } } } }";

/// Creates (or reuses) `n` online agents able to take the load.
async fn online_agents(client: &reqwest::Client, p: &Params) -> anyhow::Result<()> {
    let password = "loadgen-agent-password";
    for i in 0..p.agents {
        let email = format!("load-agent-{i}@loadgen.test");
        let created = graphql(
            client,
            &p.url,
            Some(&p.admin_token),
            "mutation($e:String!,$c:Int!){ createStaff(input:{email:$e,name:$e,password:\"loadgen-agent-password\",role:AGENT,maxConcurrent:$c}){ id } }",
            json!({"e": email, "c": p.capacity}),
        )
        .await;
        if let Err(e) = created
            && !e.to_string().contains("CONFLICT")
        {
            return Err(e);
        }
        let token = login(client, &p.url, &email, password).await?;
        graphql(
            client,
            &p.url,
            Some(&token),
            "mutation { heartbeat(status: ONLINE) { id } }",
            json!({}),
        )
        .await?;
    }
    Ok(())
}

pub async fn run(client: reqwest::Client, p: Params) -> anyhow::Result<Value> {
    online_agents(&client, &p).await?;
    let mut ws = subscribe(&p.url, &p.admin_token, ASSIGNED, json!({})).await?;
    // Subscriptions start asynchronously on the server.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let total = p.rate * p.seconds;
    let run = crate::client::unix_micros();
    let posted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let sender = {
        let (client, posted) = (client.clone(), posted.clone());
        let (url, secret, number) = (p.url.clone(), p.secret.clone(), p.phone_number_id.clone());
        let interval = Duration::from_secs_f64(1.0 / p.rate as f64);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            let mut inflight = vec![];
            for seq in 0..total {
                ticker.tick().await;
                let wa_id = format!("4{:011}", (run as u64 % 1_000_000) * 10_000 + seq);
                let body = delivery(
                    &number,
                    &wa_id,
                    &format!("wamid.ASSIGN{run:x}{seq:06}"),
                    "Ciao, ho bisogno di aiuto",
                );
                posted
                    .lock()
                    .expect("map lock")
                    .insert(wa_id, Instant::now());
                let (client, url, secret) = (client.clone(), url.clone(), secret.clone());
                inflight.push(tokio::spawn(async move {
                    post_delivery(&client, &url, &secret, body).await
                }));
            }
            let mut errors = 0u64;
            for h in inflight {
                if !h.await.unwrap_or(false) {
                    errors += 1;
                }
            }
            errors
        })
    };

    let mut hist = histogram();
    let mut event_errors = vec![];
    let deadline = Instant::now() + Duration::from_secs(p.seconds + 10);
    while hist.len() < total {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(msg) = tokio::time::timeout(left, next_json(&mut ws)).await else {
            break;
        };
        let msg = msg?;
        match msg["type"].as_str() {
            Some("ping") => pong(&mut ws).await?,
            Some("next") => {
                // Conversations from earlier runs may be assigned too: only
                // those this run posted are timed; errors are counted.
                let contact =
                    &msg["payload"]["data"]["conversationUpdated"]["conversation"]["contact"];
                match contact["waId"].as_str() {
                    Some(wa_id) => {
                        if let Some(t0) = posted.lock().expect("map lock").remove(wa_id) {
                            record_since(&mut hist, t0);
                        }
                    }
                    None => event_errors.push(msg["payload"].to_string()),
                }
            }
            _ => {}
        }
    }
    let errors = sender.await?;
    Ok(json!({
        "scenario": "assign",
        "rate": p.rate,
        "messages": total,
        "post_errors": errors,
        "assigned": hist.len(),
        "not_assigned_in_time": total - hist.len(),
        "event_errors": event_errors.len(),
        "first_event_error": event_errors.first(),
        "inbound_to_assignment_ms": percentiles(&hist),
    }))
}
