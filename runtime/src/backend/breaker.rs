//! The circuit breaker: pauses a backend that keeps failing (trapping, timing
//! out), so a broken component stops burning CPU and retries; it resumes after
//! a cool-down or on redeploy (a new version starts closed).

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use crate::store::{Millis, now_ms};

/// Consecutive failures and, once they reach the threshold, when the pause ends.
#[derive(Debug)]
pub struct Breaker {
    failures: AtomicU32,
    open_until: AtomicI64,
    threshold: u32,
    cooldown_ms: i64,
}

impl Breaker {
    /// A closed breaker opening after `threshold` consecutive failures.
    pub fn new(threshold: u32, cooldown_ms: u64) -> Self {
        Breaker {
            failures: AtomicU32::new(0),
            open_until: AtomicI64::new(0),
            threshold: threshold.max(1),
            cooldown_ms: cooldown_ms.min(i64::MAX as u64) as i64,
        }
    }

    /// When the pause ends, if the backend is paused now.
    pub fn open_until(&self) -> Option<Millis> {
        let until = self.open_until.load(Ordering::Relaxed);
        (until > now_ms()).then_some(until)
    }

    /// Records one call's outcome; returns true when this failure opened the breaker.
    pub fn record(&self, failed: bool) -> bool {
        if !failed {
            self.failures.store(0, Ordering::Relaxed);
            return false;
        }
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n < self.threshold {
            return false;
        }
        self.open_until.store(now_ms().saturating_add(self.cooldown_ms), Ordering::Relaxed);
        // Half-open after the cool-down: one more failure pauses it again.
        self.failures.store(self.threshold - 1, Ordering::Relaxed);
        true
    }
}
