//! Signed webhook deliveries, one inbound message each (text, or with `mix`
//! a rotation of text, photo, location, button reply and reaction), flat out
//! or at a fixed rate: ingest throughput and acknowledgement latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{
    delivery_of, histogram, merged, mixed_message, percentiles, post_delivery, record_since,
};

pub struct Params {
    pub url: String,
    pub secret: String,
    pub phone_number_id: String,
    pub concurrency: usize,
    pub messages: u64,
    pub customers: u64,
    pub rate: u64,
    pub mix: bool,
}

pub async fn run(client: reqwest::Client, p: Params) -> anyhow::Result<Value> {
    let run = crate::client::unix_micros();
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let p = Arc::new(p);
    let started = Instant::now();
    let per_worker_interval =
        (p.rate > 0).then(|| Duration::from_secs_f64(p.concurrency as f64 / p.rate as f64));
    let workers = (0..p.concurrency).map(|_| {
        let (client, p, next, errors) = (client.clone(), p.clone(), next.clone(), errors.clone());
        tokio::spawn(async move {
            let mut hist = histogram();
            let mut ticker = per_worker_interval.map(tokio::time::interval);
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= p.messages {
                    break;
                }
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let wa_id = format!("39{:010}", seq % p.customers);
                let id = format!("wamid.LOAD{run:x}{seq:08}");
                let message = mixed_message(if p.mix { seq } else { 0 });
                let body = delivery_of(&p.phone_number_id, &wa_id, &id, message);
                let t0 = Instant::now();
                if post_delivery(&client, &p.url, &p.secret, body).await {
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
        "scenario": "webhook",
        "deliveries_ok": hist.len(),
        "errors": errors.load(Ordering::Relaxed),
        "seconds": elapsed,
        "per_second": hist.len() as f64 / elapsed,
        "latency_ms": percentiles(&hist),
        "concurrency": p.concurrency,
        "rate": p.rate,
        "mix": p.mix,
    }))
}
