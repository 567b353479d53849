//! `loadgen`: drives a running helpdesk the way production does and reports
//! throughput and latency percentiles (HDR histogram), as text or JSON.
//!
//! `loadgen webhook` posts signed WhatsApp deliveries (one text message each,
//! many customers) flat out or at a fixed rate; see BENCHMARKS.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "loadgen", about = "Load generator for the helpdesk")]
struct Cli {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Signed webhook deliveries, one inbound text message each.
    Webhook {
        /// Admin login used to create the channel if it is missing.
        #[arg(long, default_value = "admin@example.com")]
        admin_email: String,
        #[arg(long, env = "HELPDESK_ADMIN_PASSWORD")]
        admin_password: String,
        /// App secret the deliveries are signed with (set on the channel).
        #[arg(long, default_value = "loadgen-app-secret")]
        secret: String,
        #[arg(long, default_value = "700000000000001")]
        phone_number_id: String,
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Deliveries to send in all.
        #[arg(long, default_value_t = 20_000)]
        messages: u64,
        /// Distinct customers the messages come from.
        #[arg(long, default_value_t = 5_000)]
        customers: u64,
        /// Deliveries per second in all (0: as fast as the server answers).
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
}

#[derive(Default)]
struct Outcome {
    ok: AtomicU64,
    errors: AtomicU64,
}

async fn graphql(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    vars: Value,
) -> anyhow::Result<Value> {
    let mut req = client
        .post(format!("{url}/graphql"))
        .json(&json!({"query": query, "variables": vars}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let body: Value = req.send().await?.json().await?;
    if let Some(errors) = body.get("errors") {
        anyhow::bail!("GraphQL error: {errors}");
    }
    Ok(body["data"].clone())
}

/// Creates the load channel with its app secret unless it exists.
async fn ensure_channel(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
    number: &str,
    secret: &str,
) -> anyhow::Result<()> {
    let login = graphql(
        client,
        url,
        None,
        "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ accessToken } }",
        json!({"e": email, "p": password}),
    )
    .await?;
    let token = login["login"]["accessToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let channels = graphql(
        client,
        url,
        Some(&token),
        "{ channels { phoneNumberId } }",
        json!({}),
    )
    .await?;
    let exists = channels["channels"]
        .as_array()
        .is_some_and(|list| list.iter().any(|c| c["phoneNumberId"] == number));
    if !exists {
        graphql(
            client,
            url,
            Some(&token),
            "mutation($n:String!,$s:String!){ createChannel(input:{name:\"Load test\", phoneNumberId:$n, appSecret:$s}){ id } }",
            json!({"n": number, "s": secret}),
        )
        .await?;
        // The server caches app secrets for two seconds.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(())
}

fn delivery(number: &str, run: u128, seq: u64, customers: u64) -> String {
    let from = format!("39{:010}", seq % customers);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": number},
        "contacts": [{"profile": {"name": format!("Cliente {}", seq % customers)}, "wa_id": from}],
        "messages": [{"from": from, "id": format!("wamid.LOAD{run:x}{seq:08}"), "timestamp": now.to_string(),
                      "type": "text", "text": {"body": "Buongiorno, dov'è il mio ordine?"}}]
    }}]}]})
    .to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let Scenario::Webhook {
        admin_email,
        admin_password,
        secret,
        phone_number_id,
        concurrency,
        messages,
        customers,
        rate,
    } = cli.scenario;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    ensure_channel(
        &client,
        &cli.url,
        &admin_email,
        &admin_password,
        &phone_number_id,
        &secret,
    )
    .await?;

    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let next = Arc::new(AtomicU64::new(0));
    let outcome = Arc::new(Outcome::default());
    let started = Instant::now();
    let per_worker_interval =
        (rate > 0).then(|| Duration::from_secs_f64(concurrency as f64 / rate as f64));
    let workers = (0..concurrency).map(|_| {
        let (client, url, secret, number) = (
            client.clone(),
            cli.url.clone(),
            secret.clone(),
            phone_number_id.clone(),
        );
        let (next, outcome) = (next.clone(), outcome.clone());
        tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut ticker = per_worker_interval.map(tokio::time::interval);
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= messages {
                    break;
                }
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let body = delivery(&number, run, seq, customers);
                let sig = api::whatsapp::signature::sign(secret.as_bytes(), body.as_bytes());
                let t0 = Instant::now();
                let resp = client
                    .post(format!("{url}/webhooks/whatsapp"))
                    .header("Content-Type", "application/json")
                    .header("X-Hub-Signature-256", sig)
                    .body(body)
                    .send()
                    .await;
                let micros = t0.elapsed().as_micros() as u64;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        outcome.ok.fetch_add(1, Ordering::Relaxed);
                        let _ = hist.record(micros.max(1));
                    }
                    _ => {
                        outcome.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            hist
        })
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for h in futures_util::future::join_all(workers).await {
        hist.add(h?)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = outcome.ok.load(Ordering::Relaxed);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let result = json!({
        "scenario": "webhook",
        "deliveries_ok": ok,
        "errors": outcome.errors.load(Ordering::Relaxed),
        "seconds": elapsed,
        "per_second": ok as f64 / elapsed,
        "latency_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": hist.max() as f64 / 1000.0},
        "concurrency": concurrency,
        "rate": rate,
    });
    if cli.json {
        println!("{result}");
    } else {
        println!(
            "webhook: {ok} deliveries in {elapsed:.1} s = {:.0}/s, errors {}, latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
            ok as f64 / elapsed,
            result["errors"],
            ms(0.5),
            ms(0.9),
            ms(0.99),
            hist.max() as f64 / 1000.0
        );
    }
    Ok(())
}
