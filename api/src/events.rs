//! Event fan-out. The in-process bus is a bounded broadcast channel; every
//! GraphQL subscription reads it and filters by permission.

use std::sync::Arc;

use domain::{Event, EventPublisher};
use tokio::sync::broadcast;

/// Events a subscriber may fall behind before it is told it lagged.
pub const SUBSCRIBER_BUFFER: usize = 1024;

#[derive(Clone)]
pub struct InProcessBus {
    instance_id: Arc<str>,
    sender: broadcast::Sender<Arc<Event>>,
}

impl InProcessBus {
    pub fn new(instance_id: &str) -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self {
            instance_id: instance_id.into(),
            sender,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

impl EventPublisher for InProcessBus {
    fn publish(&self, mut event: Event) {
        event.origin = self.instance_id.to_string();
        // No receivers is not an error: nobody is watching.
        let _ = self.sender.send(Arc::new(event));
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
        assert_eq!(got.origin, "a");
    }
}
