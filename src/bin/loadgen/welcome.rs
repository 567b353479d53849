//! Inbound message to welcome reply in the outbox: each delivery comes from a
//! new customer at a fixed rate, with a first-contact rule enabled. The
//! welcome is queued in the outbox inside the ingest transaction, so the
//! delivery's 200 is the moment it is there: latency runs from posting to
//! the 200. The run then checks, through the automation report, that every
//! delivery got its welcome.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{delivery, graphql, histogram, percentiles, post_delivery};

pub struct Params {
    pub url: String,
    pub admin_token: String,
    pub secret: String,
    pub phone_number_id: String,
    pub rate: u64,
    pub seconds: u64,
}

const RULE: &str = "Loadgen welcome";

/// Creates the first-contact rule unless it exists.
async fn welcome_rule(client: &reqwest::Client, p: &Params) -> anyhow::Result<()> {
    let rules = graphql(
        client,
        &p.url,
        Some(&p.admin_token),
        "{ autoReplyRules { name } }",
        json!({}),
    )
    .await?;
    let exists = rules["autoReplyRules"]
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["name"] == RULE));
    if !exists {
        graphql(
            client,
            &p.url,
            Some(&p.admin_token),
            "mutation($i: AutoReplyRuleCreateInput!){ createAutoReplyRule(input:$i){ rule { id } } }",
            json!({"i": {"name": RULE, "triggerMode": "FIRST_CONTACT",
                "variants": ["Ciao {{name}}! Abbiamo ricevuto il tuo messaggio n. {{conversation}}."]}}),
        )
        .await?;
    }
    Ok(())
}

/// Automated replies recorded so far (today ± a day).
async fn automated_replies(client: &reqwest::Client, p: &Params) -> anyhow::Result<i64> {
    let now = chrono::Utc::now();
    let r = graphql(
        client,
        &p.url,
        Some(&p.admin_token),
        "query($f:DateTime!,$t:DateTime!){ automationReport(from:$f, to:$t){ automatedReplies } }",
        json!({"f": now - chrono::Duration::days(1), "t": now + chrono::Duration::days(1)}),
    )
    .await?;
    r["automationReport"]["automatedReplies"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no automatedReplies in {r}"))
}

pub async fn run(client: reqwest::Client, p: Params) -> anyhow::Result<Value> {
    welcome_rule(&client, &p).await?;
    let before = automated_replies(&client, &p).await?;
    let total = p.rate * p.seconds;
    let run = crate::client::unix_micros();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / p.rate as f64));
    let mut inflight = Vec::with_capacity(total as usize);
    for seq in 0..total {
        ticker.tick().await;
        let wa_id = format!("5{:011}", (run as u64 % 1_000_000) * 10_000 + seq);
        let body = delivery(
            &p.phone_number_id,
            &wa_id,
            &format!("wamid.WELCOME{run:x}{seq:06}"),
            "Buongiorno",
        );
        let (client, url, secret) = (client.clone(), p.url.clone(), p.secret.clone());
        inflight.push(tokio::spawn(async move {
            let t0 = Instant::now();
            post_delivery(&client, &url, &secret, body)
                .await
                .then(|| t0.elapsed())
        }));
    }
    let mut hist = histogram();
    let mut errors = 0u64;
    for h in inflight {
        match h.await? {
            Some(d) => {
                let _ = hist.record((d.as_micros() as u64).max(1));
            }
            None => errors += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let welcomed = automated_replies(&client, &p).await? - before;
    Ok(json!({
        "scenario": "welcome",
        "rate": p.rate,
        "messages": total,
        "post_errors": errors,
        "seconds": elapsed,
        "per_second": hist.len() as f64 / elapsed,
        "welcomes_queued": welcomed,
        "inbound_to_welcome_in_outbox_ms": percentiles(&hist),
    }))
}
