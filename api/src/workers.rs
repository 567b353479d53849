//! Background workers, in every instance: each claims its work in the
//! database, so running several is safe.

use std::time::Duration;

use domain::Domain;
use tokio::sync::watch;

/// How often idle and expired locks are swept.
const LOCK_SWEEP: Duration = Duration::from_secs(10);

pub fn spawn_all(domain: Domain, stop: watch::Receiver<bool>) {
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
