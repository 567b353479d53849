//! Times each dashboard metrics query against the database in `DATABASE_URL`
//! (fill it first with `helpdesk demo --conversations N`): one warm-up run,
//! then `BENCH_RUNS` runs (default 20) of each, reporting p50 / p95 / max in
//! milliseconds. The range is the `BENCH_DAYS` days (default 30) ending now,
//! in Europe/Rome; hourly series cover at most 7 days.
//!
//! `DATABASE_URL=postgres://…/bench_metrics BENCH_DAYS=7 cargo run --example bench_metrics`

use std::sync::Arc;
use std::time::Instant;

use api::Config;
use api::startup::open_domain;
use chrono::{Duration, Utc};
use domain::billing::{BillingFilter, Granularity as BillingGranularity};
use domain::events::NoEvents;
use domain::metrics::{Dimension, Granularity, MetricsFilter, MetricsQuery};
use domain::{Actor, SystemClock};
use entity::Role;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config::load()?;
    let (domain, _) = open_domain(&config, Arc::new(SystemClock), Arc::new(NoEvents)).await?;
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let actor = Actor::api_token(0, Role::Analyst);
    let to = Utc::now();
    let days: i64 = std::env::var("BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let from = to - Duration::days(days);
    let q = |g: Granularity, d: Option<Dimension>| {
        MetricsQuery::new(from, to, g, "Europe/Rome", d, MetricsFilter::default())
    };
    let day = q(Granularity::Day, None)?;
    let by_agent = q(Granularity::Day, Some(Dimension::Agent))?;
    let by_tag = q(Granularity::Day, Some(Dimension::Tag))?;
    let hourly_week = MetricsQuery::new(
        to - Duration::days(days.min(7)),
        to,
        Granularity::Hour,
        "Europe/Rome",
        None,
        MetricsFilter::default(),
    )?;
    println!("range {from} .. {to} ({days} d), {runs} runs each after one warm-up");
    println!(
        "{:<34} {:>9} {:>9} {:>9}",
        "query", "p50 ms", "p95 ms", "max ms"
    );
    macro_rules! bench {
        ($name:expr, $call:expr) => {{
            $call.await?;
            let mut ms = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t = Instant::now();
                $call.await?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            ms.sort_by(|a, b| a.total_cmp(b));
            let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
            println!(
                "{:<34} {:>9.1} {:>9.1} {:>9.1}",
                $name,
                pct(0.5),
                pct(0.95),
                ms[ms.len() - 1]
            );
        }};
    }
    bench!("overview", domain.metrics_overview(&actor, &day));
    bench!("series by day", domain.metrics_series(&actor, &day));
    bench!(
        "series by hour (≤ 7 d)",
        domain.metrics_series(&actor, &hourly_week)
    );
    bench!(
        "byDimension agent",
        domain.metrics_by_dimension(&actor, &by_agent)
    );
    bench!(
        "byDimension tag",
        domain.metrics_by_dimension(&actor, &by_tag)
    );
    bench!("agents", domain.agent_kpis(&actor, &day));
    bench!("agentRanking (2 × 7 d)", domain.agent_ranking(&actor, &day));
    bench!("funnel (range + previous)", domain.funnel(&actor, &day));
    bench!(
        "timeOfDay (range + 7 d)",
        domain.time_of_day(&actor, &day, 150.0, 3)
    );
    bench!("waitingTime", domain.waiting_time(&actor, &day));
    bench!("repeatContacts", domain.repeat_contacts(&actor, &day));
    bench!(
        "cost by day",
        domain.billing(
            &actor,
            BillingFilter {
                from,
                to,
                channel_id: None,
                conversation_id: None,
                granularity: BillingGranularity::Day,
            },
        )
    );
    Ok(())
}
