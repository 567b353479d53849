//! Meta's sending limits, as token buckets in this process's memory:
//! throughput per business number (80 messages/s by default) and the pair
//! limit per customer (about 1 message per 6 s, bursts of up to 45 borrowed
//! from later).
//!
//! The buckets are per instance: with N instances sending for one number, set
//! `outbox_rate_per_second` to the number's limit divided by N. Exceeding a
//! limit anyway is survivable: Meta answers 130429 / 131056, which the outbox
//! retries with backoff.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Pair limit: one message per this many seconds to one customer…
pub const PAIR_SECONDS_PER_MESSAGE: f64 = 6.0;
/// …with bursts of up to this many.
pub const PAIR_BURST: f64 = 45.0;

/// Above this many tracked customers, full (idle) buckets are forgotten.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

impl Bucket {
    fn full(capacity: f64, now: DateTime<Utc>) -> Self {
        Self {
            tokens: capacity,
            at: now,
        }
    }

    fn refill(&mut self, now: DateTime<Utc>, per_second: f64, capacity: f64) {
        let elapsed = (now - self.at)
            .num_microseconds()
            .unwrap_or(i64::MAX)
            .max(0) as f64
            / 1e6;
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        if now > self.at {
            self.at = now;
        }
    }

    /// Takes a token, or says how long until one is available.
    fn take(&mut self, now: DateTime<Utc>, per_second: f64, capacity: f64) -> Result<(), Duration> {
        self.refill(now, per_second, capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let secs = (1.0 - self.tokens) / per_second;
            Err(Duration::milliseconds((secs * 1000.0).ceil() as i64)
                .max(Duration::milliseconds(1)))
        }
    }

    fn give_back(&mut self, capacity: f64) {
        self.tokens = (self.tokens + 1.0).min(capacity);
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    channels: Mutex<HashMap<i64, Bucket>>,
    recipients: Mutex<HashMap<String, Bucket>>,
}

impl Throttle {
    /// Takes one send from the customer's pair bucket and the number's
    /// throughput bucket, or returns how long to wait (taking nothing).
    pub fn try_acquire(
        &self,
        channel_id: i64,
        recipient: &str,
        per_second: u32,
        now: DateTime<Utc>,
    ) -> Result<(), Duration> {
        let pair_rate = 1.0 / PAIR_SECONDS_PER_MESSAGE;
        let mut recipients = self.recipients.lock().unwrap_or_else(|e| e.into_inner());
        if recipients.len() > MAX_TRACKED {
            recipients.retain(|_, b| {
                b.refill(now, pair_rate, PAIR_BURST);
                b.tokens < PAIR_BURST
            });
        }
        let pair = recipients
            .entry(recipient.to_string())
            .or_insert_with(|| Bucket::full(PAIR_BURST, now));
        pair.take(now, pair_rate, PAIR_BURST)?;
        let rate = f64::from(per_second.max(1));
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let number = channels
            .entry(channel_id)
            .or_insert_with(|| Bucket::full(rate, now));
        if let Err(wait) = number.take(now, rate, rate) {
            pair.give_back(PAIR_BURST);
            return Err(wait);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_sends_at_most_its_rate_per_second() {
        let t = Throttle::default();
        let now = Utc::now();
        for i in 0..3 {
            assert!(t.try_acquire(1, &format!("39{i}"), 3, now).is_ok());
        }
        let wait = t.try_acquire(1, "394", 3, now).unwrap_err();
        assert!(wait <= Duration::milliseconds(334), "{wait}");
        assert!(t.try_acquire(2, "394", 3, now).is_ok(), "another number");
        assert!(t.try_acquire(1, "394", 3, now + wait).is_ok());
    }

    #[test]
    fn a_customer_gets_a_burst_then_one_message_per_six_seconds() {
        let t = Throttle::default();
        let now = Utc::now();
        for _ in 0..45 {
            t.try_acquire(1, "39123", 1000, now).unwrap();
        }
        let wait = t.try_acquire(1, "39123", 1000, now).unwrap_err();
        assert_eq!(wait, Duration::seconds(6));
        assert!(t.try_acquire(1, "39123", 1000, now + wait).is_ok());
    }
}
