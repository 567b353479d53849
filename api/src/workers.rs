//! Background workers, in every instance: each claims its work in the
//! database, so running several is safe.

use std::sync::Arc;
use std::time::Duration;

use domain::Domain;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use crate::events::InProcessBus;
use crate::metrics::Metrics;

/// How often idle and expired locks are swept.
const LOCK_SWEEP: Duration = Duration::from_secs(10);
/// The routing worker's safety net: a full pass at least this often, even
/// when no event woke it.
const ROUTING_SWEEP: Duration = Duration::from_secs(15);
/// How often agents without activity for 5 minutes are marked offline.
const PRESENCE_SWEEP: Duration = Duration::from_secs(30);
/// How often unanswered surveys past their expiry are marked expired.
const SURVEY_SWEEP: Duration = Duration::from_secs(60);
/// How often bot-answered conversations gone quiet are resolved.
const AUTO_CLOSE_SWEEP: Duration = Duration::from_secs(60);

/// `routing_bus` is this process's event fan-out, which the routing worker
/// listens to (with Redis it also carries the other instances' events);
/// `None` runs no routing worker (tests that route by hand).
pub fn spawn_all(
    domain: Domain,
    routing_bus: Option<InProcessBus>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    if let Some(bus) = routing_bus {
        spawn_routing(domain.clone(), bus, metrics.clone(), stop.clone());
    }
    let surveys = domain.clone();
    tokio::spawn(every(SURVEY_SWEEP, stop.clone(), move || {
        let domain = surveys.clone();
        async move {
            if let Err(e) = domain.expire_surveys().await {
                tracing::warn!(error = %e, "survey sweep failed");
            }
        }
    }));
    let auto_close = domain.clone();
    let m = metrics.clone();
    tokio::spawn(every(AUTO_CLOSE_SWEEP, stop.clone(), move || {
        let domain = auto_close.clone();
        let metrics = m.clone();
        async move {
            let ok = match domain.auto_close_bot_answered().await {
                Ok(closed) if !closed.is_empty() => {
                    tracing::info!(count = closed.len(), "resolved bot-answered conversations");
                    true
                }
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "auto-close sweep failed");
                    false
                }
            };
            metrics.worker_tick("auto_close", ok);
        }
    }));
    let presence = domain.clone();
    let m = metrics.clone();
    tokio::spawn(every(PRESENCE_SWEEP, stop.clone(), move || {
        let domain = presence.clone();
        let metrics = m.clone();
        async move {
            let ok = match domain.expire_presence().await {
                Ok(offline) if !offline.is_empty() => {
                    tracing::info!(count = offline.len(), "marked inactive agents offline");
                    true
                }
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "presence sweep failed");
                    false
                }
            };
            metrics.worker_tick("presence", ok);
        }
    }));
    tokio::spawn(every(LOCK_SWEEP, stop, move || {
        let domain = domain.clone();
        let metrics = metrics.clone();
        async move {
            let ok = match domain.release_stale_locks().await {
                Ok(released) if !released.is_empty() => {
                    tracing::info!(count = released.len(), "released stale locks");
                    true
                }
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "lock sweep failed");
                    false
                }
            };
            metrics.worker_tick("locks", ok);
        }
    }));
}

/// The routing worker: a pass over the queues whenever an event says a queued
/// conversation may now find an agent (something entered a queue, an agent
/// came online or changed, capacity was freed; see `domain::routing::wakes_routing`),
/// and every [`ROUTING_SWEEP`] as a safety net. Assignments are conditional
/// UPDATEs, so every instance may run it.
fn spawn_routing(
    domain: Domain,
    bus: InProcessBus,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut events = bus.subscribe();
        let mut sweep = tokio::time::interval(ROUTING_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = sweep.tick() => {}
                received = events.recv() => match received {
                    Ok(event) if domain::routing::wakes_routing(event.payload()) => {}
                    Ok(_) => continue,
                    // Missed events: a full pass covers whatever they were.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => {
                        events = bus.subscribe();
                        continue;
                    }
                },
            }
            // What is already waiting is covered by the pass about to start.
            while let Ok(_) | Err(TryRecvError::Lagged(_)) = events.try_recv() {}
            let ok = match domain.route_queue().await {
                Ok(assigned) if !assigned.is_empty() => {
                    tracing::info!(count = assigned.len(), "routed queued conversations");
                    true
                }
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "routing pass failed");
                    false
                }
            };
            metrics.worker_tick("routing", ok);
        }
    });
}

/// How often the outbox is polled when nothing wakes it.
const OUTBOX_POLL: Duration = Duration::from_secs(1);

/// The outbox worker: runs on every `sendMessage` wake-up and at least every
/// second (retries come due by time). Claims are atomic, so every instance
/// may run it.
pub fn spawn_outbox(domain: Domain, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(OUTBOX_POLL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = domain.outbox.wake.notified() => {}
                _ = stop.changed() => return,
            }
            let ok = match domain.run_outbox_once().await {
                Ok(run) => {
                    if run.sent + run.failed + run.retried > 0 {
                        tracing::info!(
                            sent = run.sent,
                            failed = run.failed,
                            retried = run.retried,
                            deferred = run.deferred,
                            "outbox run"
                        );
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outbox run failed");
                    false
                }
            };
            metrics.worker_tick("outbox", ok);
        }
    });
}

/// How often the SLA sweep runs.
const SLA_SWEEP: Duration = Duration::from_secs(10);

/// The SLA worker: a sweep every [`SLA_SWEEP`]. Each warning, escalation and
/// breach is a row unique per (conversation, kind, level) inserted with
/// `ON CONFLICT DO NOTHING`, so every instance may run it.
pub fn spawn_sla(domain: Domain, metrics: Arc<Metrics>, stop: watch::Receiver<bool>) {
    tokio::spawn(every(SLA_SWEEP, stop, move || {
        let domain = domain.clone();
        let metrics = metrics.clone();
        async move {
            let ok = match domain.run_sla_sweep().await {
                Ok(r) => {
                    if r.warnings + r.escalations + r.breaches + r.alerts > 0 {
                        tracing::info!(
                            warnings = r.warnings,
                            escalations = r.escalations,
                            breaches = r.breaches,
                            alerts = r.alerts,
                            "SLA sweep"
                        );
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SLA sweep failed");
                    false
                }
            };
            metrics.worker_tick("sla", ok);
        }
    }));
}

/// How often due webhook deliveries are looked for when nothing wakes the worker.
const WEBHOOKS_POLL: Duration = Duration::from_secs(1);

/// Outbound webhooks: sends due deliveries on every wake-up and at least
/// every second. Services write the deliveries in their own transactions
/// (`domain::webhooks_out`); claims are atomic, so every instance may run this.
pub fn spawn_webhooks(domain: Domain, metrics: Arc<Metrics>, stop: watch::Receiver<bool>) {
    let mut stop = stop;
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(WEBHOOKS_POLL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = domain.webhooks.wake.notified() => {}
                _ = stop.changed() => return,
            }
            let ok = match domain.run_webhooks_once().await {
                Ok(run) => {
                    if run.delivered + run.failed + run.retried > 0 {
                        tracing::info!(
                            delivered = run.delivered,
                            retried = run.retried,
                            failed = run.failed,
                            disabled = run.disabled,
                            "webhook run"
                        );
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhook run failed");
                    false
                }
            };
            metrics.worker_tick("webhooks", ok);
        }
    });
}

/// The retention policy from configuration: none, or closed conversations
/// older than `days` archived or purged, applied every `every`.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSchedule {
    pub days: Option<i64>,
    pub action: domain::retention::RetentionAction,
    pub every: Duration,
}

impl RetentionSchedule {
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            days: config.retention_days,
            action: if config.retention_action == "purge" {
                domain::retention::RetentionAction::Purge
            } else {
                domain::retention::RetentionAction::Archive
            },
            every: RETENTION_SWEEP,
        }
    }
}

/// How often the retention policy is applied.
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);

/// The retention worker (when a policy is configured): a first run at once,
/// then one every `schedule.every`; the rows it touches are selected by a
/// condition, so every instance may run it. The handle ends once `stop` fires
/// and the run in progress is done.
pub fn spawn_retention(
    domain: Domain,
    schedule: RetentionSchedule,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let days = schedule.days?;
    Some(tokio::spawn(every(schedule.every, stop, move || {
        let domain = domain.clone();
        let metrics = metrics.clone();
        async move {
            let actor = domain::Actor::system();
            let ok = match domain.apply_retention(&actor, days, schedule.action).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(conversations = n, "retention applied");
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention run failed");
                    false
                }
            };
            metrics.worker_tick("retention", ok);
        }
    })))
}

/// How often the metrics rollups are refreshed.
pub const ROLLUP_SWEEP: Duration = Duration::from_secs(60);
/// Dirty marks younger than this are left for a later run (see
/// `domain::metrics::rollup`: a writer may still rely on them).
pub const ROLLUP_SETTLE: chrono::Duration = chrono::Duration::minutes(5);
/// At most this many hours (new, then dirty) per run.
const ROLLUP_MAX_HOURS: i64 = 48;

/// The metrics rollup worker: every `period`, rolls up the completed hours
/// not yet rolled and the hours whose data changed (marked by triggers). Each
/// hour is locked and rewritten in one transaction, so every instance may run
/// it. The handle ends once `stop` fires and the run in progress is done.
pub fn spawn_rollups(
    domain: Domain,
    period: Duration,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(every(period, stop, move || {
        let domain = domain.clone();
        let metrics = metrics.clone();
        async move {
            let ok = match domain
                .refresh_metrics_rollups(ROLLUP_MAX_HOURS, ROLLUP_SETTLE)
                .await
            {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(hours = n, "metrics rollups refreshed");
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics rollup refresh failed");
                    false
                }
            };
            metrics.worker_tick("rollups", ok);
        }
    }))
}

/// Runs `tick` every `period` until told to stop; a tick in progress finishes.
async fn every<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, tick: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => tick().await,
            _ = stop.changed() => return,
        }
    }
}
