//! Provider send rates: a backend's `rate_per_second` (with `rate_burst`) is
//! honoured per provider request, however many sends run at once. Each
//! backend has its own limit, so a slow one waits alone.
//!
//! The limit is GCRA: its whole state is one "theoretical arrival time", which
//! a store shared by several gateway nodes can keep in one row and advance
//! atomically; [`RateLimiter`] is the seam for that implementation.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Waits until one more provider request is allowed.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Returns when the request may go out (and counts it).
    async fn acquire(&self);
}

/// The in-process limit of one backend.
pub struct Gcra {
    interval: Duration,
    /// How far ahead of now the arrival time may run: `burst - 1` intervals.
    tolerance: Duration,
    arrival: Mutex<Instant>,
}

impl Gcra {
    /// `per_second` requests a second on average, `burst` at once at most.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_second.max(1);
        Gcra { interval, tolerance: interval * burst.max(1).saturating_sub(1), arrival: Mutex::new(Instant::now()) }
    }

    /// How long the next request must wait, counting it.
    fn reserve(&self) -> Duration {
        let mut arrival = self.arrival.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let at = (*arrival).max(now);
        *arrival = at + self.interval;
        at.saturating_duration_since(now + self.tolerance)
    }
}

#[async_trait::async_trait]
impl RateLimiter for Gcra {
    async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_spaced_after_the_burst() {
        let limit = Gcra::new(10, 3);
        let waits: Vec<u128> = (0..6).map(|_| limit.reserve().as_millis()).collect();
        assert_eq!(&waits[..3], &[0, 0, 0], "the burst goes at once");
        assert!((90..=100).contains(&waits[3]) && (190..=200).contains(&waits[4]), "{waits:?}");
    }
}
