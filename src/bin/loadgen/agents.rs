//! Agents at work: `agents` Editors each work through conversations of their
//! own in turn: open (the lock), reply, release. Each step is timed on its
//! own; a reply goes to the outbox like any agent message. Every customer is
//! new, so WhatsApp's limit of 5 messages a minute to a new customer applies:
//! refused replies (`RATE_LIMITED`) are counted apart.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{graphql, histogram, percentiles, record_since};
use crate::locks::{Params, conversations, editors};

const OPEN: &str = "mutation($id:ID!){ openConversation(id:$id){ id } }";
const REPLY: &str = "mutation($id:ID!){ sendMessage(input:{conversationId:$id, text:\"Grazie, controllo subito il suo ordine.\"}){ id } }";
const RELEASE: &str = "mutation($id:ID!){ releaseLock(id:$id){ id } }";

/// `p.editors` agents sharing `p.conversations` conversations, each its own
/// slice (no lock contention).
pub async fn run(client: reqwest::Client, p: Params) -> anyhow::Result<Value> {
    let ids = conversations(&client, &p).await?;
    let tokens = editors(&client, &p).await?;
    let deadline = Instant::now() + Duration::from_secs(p.seconds);
    let started = Instant::now();
    let workers = tokens.into_iter().enumerate().map(|(w, token)| {
        let (client, url) = (client.clone(), p.url.clone());
        let per_agent = (ids.len() / p.editors.max(1) as usize).max(1);
        let mine: Vec<String> = ids
            .iter()
            .cycle()
            .skip(w * per_agent)
            .take(per_agent)
            .cloned()
            .collect();
        tokio::spawn(async move {
            let mut hists = [histogram(), histogram(), histogram()];
            let (mut errors, mut limited) = (0u64, 0u64);
            for id in mine.iter().cycle() {
                if Instant::now() >= deadline {
                    break;
                }
                for (step, query) in [OPEN, REPLY, RELEASE].into_iter().enumerate() {
                    let t0 = Instant::now();
                    match graphql(&client, &url, Some(&token), query, json!({"id": id})).await {
                        Ok(_) => {
                            record_since(&mut hists[step], t0);
                        }
                        Err(e) if e.to_string().contains("RATE_LIMITED") => limited += 1,
                        Err(_) => errors += 1,
                    }
                }
            }
            (hists, errors, limited)
        })
    });
    let mut all = [histogram(), histogram(), histogram()];
    let (mut errors, mut limited) = (0, 0);
    for r in futures_util::future::join_all(workers).await {
        let (hists, e, l) = r?;
        for (into, h) in all.iter_mut().zip(hists) {
            into.add(h)?;
        }
        errors += e;
        limited += l;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(json!({
        "scenario": "agents",
        "agents": p.editors,
        "replies": all[1].len(),
        "replies_per_second": all[1].len() as f64 / elapsed,
        "errors": errors,
        "rate_limited_replies": limited,
        "conversations": p.conversations,
        "seconds": elapsed,
        "open_ms": percentiles(&all[0]),
        "reply_ms": percentiles(&all[1]),
        "release_ms": percentiles(&all[2]),
    }))
}
