//! Redis pub/sub fan-out between instances.
//!
//! **Local first.** `publish` stamps the event with this instance, delivers it
//! to this process's subscribers at once (through the [`InProcessBus`]), then
//! queues it for Redis. The copy Redis sends back to us (origin == this
//! instance) is dropped, so local subscribers see every event exactly once,
//! and keep seeing local events while Redis is down. Events from other
//! instances arrive through one pub/sub connection per instance and are
//! handed to the same local bus.
//!
//! **Never blocking a request.** `publish` only does a `try_send` on a bounded
//! queue to a publisher task; a full queue drops the event and counts it. The
//! publisher fails fast while Redis is unreachable (reconnecting with capped
//! backoff on the next event), so the queue drains instead of piling up.
//! The subscriber reconnects with the same backoff (100 ms doubling to 5 s)
//! and pings its connection so that a silent network failure is noticed.
//! Warnings are rate-limited: one per 10 s per cause, with how many were
//! suppressed.
//!
//! Events lost while Redis is down are not replayed: live events are hints,
//! and clients refetch the state they show.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use domain::events::EVENT_VERSION;
use domain::{Event, EventPublisher};
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::time::{Instant, timeout};

use super::{BusMetrics, InProcessBus};

/// Events waiting for the publisher task; more are dropped and counted.
pub const PUBLISH_QUEUE: usize = 4096;
/// Connecting to Redis, and each command, give up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// `/readyz` must answer quickly even when Redis hangs.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(500);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the subscriber checks that its connection still answers.
const SUBSCRIBER_PING: Duration = Duration::from_secs(5);
/// At most one warning per cause in this period.
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct RedisBus {
    local: InProcessBus,
    queue: mpsc::Sender<Event>,
    health: Arc<HealthLink>,
    queue_full_log: Arc<RateLimitedLog>,
}

impl RedisBus {
    /// Spawns the publisher and subscriber tasks; they run until `stop`
    /// changes (or its sender is dropped). Does not wait for Redis.
    pub fn start(
        local: InProcessBus,
        url: &str,
        channel: &str,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let client = Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let (queue, pending) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(publish_loop(
            client.clone(),
            channel.to_string(),
            pending,
            local.metrics().clone(),
            stop.clone(),
        ));
        tokio::spawn(subscribe_loop(
            client.clone(),
            channel.to_string(),
            local.clone(),
            stop,
        ));
        tracing::info!(channel, instance = local.instance_id(), "event bus: redis");
        Ok(Self {
            local,
            queue,
            health: Arc::new(HealthLink {
                client,
                conn: Mutex::new(None),
            }),
            queue_full_log: Arc::new(RateLimitedLog::new(LOG_EVERY)),
        })
    }

    pub fn local(&self) -> &InProcessBus {
        &self.local
    }

    /// PING on a connection kept for health checks, within [`HEALTH_TIMEOUT`].
    pub async fn ping(&self) -> Result<(), String> {
        // Concurrent probes wait for one another, but never past the timeout.
        let Ok(mut slot) = timeout(HEALTH_TIMEOUT, self.health.conn.lock()).await else {
            return Err(format!("no answer within {HEALTH_TIMEOUT:?}"));
        };
        let client = &self.health.client;
        let result = timeout(HEALTH_TIMEOUT, async {
            if slot.is_none() {
                *slot = Some(connect(client).await?);
            }
            match slot.as_mut() {
                Some(conn) => redis::cmd("PING").query_async::<String>(conn).await,
                None => Err(RedisError::from((
                    redis::ErrorKind::Client,
                    "no connection",
                ))),
            }
        })
        .await;
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                *slot = None;
                Err(e.to_string())
            }
            Err(_) => {
                *slot = None;
                Err(format!("no answer within {HEALTH_TIMEOUT:?}"))
            }
        }
    }
}

impl EventPublisher for RedisBus {
    fn publish(&self, mut event: Event) {
        self.local.stamp(&mut event);
        // Local subscribers first: they must not depend on Redis.
        self.local.deliver(event.clone());
        let metrics = self.local.metrics();
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics
                    .redis_publish_dropped
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = self.queue_full_log.allow() {
                    tracing::warn!(
                        suppressed,
                        capacity = PUBLISH_QUEUE,
                        "redis publish queue full: event not sent to other instances"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The publisher stopped (shutdown): local delivery still happened.
                metrics
                    .redis_publish_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct HealthLink {
    client: Client,
    conn: Mutex<Option<MultiplexedConnection>>,
}

async fn connect(client: &Client) -> Result<MultiplexedConnection, RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("redis unreachable; next connection attempt in {0:?}")]
    Waiting(Duration),
    #[error(transparent)]
    Redis(#[from] RedisError),
}

/// The publisher's connection: made on demand, dropped on error, and not
/// retried before the backoff delay has passed (events meanwhile fail fast).
struct Link {
    client: Client,
    conn: Option<MultiplexedConnection>,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl Link {
    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, LinkError> {
        if self.conn.is_none() {
            if let Some(at) = self.retry_at {
                let now = Instant::now();
                if now < at {
                    return Err(LinkError::Waiting(at - now));
                }
            }
            match connect(&self.client).await {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.retry_at = None;
                }
                Err(e) => {
                    self.retry_at = Some(Instant::now() + self.backoff.next_delay());
                    return Err(e.into());
                }
            }
        }
        self.conn.as_mut().ok_or(LinkError::Waiting(Duration::ZERO))
    }

    fn broken(&mut self) {
        if self.conn.take().is_some() {
            self.retry_at = Some(Instant::now() + self.backoff.next_delay());
        }
    }
}

async fn publish_loop(
    client: Client,
    channel: String,
    mut pending: mpsc::Receiver<Event>,
    metrics: Arc<BusMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut link = Link {
        client,
        conn: None,
        backoff: Backoff::default(),
        retry_at: None,
    };
    let failure_log = RateLimitedLog::new(LOG_EVERY);
    let mut failing = false;
    loop {
        let event = tokio::select! {
            event = pending.recv() => match event {
                Some(event) => event,
                None => return,
            },
            _ = stop.changed() => return,
        };
        let result = match serde_json::to_string(&event) {
            Ok(body) => publish_one(&mut link, &channel, body).await,
            Err(e) => Err(format!("cannot encode the event: {e}")),
        };
        match result {
            Ok(_) => {
                metrics.redis_published.fetch_add(1, Ordering::Relaxed);
                link.backoff.reset();
                if std::mem::take(&mut failing) {
                    tracing::info!("redis publishing resumed");
                }
            }
            Err(error) => {
                failing = true;
                metrics
                    .redis_publish_failures
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = failure_log.allow() {
                    tracing::warn!(
                        %error,
                        suppressed,
                        "redis publish failed: event delivered locally only"
                    );
                }
            }
        }
    }
}

async fn publish_one(link: &mut Link, channel: &str, body: String) -> Result<(), String> {
    let conn = link.connection().await.map_err(|e| e.to_string())?;
    let sent = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(body)
        .query_async::<i64>(conn)
        .await;
    if let Err(e) = sent {
        link.broken();
        return Err(e.to_string());
    }
    Ok(())
}

enum Ended {
    Stopped,
    Lost(String),
}

async fn subscribe_loop(
    client: Client,
    channel: String,
    local: InProcessBus,
    mut stop: watch::Receiver<bool>,
) {
    let metrics = local.metrics().clone();
    let mut backoff = Backoff::default();
    let failure_log = RateLimitedLog::new(LOG_EVERY);
    let decode_log = RateLimitedLog::new(LOG_EVERY);
    let mut connected_before = false;
    loop {
        match subscribe(&client, &channel).await {
            Ok((mut sink, mut stream)) => {
                if std::mem::replace(&mut connected_before, true) {
                    metrics.redis_reconnects.fetch_add(1, Ordering::Relaxed);
                }
                metrics.redis_subscribed.store(1, Ordering::Relaxed);
                backoff.reset();
                tracing::info!(channel, "subscribed to redis events");
                let ended = pump(&mut sink, &mut stream, &local, &decode_log, &mut stop).await;
                metrics.redis_subscribed.store(0, Ordering::Relaxed);
                match ended {
                    Ended::Stopped => return,
                    Ended::Lost(reason) => {
                        if let Some(suppressed) = failure_log.allow() {
                            tracing::warn!(%reason, suppressed, "redis subscription lost: reconnecting");
                        }
                    }
                }
            }
            Err(error) => {
                if let Some(suppressed) = failure_log.allow() {
                    tracing::warn!(%error, suppressed, "redis subscribe failed: retrying");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn subscribe(client: &Client, channel: &str) -> Result<(PubSubSink, PubSubStream), String> {
    let attempt = async {
        let (mut sink, stream) = client.get_async_pubsub().await?.split();
        sink.subscribe(channel).await?;
        Ok::<_, RedisError>((sink, stream))
    };
    match timeout(CONNECT_TIMEOUT + COMMAND_TIMEOUT, attempt).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Forwards messages until the connection ends, stops answering, or we stop.
async fn pump(
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
    local: &InProcessBus,
    decode_log: &RateLimitedLog,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let mut ping = tokio::time::interval_at(Instant::now() + SUBSCRIBER_PING, SUBSCRIBER_PING);
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => receive(local, msg.get_payload_bytes(), decode_log),
                None => return Ended::Lost("connection closed".into()),
            },
            _ = ping.tick() => match timeout(COMMAND_TIMEOUT, sink.ping::<redis::Value>()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Ended::Lost(e.to_string()),
                Err(_) => return Ended::Lost("ping timed out".into()),
            },
            _ = stop.changed() => return Ended::Stopped,
        }
    }
}

/// One message from the channel: another instance's event goes to the local
/// subscribers; our own echo, or anything we cannot read, is dropped.
fn receive(local: &InProcessBus, payload: &[u8], decode_log: &RateLimitedLog) {
    let metrics = local.metrics();
    let problem = match serde_json::from_slice::<Event>(payload) {
        Ok(event) if event.v != EVENT_VERSION => format!(
            "event version {} (this instance reads {EVENT_VERSION})",
            event.v
        ),
        Ok(event) if event.origin == local.instance_id() => {
            metrics.redis_echoes_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Ok(event) => {
            metrics.redis_received.fetch_add(1, Ordering::Relaxed);
            local.deliver(event);
            return;
        }
        Err(e) => e.to_string(),
    };
    metrics
        .redis_decode_failures
        .fetch_add(1, Ordering::Relaxed);
    if let Some(suppressed) = decode_log.allow() {
        tracing::warn!(%problem, suppressed, "ignored a message on the events channel");
    }
}

/// Capped exponential backoff: 100 ms, 200 ms, … 5 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BACKOFF_MIN }
    }
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        delay
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Lets one message through per period; counts the ones it holds back.
#[derive(Debug)]
struct RateLimitedLog {
    every_ms: u64,
    origin: std::time::Instant,
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimitedLog {
    fn new(every: Duration) -> Self {
        Self {
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            origin: std::time::Instant::now(),
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed since the last one)` when a message may be logged now.
    fn allow(&self) -> Option<u64> {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(self.every_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::events::{EventPayload, QueueChange};

    fn event(origin: &str) -> Event {
        let mut e = Event::new(
            chrono::Utc::now(),
            EventPayload::QueueChanged {
                department_id: Some(3),
                conversation_id: 1,
                change: QueueChange::Entered,
                queue_length: 1,
            },
        );
        e.origin = origin.into();
        e
    }

    #[test]
    fn backoff_doubles_from_100_ms_up_to_5_s_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..9).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_MIN);
    }

    #[test]
    fn a_rate_limited_log_lets_one_through_and_counts_the_rest() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        assert_eq!(log.suppressed.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn our_own_echo_is_dropped_and_other_instances_events_are_delivered() {
        let local = InProcessBus::new("a");
        let mut rx = local.subscribe();
        let log = RateLimitedLog::new(LOG_EVERY);
        let wire = |e: &Event| serde_json::to_vec(e).unwrap();
        receive(&local, &wire(&event("a")), &log);
        receive(&local, &wire(&event("b")), &log);
        let got = rx.recv().await.unwrap();
        assert_eq!(got.event.origin, "b");
        assert!(rx.try_recv().is_err(), "the echo must not be delivered");
        let m = local.metrics().snapshot();
        assert_eq!((m.redis_echoes_dropped, m.redis_received), (1, 1));
    }

    #[tokio::test]
    async fn unknown_versions_and_garbage_are_counted_not_delivered() {
        let local = InProcessBus::new("a");
        let mut rx = local.subscribe();
        let log = RateLimitedLog::new(LOG_EVERY);
        let mut newer = event("b");
        newer.v = EVENT_VERSION + 1;
        receive(&local, &serde_json::to_vec(&newer).unwrap(), &log);
        receive(&local, b"{not json", &log);
        assert!(rx.try_recv().is_err());
        assert_eq!(local.metrics().snapshot().redis_decode_failures, 2);
    }

    #[test]
    fn the_wire_format_is_versioned_json_with_the_origin() {
        let json = serde_json::to_value(event("a")).unwrap();
        assert_eq!(json["v"], EVENT_VERSION);
        assert_eq!(json["origin"], "a");
        assert_eq!(json["payload"]["type"], "queue_changed");
    }

    #[tokio::test]
    async fn publishing_with_redis_unreachable_still_delivers_locally_and_never_blocks() {
        // Nothing listens on port 1: every Redis operation fails fast.
        let (_stop_tx, stop) = watch::channel(false);
        let bus = RedisBus::start(
            InProcessBus::new("a"),
            "redis://127.0.0.1:1",
            "test:events",
            stop,
        )
        .unwrap();
        let mut rx = bus.local().subscribe();
        bus.publish(event(""));
        assert_eq!(rx.recv().await.unwrap().event.origin, "a");
        drop(rx);
        let started = std::time::Instant::now();
        for _ in 1..(PUBLISH_QUEUE + 10) {
            bus.publish(event(""));
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        let metrics = bus.local().metrics().clone();
        // The publisher task drains the queue, failing fast.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let m = metrics.snapshot();
            if m.redis_publish_failures + m.redis_publish_dropped >= (PUBLISH_QUEUE + 10) as u64 {
                assert_eq!(m.redis_published, 0);
                assert_eq!(m.published, (PUBLISH_QUEUE + 10) as u64);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{m:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(bus.ping().await.is_err());
    }
}
