//! The local fan-out: a bounded broadcast channel that every GraphQL
//! subscription of this process reads and filters by permission. It is the
//! whole bus when Redis is not configured, and the delivery end of the Redis
//! bus when it is.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use domain::{Event, EventPublisher};
use tokio::sync::broadcast;

use super::{BusMetrics, LiveEvent};

/// Events a subscriber may fall behind before it is told it lagged.
pub const SUBSCRIBER_BUFFER: usize = 1024;

#[derive(Clone)]
pub struct InProcessBus {
    instance_id: Arc<str>,
    sender: broadcast::Sender<Arc<LiveEvent>>,
    metrics: Arc<BusMetrics>,
}

impl InProcessBus {
    pub fn new(instance_id: &str) -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self {
            instance_id: instance_id.into(),
            sender,
            metrics: Arc::default(),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.sender.subscribe()
    }

    /// The instance events published here are stamped with (`Event::origin`).
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    pub fn metrics(&self) -> &Arc<BusMetrics> {
        &self.metrics
    }

    /// Hands an event (already stamped with its origin) to this process's
    /// subscribers. Never blocks: a subscriber that falls more than
    /// [`SUBSCRIBER_BUFFER`] events behind is told it lagged.
    pub fn deliver(&self, event: Event) {
        self.metrics.fanned_out.fetch_add(1, Ordering::Relaxed);
        // No receivers is not an error: nobody is watching.
        let _ = self.sender.send(Arc::new(LiveEvent::new(event)));
    }

    /// Stamps the event with this instance and counts it as published here.
    pub(super) fn stamp(&self, event: &mut Event) {
        event.origin = self.instance_id.to_string();
        self.metrics.published.fetch_add(1, Ordering::Relaxed);
    }
}

impl EventPublisher for InProcessBus {
    fn publish(&self, mut event: Event) {
        self.stamp(&mut event);
        self.deliver(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::events::{EventPayload, QueueChange};

    #[tokio::test]
    async fn subscribers_receive_events_stamped_with_the_instance() {
        let bus = InProcessBus::new("a");
        let mut rx = bus.subscribe();
        bus.publish(Event::new(
            chrono::Utc::now(),
            EventPayload::QueueChanged {
                department_id: None,
                conversation_id: 1,
                change: QueueChange::Entered,
                queue_length: 1,
            },
        ));
        let got = rx.recv().await.unwrap();
        assert_eq!(got.event.origin, "a");
        let counters = bus.metrics().snapshot();
        assert_eq!((counters.published, counters.fanned_out), (1, 1));
    }
}
