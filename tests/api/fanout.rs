//! Fan-out between instances through Redis: two `api::Application`s in this
//! process, with different instance ids, sharing one database (a SQLite file,
//! or the PostgreSQL test database) and one Redis, count as two servers.
//!
//! - Tests on the shared Redis run only when TEST_REDIS_URL is set; each uses
//!   its own channel, so concurrent tests do not hear each other.
//! - The outage test starts a private `redis-server` (only the binary is
//!   needed), stops it and starts it again on the same port.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use api::Config;
use api::events::BusMetricsSnapshot;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with, spawn_instance};
use crate::subscriptions::{
    LEGACY, LOCKS, OPEN, TRANSPORT, Ws, next_data, next_json, quiet, session, subscribe,
};

/// Removes a SQLite database file (and its WAL files) at the end of a test.
struct TempDb(Option<PathBuf>);

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// Two instances on one database and one Redis (URL and channel).
async fn cluster(redis_url: &str) -> (TestApp, TestApp, TempDb) {
    let channel = format!("helpdesk:test:{}", uuid::Uuid::new_v4().simple());
    let sqlite = std::env::var("TEST_DATABASE_URL")
        .is_err()
        .then(|| std::env::temp_dir().join(format!("hd-fanout-{}.db", uuid::Uuid::new_v4())));
    let redis = |c: &mut Config, name: &str| {
        c.redis_url = Some(redis_url.to_string());
        c.redis_channel = channel.clone();
        c.instance_id = Some(name.to_string());
    };
    let a = spawn_app_with(|c| {
        redis(c, "instance-a");
        if let Some(path) = &sqlite {
            c.database_url = format!("sqlite://{}?mode=rwc", path.display());
        }
    })
    .await;
    let b = spawn_instance(&a, |c| redis(c, "instance-b")).await;
    (a, b, TempDb(sqlite))
}

fn metrics(app: &TestApp) -> BusMetricsSnapshot {
    app.events.metrics().snapshot()
}

/// Polls `check` every 100 ms until it holds, for at most `secs` seconds.
async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn subscribed(app: &TestApp) {
    eventually(10, "subscribed to redis", async || {
        metrics(app).redis_subscribed == 1
    })
    .await;
}

async fn readyz(app: &TestApp) -> u16 {
    app.client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn shared_redis() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").ok();
    if url.is_none() {
        println!("note: TEST_REDIS_URL is not set; skipping a test that needs Redis");
    }
    url
}

async fn lock_watch(app: &TestApp, protocol: &str) -> Ws {
    let mut ws = session(app, protocol, &app.admin_token).await;
    subscribe(&mut ws, protocol, "l", LOCKS, json!({})).await;
    ws
}

#[tokio::test]
async fn a_lock_taken_on_one_instance_reaches_a_subscriber_on_the_other_once() {
    let Some(url) = shared_redis() else { return };
    let (a, b, _db) = cluster(&url).await;
    subscribed(&a).await;
    subscribed(&b).await;
    assert_eq!(readyz(&a).await, 200);
    let channel = a.seed_channel().await;
    let id = a.seed_conversation(channel, None).await.to_string();
    let mut on_b = lock_watch(&b, TRANSPORT).await;
    let mut on_a = lock_watch(&a, LEGACY).await;

    a.gql(&a.admin_token, OPEN, json!({"id": id})).await.data();

    let remote = next_data(&mut on_b).await;
    assert_eq!(remote["lockChanged"]["conversationId"], id);
    assert_eq!(remote["lockChanged"]["holder"]["name"], "Administrator");
    let local = next_data(&mut on_a).await;
    assert_eq!(local["lockChanged"]["conversationId"], id);
    // Exactly once on each: A's own copy back from Redis is dropped.
    quiet(&mut on_a, Duration::from_secs(1)).await;
    quiet(&mut on_b, Duration::from_millis(200)).await;
    // Every event an instance wrote to Redis came back once, and was dropped.
    for app in [&a, &b] {
        eventually(5, "echoes dropped", async || {
            let m = metrics(app);
            m.redis_echoes_dropped == m.redis_published
        })
        .await;
    }
    let (ma, mb) = (metrics(&a), metrics(&b));
    assert!(
        ma.redis_published >= 1 && mb.redis_received >= 1,
        "{ma:?} {mb:?}"
    );
}

#[tokio::test]
async fn changes_on_either_instance_reach_subscribers_on_both() {
    let Some(url) = shared_redis() else { return };
    let (a, b, _db) = cluster(&url).await;
    subscribed(&a).await;
    subscribed(&b).await;
    let channel = a.seed_channel().await;
    let id = a.seed_conversation(channel, None).await.to_string();
    let notes = "subscription($c:ID!){ noteAdded(conversationId:$c){ body } }";
    let mut on_a = session(&a, TRANSPORT, &a.admin_token).await;
    subscribe(&mut on_a, TRANSPORT, "n", notes, json!({"c": id})).await;
    let mut on_b = session(&b, TRANSPORT, &b.admin_token).await;
    subscribe(&mut on_b, TRANSPORT, "n", notes, json!({"c": id})).await;
    let add = "mutation($c:ID!,$b:String!){ addNote(conversationId:$c, body:$b){ id } }";
    a.gql(&a.admin_token, add, json!({"c": id, "b": "from A"}))
        .await
        .data();
    b.gql(&b.admin_token, add, json!({"c": id, "b": "from B"}))
        .await
        .data();
    for ws in [&mut on_a, &mut on_b] {
        let mut bodies = vec![
            next_data(ws).await["noteAdded"]["body"].clone(),
            next_data(ws).await["noteAdded"]["body"].clone(),
        ];
        bodies.sort_by_key(|b| b.to_string());
        assert_eq!(bodies, [json!("from A"), json!("from B")]);
        quiet(ws, Duration::from_millis(500)).await;
    }
}

/// A private `redis-server` this test may stop and start again.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// None (with a note) when `redis-server` is not on PATH.
    async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut redis = Self { port, child: None };
        match redis.spawn().await {
            Ok(()) => Some(redis),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("note: redis-server is not on PATH; skipping the Redis outage test");
                None
            }
            Err(e) => panic!("redis-server did not start: {e}"),
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> std::io::Result<()> {
        let port = self.port.to_string();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server is not listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn redis_going_away_degrades_fan_out_only_and_it_resumes_when_redis_returns() {
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let (a, b, _db) = cluster(&redis.url()).await;
    subscribed(&a).await;
    subscribed(&b).await;
    assert_eq!(readyz(&a).await, 200);
    let channel = a.seed_channel().await;
    let first = a.seed_conversation(channel, None).await.to_string();
    let second = a.seed_conversation(channel, None).await.to_string();
    let mut on_a = lock_watch(&a, TRANSPORT).await;
    let mut on_b = lock_watch(&b, TRANSPORT).await;
    a.gql(&a.admin_token, OPEN, json!({"id": first}))
        .await
        .data();
    assert_eq!(
        next_data(&mut on_b).await["lockChanged"]["conversationId"],
        first
    );
    assert_eq!(
        next_data(&mut on_a).await["lockChanged"]["conversationId"],
        first
    );

    // Redis goes away.
    redis.stop();
    eventually(10, "B noticed Redis is gone", async || {
        metrics(&b).redis_subscribed == 0
    })
    .await;
    let body = a
        .client
        .get(format!("{}/readyz", a.address))
        .send()
        .await
        .unwrap();
    assert_eq!(body.status().as_u16(), 503);
    let body: serde_json::Value = body.json().await.unwrap();
    assert_eq!(body["redis"], "unreachable");
    assert_eq!(body["database"], "ok");
    // Queries and mutations still work, on both instances.
    let page = "query{ conversations(first:5){ edges { node { id } } } }";
    a.gql(&a.admin_token, page, json!({})).await.data();
    b.gql(&b.admin_token, page, json!({})).await.data();
    let failures_before = metrics(&a).redis_publish_failures;
    let started = std::time::Instant::now();
    a.gql(&a.admin_token, OPEN, json!({"id": second}))
        .await
        .data();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "publishing must not hold the request: {:?}",
        started.elapsed()
    );
    // Local subscribers still get local events.
    assert_eq!(
        next_data(&mut on_a).await["lockChanged"]["conversationId"],
        second
    );
    eventually(10, "the failed publish is counted", async || {
        metrics(&a).redis_publish_failures > failures_before
    })
    .await;
    // B cannot hear it: it is lost, not delayed.
    quiet(&mut on_b, Duration::from_millis(500)).await;

    // Redis comes back on the same port: nothing is restarted.
    redis.spawn().await.expect("redis-server restarts");
    subscribed(&b).await;
    eventually(10, "A is ready again", async || readyz(&a).await == 200).await;
    // Fan-out resumes (the publisher reconnects on its next event, after at
    // most one backoff delay): renew the lock until B hears about it.
    let renew = "mutation($id:ID!){ renewLock(id:$id){ id } }";
    let mut heard = None;
    for _ in 0..20 {
        a.gql(&a.admin_token, renew, json!({"id": first}))
            .await
            .data();
        if let Ok(v) = tokio::time::timeout(Duration::from_millis(750), next_json(&mut on_b)).await
        {
            heard = Some(v);
            break;
        }
    }
    let heard = heard.expect("B hears A's events again");
    assert_eq!(
        heard["payload"]["data"]["lockChanged"]["conversationId"],
        first
    );
    let mb = metrics(&b);
    assert!(mb.redis_reconnects >= 1, "{mb:?}");
    println!("after the outage: A {:?}\nB {mb:?}", metrics(&a));
}
