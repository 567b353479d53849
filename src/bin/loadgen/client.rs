//! What every scenario needs: GraphQL over HTTP, signed deliveries, WebSocket
//! subscriptions, histograms.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Microsecond histogram up to one minute.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds")
}

/// Records the time since `t0` in microseconds (at least 1, the histogram's floor).
pub fn record_since(hist: &mut Histogram<u64>, t0: Instant) {
    let _ = hist.record((t0.elapsed().as_micros() as u64).max(1));
}

/// Waits for workers that each return a histogram and merges them.
pub async fn merged(
    workers: impl IntoIterator<Item = tokio::task::JoinHandle<Histogram<u64>>>,
) -> anyhow::Result<Histogram<u64>> {
    let mut hist = histogram();
    for h in futures_util::future::join_all(workers).await {
        hist.add(h?)?;
    }
    Ok(hist)
}

/// p50 / p90 / p99 / max in milliseconds.
pub fn percentiles(hist: &Histogram<u64>) -> Value {
    let ms = |v: u64| v as f64 / 1000.0;
    json!({
        "count": hist.len(),
        "p50": ms(hist.value_at_quantile(0.5)),
        "p90": ms(hist.value_at_quantile(0.9)),
        "p99": ms(hist.value_at_quantile(0.99)),
        "max": ms(hist.max()),
    })
}

pub fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// Microseconds since the epoch of an RFC 3339 timestamp from the server.
pub fn micros_of(at: &Value) -> Option<i64> {
    let at = chrono::DateTime::parse_from_rfc3339(at.as_str()?).ok()?;
    Some(at.timestamp_micros())
}

pub async fn graphql(
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
        bail!("GraphQL error: {errors}");
    }
    Ok(body["data"].clone())
}

pub async fn login(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let data = graphql(
        client,
        url,
        None,
        "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ accessToken } }",
        json!({"e": email, "p": password}),
    )
    .await?;
    data["login"]["accessToken"]
        .as_str()
        .map(str::to_string)
        .context("login answered without a token")
}

/// Creates the load channel with its app secret unless it exists.
pub async fn ensure_channel(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    number: &str,
    secret: &str,
) -> anyhow::Result<()> {
    let channels = graphql(
        client,
        url,
        Some(token),
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
            Some(token),
            "mutation($n:String!,$s:String!){ createChannel(input:{name:\"Load test\", phoneNumberId:$n, appSecret:$s}){ id } }",
            json!({"n": number, "s": secret}),
        )
        .await?;
        // The server caches app secrets for two seconds.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(())
}

/// A Cloud API delivery of one inbound text message.
pub fn delivery(number: &str, wa_id: &str, message_id: &str, text: &str) -> String {
    delivery_of(
        number,
        wa_id,
        message_id,
        json!({"type": "text", "text": {"body": text}}),
    )
}

/// The `n`-th of a rotation of the message types customers send most: text,
/// photo, location, button reply, reaction.
pub fn mixed_message(n: u64) -> Value {
    match n % 5 {
        0 => json!({"type": "text", "text": {"body": "Buongiorno, dov'è il mio ordine?"}}),
        1 => {
            json!({"type": "image", "image": {"id": format!("MEDIA{n}"), "mime_type": "image/jpeg",
            "sha256": "0f3c", "caption": "Il pacco è arrivato rotto"}})
        }
        2 => json!({"type": "location", "location": {"latitude": 45.4642, "longitude": 9.19,
            "name": "Consegna", "address": "Piazza del Duomo, Milano"}}),
        3 => json!({"type": "interactive", "interactive": {"type": "button_reply",
            "button_reply": {"id": "track", "title": "Traccia ordine"}}}),
        _ => {
            json!({"type": "reaction", "reaction": {"message_id": format!("wamid.OUT{n}"), "emoji": "👍"}})
        }
    }
}

/// A Cloud API delivery of one inbound message (`message`: its type and
/// type-specific object).
pub fn delivery_of(number: &str, wa_id: &str, message_id: &str, message: Value) -> String {
    let now = unix_micros() / 1_000_000;
    let mut m = json!({"from": wa_id, "id": message_id, "timestamp": now.to_string()});
    if let (Some(m), Value::Object(fields)) = (m.as_object_mut(), message) {
        m.extend(fields);
    }
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": number},
        "contacts": [{"profile": {"name": format!("Cliente {wa_id}")}, "wa_id": wa_id}],
        "messages": [m]
    }}]}]})
    .to_string()
}

/// Posts a signed delivery; true on a 2xx.
pub async fn post_delivery(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: String,
) -> bool {
    let sig = api::whatsapp::signature::sign(secret.as_bytes(), body.as_bytes());
    client
        .post(format!("{url}/webhooks/whatsapp"))
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", sig)
        .body(body)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// A `graphql-transport-ws` session, acknowledged, with one subscription.
pub async fn subscribe(url: &str, token: &str, query: &str, vars: Value) -> anyhow::Result<Ws> {
    let ws_url = format!("{}/graphql", url.replacen("http", "ws", 1));
    let mut request = ws_url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::text(init.to_string())).await?;
    loop {
        let msg = next_json(&mut ws).await?;
        match msg["type"].as_str() {
            Some("connection_ack") => break,
            Some("ping") => pong(&mut ws).await?,
            _ => bail!("no connection_ack: {msg}"),
        }
    }
    let sub =
        json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": vars}});
    ws.send(Message::text(sub.to_string())).await?;
    Ok(ws)
}

pub async fn pong(ws: &mut Ws) -> anyhow::Result<()> {
    ws.send(Message::text(json!({"type": "pong"}).to_string()))
        .await?;
    Ok(())
}

/// The next text frame as JSON (protocol pings are answered by the caller).
pub async fn next_json(ws: &mut Ws) -> anyhow::Result<Value> {
    loop {
        match ws.next().await.context("socket closed")?? {
            Message::Text(t) => return Ok(serde_json::from_str(&t)?),
            Message::Close(frame) => bail!("socket closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Resident memory of a local process, in KiB (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
