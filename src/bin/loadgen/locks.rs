//! Lock contention: `editors` staff members race for the locks of a few
//! conversations. Each opens one of them in turn and, when it got the lock,
//! releases it after `hold`; every `openConversation` is timed, whether it took the
//! lock or was refused with `CONFLICT`. A lock taken while the loader's own
//! books say another holder has it is counted as a double hold (must be 0).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::{
    delivery, graphql, histogram, login, merged, percentiles, post_delivery, record_since,
    unix_micros,
};

pub struct Params {
    pub url: String,
    pub admin_token: String,
    pub secret: String,
    pub phone_number_id: String,
    pub editors: u32,
    pub conversations: u32,
    pub seconds: u64,
    /// How long a taken lock is kept before its release.
    pub hold: Duration,
}

const OPEN: &str = "mutation($id:ID!){ openConversation(id:$id){ id } }";
const RELEASE: &str = "mutation($id:ID!){ releaseLock(id:$id){ id } }";

/// Conversations to fight over, each opened by an inbound message.
pub async fn conversations(client: &reqwest::Client, p: &Params) -> anyhow::Result<Vec<String>> {
    let mut ids = vec![];
    for i in 0..p.conversations.max(1) {
        let wa_id = format!("6{:06}{i:05}", unix_micros() % 1_000_000);
        let body = delivery(
            &p.phone_number_id,
            &wa_id,
            &format!("wamid.LOCK{wa_id}"),
            "Ciao",
        );
        anyhow::ensure!(
            post_delivery(client, &p.url, &p.secret, body).await,
            "the delivery creating a conversation was refused"
        );
        let data = graphql(
            client,
            &p.url,
            Some(&p.admin_token),
            "query($q:String!){ conversations(first: 1, filter: {search: $q}) { nodes { id } } }",
            json!({"q": wa_id}),
        )
        .await?;
        ids.push(
            data["conversations"]["nodes"][0]["id"]
                .as_str()
                .context("the new conversation is not listed")?
                .to_string(),
        );
    }
    Ok(ids)
}

pub async fn editors(client: &reqwest::Client, p: &Params) -> anyhow::Result<Vec<String>> {
    let mut tokens = vec![];
    for i in 0..p.editors {
        let email = format!("load-editor-{i}@loadgen.test");
        let created = graphql(
            client,
            &p.url,
            Some(&p.admin_token),
            "mutation($e:String!){ createStaff(input:{email:$e,name:$e,password:\"loadgen-editor-password\",role:EDITOR}){ id } }",
            json!({"e": email}),
        )
        .await;
        if let Err(e) = created
            && !e.to_string().contains("CONFLICT")
        {
            return Err(e);
        }
        tokens.push(login(client, &p.url, &email, "loadgen-editor-password").await?);
    }
    Ok(tokens)
}

pub async fn run(client: reqwest::Client, p: Params) -> anyhow::Result<Value> {
    let ids = Arc::new(conversations(&client, &p).await?);
    let tokens = editors(&client, &p).await?;
    let held: Arc<Vec<AtomicBool>> = Arc::new(ids.iter().map(|_| AtomicBool::new(false)).collect());
    let [acquired, refused, errors, double] = [(); 4].map(|_| Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(p.seconds);
    let url = Arc::new(p.url.clone());
    let hold = p.hold;
    let workers = tokens.into_iter().enumerate().map(|(w, token)| {
        let (client, url, ids, held) = (client.clone(), url.clone(), ids.clone(), held.clone());
        let (acquired, refused, errors, double) = (
            acquired.clone(),
            refused.clone(),
            errors.clone(),
            double.clone(),
        );
        tokio::spawn(async move {
            let mut hist = histogram();
            let mut turn = w;
            while Instant::now() < deadline {
                let c = turn % ids.len();
                turn += 1;
                let vars = json!({"id": ids[c]});
                let t0 = Instant::now();
                let result = graphql(&client, &url, Some(&token), OPEN, vars.clone()).await;
                record_since(&mut hist, t0);
                match result {
                    Ok(_) => {
                        acquired.fetch_add(1, Ordering::Relaxed);
                        if held[c].swap(true, Ordering::SeqCst) {
                            double.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(hold).await;
                        held[c].store(false, Ordering::SeqCst);
                        if graphql(&client, &url, Some(&token), RELEASE, vars)
                            .await
                            .is_err()
                        {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) if e.to_string().contains("CONFLICT") => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            hist
        })
    });
    let hist = merged(workers).await?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(json!({
        "scenario": "locks",
        "editors": p.editors,
        "conversations": p.conversations,
        "attempts": hist.len(),
        "attempts_per_second": hist.len() as f64 / elapsed,
        "acquired": acquired.load(Ordering::Relaxed),
        "refused": refused.load(Ordering::Relaxed),
        "double_holds": double.load(Ordering::Relaxed),
        "errors": errors.load(Ordering::Relaxed),
        "seconds": elapsed,
        "hold_ms": p.hold.as_millis() as u64,
        "open_latency_ms": percentiles(&hist),
    }))
}
