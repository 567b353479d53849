//! Message windows. Meta lets a business send free-form messages only within
//! the customer-service window (default 24 h after the customer's last
//! message); after that only approved templates. The spec adds a billing rule
//! on a second window (default 48 h): each message sent beyond it costs a
//! surcharge. Both are settings ([`crate::MessagingConfig`]).
//!
//! "The customer's last message" is the later of the conversation's and the
//! contact's `last_inbound_at`. The contact's value spans every channel, so on
//! a deployment with several numbers the window can look open for a number
//! the customer did not write to; Meta then refuses with 131047, which fails
//! the message exactly like our own check would.

use chrono::{DateTime, Duration, Utc};
use entity::{contact, conversation};

/// When the customer last wrote, as far as the window rules are concerned.
pub fn last_customer_message(
    conversation: &conversation::Model,
    contact: Option<&contact::Model>,
) -> Option<DateTime<Utc>> {
    let from_contact = contact.and_then(|c| c.last_inbound_at);
    match (conversation.last_inbound_at, from_contact) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// When a window of `length` that opened with the customer's last message
/// closes; `None` when the customer never wrote (the window is closed).
pub fn expires_at(last_inbound: Option<DateTime<Utc>>, length: Duration) -> Option<DateTime<Utc>> {
    last_inbound.map(|at| at + length)
}

/// Whether `now` is still inside the window (the end is exclusive).
pub fn is_inside(
    last_inbound: Option<DateTime<Utc>>,
    length: Duration,
    now: DateTime<Utc>,
) -> bool {
    expires_at(last_inbound, length).is_some_and(|end| now < end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_window_closes_exactly_24_hours_after_the_last_message() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let day = Duration::hours(24);
        assert!(is_inside(Some(at), day, at + Duration::hours(23)));
        assert!(!is_inside(Some(at), day, at + day));
        assert!(!is_inside(None, day, at));
        assert_eq!(expires_at(Some(at), day), Some(at + day));
    }
}
