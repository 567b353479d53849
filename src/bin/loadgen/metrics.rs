//! Dashboard queries through GraphQL: `concurrency` BI clients asking for the
//! core KPIs, the daily series and the per-agent KPIs of the last `days`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{graphql, histogram, percentiles, record_since};

pub struct Params {
    pub url: String,
    pub admin_token: String,
    pub concurrency: usize,
    pub seconds: u64,
    pub days: i64,
}

const DASHBOARD: &str = "query($r: MetricsRangeInput!){ metrics(range: $r){ overview { conversations responded firstResponseMedianSeconds resolved resolutionRate } series { bucket kpis { conversations resolved } } agents { agentId } } }";

pub async fn run(client: reqwest::Client, p: Params) -> anyhow::Result<Value> {
    let to = chrono::Utc::now();
    let range = json!({"r": {"from": (to - chrono::Duration::days(p.days)).to_rfc3339(),
        "to": to.to_rfc3339(), "granularity": "DAY", "timeZone": "Europe/Rome"}});
    graphql(
        &client,
        &p.url,
        Some(&p.admin_token),
        DASHBOARD,
        range.clone(),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(p.seconds);
    let started = Instant::now();
    let workers = (0..p.concurrency).map(|_| {
        let (client, url, token, range) = (
            client.clone(),
            p.url.clone(),
            p.admin_token.clone(),
            range.clone(),
        );
        tokio::spawn(async move {
            let (mut hist, mut errors) = (histogram(), 0u64);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match graphql(&client, &url, Some(&token), DASHBOARD, range.clone()).await {
                    Ok(_) => {
                        record_since(&mut hist, t0);
                    }
                    Err(_) => errors += 1,
                }
            }
            (hist, errors)
        })
    });
    let (mut hist, mut errors) = (histogram(), 0);
    for r in futures_util::future::join_all(workers).await {
        let (h, e) = r?;
        hist.add(h)?;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(json!({
        "scenario": "metrics",
        "days": p.days,
        "concurrency": p.concurrency,
        "requests_ok": hist.len(),
        "errors": errors,
        "per_second": hist.len() as f64 / elapsed,
        "latency_ms": percentiles(&hist),
    }))
}
