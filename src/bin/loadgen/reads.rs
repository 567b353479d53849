//! GraphQL reads at a fixed concurrency, flat out: the queue page (50 open
//! conversations, newest first, each with its contact and last 5 messages)
//! and one conversation with its first 20 messages. With `--plain-url` the
//! same rows come from a plain actix-web JSON endpoint instead
//! (`api/examples/plain_reads.rs`), for the GraphQL-to-plain ratio.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{histogram, merged, percentiles, record_since};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Read {
    Queue,
    Conversation,
}

pub struct Params {
    pub url: String,
    pub admin_token: String,
    pub read: Read,
    pub concurrency: usize,
    pub seconds: u64,
    /// Conversations read by `conversation`, in turn.
    pub ids: Vec<i64>,
    pub plain_url: Option<String>,
}

const QUEUE: &str = "{ conversations(filter: {status: [OPEN]}, order: CREATED_AT_DESC, first: 50) { nodes { id status priority lastMessageAt contact { id displayName waId } recentMessages(last: 5) { id direction body createdAt } } } }";
const CONVERSATION: &str = "query($id: ID!) { conversation(id: $id) { id status priority lastMessageAt contact { id displayName waId } messages(first: 20) { nodes { id direction body createdAt } } } }";

fn request(client: &reqwest::Client, p: &Params, seq: u64) -> reqwest::RequestBuilder {
    let id = p.ids[seq as usize % p.ids.len().max(1)];
    match (&p.plain_url, p.read) {
        (Some(plain), Read::Queue) => client.get(format!("{plain}/queue")),
        (Some(plain), Read::Conversation) => client.get(format!("{plain}/conversations/{id}")),
        (None, read) => {
            let body = match read {
                Read::Queue => json!({"query": QUEUE}),
                Read::Conversation => {
                    json!({"query": CONVERSATION, "variables": {"id": id.to_string()}})
                }
            };
            client
                .post(format!("{}/graphql", p.url))
                .bearer_auth(&p.admin_token)
                .json(&body)
        }
    }
}

/// List items in one answer (conversations and messages), to show both
/// endpoints return the same amount.
fn rows(v: &Value) -> usize {
    match v {
        Value::Array(items) => items.len() + items.iter().map(rows).sum::<usize>(),
        Value::Object(map) => map.values().map(rows).sum(),
        _ => 0,
    }
}

pub async fn run(client: reqwest::Client, p: Params) -> anyhow::Result<Value> {
    anyhow::ensure!(!p.ids.is_empty(), "no conversation ids to read");
    let sample: Value = request(&client, &p, 0).send().await?.json().await?;
    anyhow::ensure!(sample.get("errors").is_none(), "the read failed: {sample}");
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let p = Arc::new(p);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(p.seconds);
    let workers = (0..p.concurrency).map(|_| {
        let (client, p, next, errors) = (client.clone(), p.clone(), next.clone(), errors.clone());
        tokio::spawn(async move {
            let mut hist = histogram();
            while Instant::now() < deadline {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                let ok = match request(&client, &p, seq).send().await {
                    Ok(r) if r.status().is_success() => r
                        .bytes()
                        .await
                        .is_ok_and(|b| !b.windows(9).any(|w| w == b"\"errors\":")),
                    _ => false,
                };
                if ok {
                    record_since(&mut hist, t0);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            hist
        })
    });
    let hist = merged(workers).await?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(json!({
        "scenario": "reads",
        "read": match p.read { Read::Queue => "queue", Read::Conversation => "conversation" },
        "endpoint": if p.plain_url.is_some() { "plain" } else { "graphql" },
        "requests_ok": hist.len(),
        "errors": errors.load(Ordering::Relaxed),
        "seconds": elapsed,
        "per_second": hist.len() as f64 / elapsed,
        "latency_ms": percentiles(&hist),
        "concurrency": p.concurrency,
        "rows_per_answer": rows(&sample),
    }))
}
