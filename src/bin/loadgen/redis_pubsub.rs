//! The baseline for the subscriber rows: raw Redis PUBLISH / SUBSCRIBE,
//! measured the same way. `subscribers` connections subscribe to one
//! channel; a publisher sends `rate` messages a second, each carrying its
//! send time; latency runs from that time to the arrival at each subscriber.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::client::{histogram, percentiles, unix_micros};

pub struct Params {
    pub redis_url: String,
    pub subscribers: usize,
    pub rate: u64,
    pub seconds: u64,
}

const CHANNEL: &str = "loadgen:pubsub";

pub async fn run(p: Params) -> anyhow::Result<Value> {
    let client = redis::Client::open(p.redis_url.as_str())?;
    let mut streams = vec![];
    for _ in 0..p.subscribers {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        streams.push(pubsub);
    }
    let total = p.rate * p.seconds;
    let receivers = streams.into_iter().map(|mut pubsub| {
        tokio::spawn(async move {
            let mut hist = histogram();
            let mut stream = pubsub.on_message();
            // A lost message must not hang the run: every wait is bounded.
            while let Ok(Some(msg)) =
                tokio::time::timeout(Duration::from_secs(p.seconds + 2), stream.next()).await
            {
                let sent: i64 = msg.get_payload().unwrap_or_default();
                let _ = hist.record((unix_micros() - sent).max(1) as u64);
                if hist.len() >= total {
                    break;
                }
            }
            hist
        })
    });
    let receivers: Vec<_> = receivers.collect();
    let mut conn = client.get_multiplexed_async_connection().await?;
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / p.rate as f64));
    for _ in 0..total {
        ticker.tick().await;
        redis::cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(unix_micros())
            .query_async::<i64>(&mut conn)
            .await?;
    }
    let published = started.elapsed().as_secs_f64();
    let mut hist = histogram();
    for h in futures_util::future::join_all(receivers).await {
        hist.add(h?)?;
    }
    Ok(json!({
        "scenario": "redis-pubsub",
        "subscribers": p.subscribers,
        "events": total,
        "events_per_second": total as f64 / published,
        "deliveries": hist.len(),
        "expected_deliveries": total * p.subscribers as u64,
        "deliveries_per_second": hist.len() as f64 / published,
        "latency_ms": percentiles(&hist),
    }))
}
