//! WebSocket subscribers: how many sockets one instance holds, the memory each
//! idle socket costs, and publish-to-receive latency of lock events.
//!
//! `n` sockets subscribe to `lockChanged` on one conversation (through
//! `--url`); `renewLock` is called `rate` times a second (through
//! `--publish-url`, another instance when the fan-out goes through Redis).
//! Latency runs from the event's `at` (stamped by the publishing instance
//! after commit) to its arrival at each subscriber: same machine, same clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::client::{
    delivery, graphql, histogram, micros_of, next_json, percentiles, pong, post_delivery, rss_kib,
    subscribe, unix_micros,
};

pub struct Params {
    pub url: String,
    pub publish_url: String,
    pub admin_token: String,
    pub secret: String,
    pub phone_number_id: String,
    pub subscribers: usize,
    pub rate: u64,
    pub seconds: u64,
    /// The subscribers' server process, to read its memory.
    pub server_pid: Option<u32>,
}

const LOCK_CHANGED: &str =
    "subscription($id: ID!) { lockChanged(conversationId: $id) { conversationId at } }";

/// A conversation to publish lock events on, created by an inbound message.
async fn conversation(client: &reqwest::Client, p: &Params) -> anyhow::Result<String> {
    let wa_id = format!("5{:011}", unix_micros() % 100_000_000_000);
    let body = delivery(
        &p.phone_number_id,
        &wa_id,
        &format!("wamid.SUBS{wa_id}"),
        "Ciao",
    );
    anyhow::ensure!(
        post_delivery(client, &p.publish_url, &p.secret, body).await,
        "the delivery creating the conversation was refused"
    );
    let data = graphql(
        client,
        &p.publish_url,
        Some(&p.admin_token),
        "query($q:String!){ conversations(first: 1, filter: {search: $q}) { nodes { id } } }",
        json!({"q": wa_id}),
    )
    .await?;
    let id = data["conversations"]["nodes"][0]["id"]
        .as_str()
        .context("the new conversation is not listed")?
        .to_string();
    graphql(
        client,
        &p.publish_url,
        Some(&p.admin_token),
        "mutation($id:ID!){ openConversation(id:$id){ id } }",
        json!({"id": id}),
    )
    .await?;
    Ok(id)
}

pub async fn run(client: reqwest::Client, p: Params) -> anyhow::Result<Value> {
    let conversation_id = conversation(&client, &p).await?;
    let rss_before = p.server_pid.and_then(rss_kib);

    // Connect in parallel, a hundred handshakes at a time.
    let connected = Instant::now();
    let sockets = futures_util::stream::iter(0..p.subscribers)
        .map(|_| {
            let (url, token, id) = (
                p.url.clone(),
                p.admin_token.clone(),
                conversation_id.clone(),
            );
            async move { subscribe(&url, &token, LOCK_CHANGED, json!({"id": id})).await }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    let connect_seconds = connected.elapsed().as_secs_f64();
    let failed = sockets.iter().filter(|s| s.is_err()).count();
    let sockets: Vec<_> = sockets.into_iter().filter_map(Result::ok).collect();
    // Let every subscription start and memory settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = p.server_pid.and_then(rss_kib);

    let received = Arc::new(AtomicU64::new(0));
    let listen_for = Duration::from_secs(p.seconds + 3);
    let listeners: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let received = received.clone();
            tokio::spawn(async move {
                let mut hist = histogram();
                let until = Instant::now() + listen_for;
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    let Ok(Ok(msg)) = tokio::time::timeout(left, next_json(&mut ws)).await else {
                        break;
                    };
                    match msg["type"].as_str() {
                        Some("ping") => {
                            let _ = pong(&mut ws).await;
                        }
                        Some("next") => {
                            let at = &msg["payload"]["data"]["lockChanged"]["at"];
                            if let Some(at) = micros_of(at) {
                                let _ = hist.record((unix_micros() - at).max(1) as u64);
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {}
                    }
                }
                hist
            })
        })
        .collect();

    let mut published = 0u64;
    let mut publish_errors = 0u64;
    if p.rate > 0 {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / p.rate as f64));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(p.seconds) {
            ticker.tick().await;
            let renewed = graphql(
                &client,
                &p.publish_url,
                Some(&p.admin_token),
                "mutation($id:ID!){ renewLock(id:$id){ id } }",
                json!({"id": conversation_id}),
            )
            .await;
            match renewed {
                Ok(_) => published += 1,
                Err(_) => publish_errors += 1,
            }
        }
    }
    let mut hist = histogram();
    for h in futures_util::future::join_all(listeners).await {
        hist.add(h?)?;
    }
    let held = p.subscribers - failed;
    let per_socket = match (rss_before, rss_after) {
        (Some(b), Some(a)) if held > 0 => Some(a.saturating_sub(b) as f64 * 1024.0 / held as f64),
        _ => None,
    };
    let expected = published * held as u64;
    Ok(json!({
        "scenario": "subscribers",
        "sockets_held": held,
        "sockets_failed": failed,
        "connect_seconds": connect_seconds,
        "server_rss_kib": {"before": rss_before, "after": rss_after},
        "bytes_per_idle_socket": per_socket,
        "events_published": published,
        "publish_errors": publish_errors,
        "deliveries_expected": expected,
        "deliveries_received": received.load(Ordering::Relaxed),
        "deliveries_per_second": received.load(Ordering::Relaxed) as f64 / p.seconds.max(1) as f64,
        "publish_to_receive_ms": percentiles(&hist),
    }))
}
