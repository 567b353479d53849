//! Background workers, in every instance: each claims its work in the
//! database, so running several is safe.

use std::time::Duration;

use domain::Domain;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use crate::events::InProcessBus;

/// How often idle and expired locks are swept.
const LOCK_SWEEP: Duration = Duration::from_secs(10);
/// The routing worker's safety net: a full pass at least this often, even
/// when no event woke it.
const ROUTING_SWEEP: Duration = Duration::from_secs(15);
/// How often agents without activity for 5 minutes are marked offline.
const PRESENCE_SWEEP: Duration = Duration::from_secs(30);
/// How often unanswered surveys past their expiry are marked expired.
const SURVEY_SWEEP: Duration = Duration::from_secs(60);

/// `routing_bus` is this process's event fan-out, which the routing worker
/// listens to (with Redis it also carries the other instances' events);
/// `None` runs no routing worker (tests that route by hand).
pub fn spawn_all(domain: Domain, routing_bus: Option<InProcessBus>, stop: watch::Receiver<bool>) {
    if let Some(bus) = routing_bus {
        spawn_routing(domain.clone(), bus, stop.clone());
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
    let presence = domain.clone();
    tokio::spawn(every(PRESENCE_SWEEP, stop.clone(), move || {
        let domain = presence.clone();
        async move {
            match domain.expire_presence().await {
                Ok(offline) if !offline.is_empty() => {
                    tracing::info!(count = offline.len(), "marked inactive agents offline")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "presence sweep failed"),
            }
        }
    }));
    tokio::spawn(every(LOCK_SWEEP, stop, move || {
        let domain = domain.clone();
        async move {
            match domain.release_stale_locks().await {
                Ok(released) if !released.is_empty() => {
                    tracing::info!(count = released.len(), "released stale locks")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "lock sweep failed"),
            }
        }
    }));
}

/// The routing worker: a pass over the queues whenever an event says a queued
/// conversation may now find an agent (something entered a queue, an agent
/// came online or changed, capacity was freed; see `domain::routing::wakes_routing`),
/// and every [`ROUTING_SWEEP`] as a safety net. Assignments are conditional
/// UPDATEs, so every instance may run it.
fn spawn_routing(domain: Domain, bus: InProcessBus, mut stop: watch::Receiver<bool>) {
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
            match domain.route_queue().await {
                Ok(assigned) if !assigned.is_empty() => {
                    tracing::info!(count = assigned.len(), "routed queued conversations")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "routing pass failed"),
            }
        }
    });
}

/// How often the outbox is polled when nothing wakes it.
const OUTBOX_POLL: Duration = Duration::from_secs(1);

/// The outbox worker: runs on every `sendMessage` wake-up and at least every
/// second (retries come due by time). Claims are atomic, so every instance
/// may run it.
pub fn spawn_outbox(domain: Domain, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(OUTBOX_POLL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = domain.outbox.wake.notified() => {}
                _ = stop.changed() => return,
            }
            match domain.run_outbox_once().await {
                Ok(run) if run.sent + run.failed + run.retried > 0 => tracing::info!(
                    sent = run.sent,
                    failed = run.failed,
                    retried = run.retried,
                    deferred = run.deferred,
                    "outbox run"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox run failed"),
            }
        }
    });
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
