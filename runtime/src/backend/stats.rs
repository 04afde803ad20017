//! Per-version call counters, shown by the admin API.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many calls of each kind succeeded or failed.
#[derive(Debug, Default)]
pub struct CallStats {
    inbound_ok: AtomicU64,
    inbound_failed: AtomicU64,
    send_ok: AtomicU64,
    send_failed: AtomicU64,
}

impl CallStats {
    /// Counts one `parse-incoming` call.
    pub fn inbound(&self, ok: bool) {
        let counter = if ok { &self.inbound_ok } else { &self.inbound_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one `send` call.
    pub fn send(&self, ok: bool) {
        let counter = if ok { &self.send_ok } else { &self.send_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "inbound_ok": self.inbound_ok.load(Ordering::Relaxed),
            "inbound_failed": self.inbound_failed.load(Ordering::Relaxed),
            "send_ok": self.send_ok.load(Ordering::Relaxed),
            "send_failed": self.send_failed.load(Ordering::Relaxed),
        })
    }
}
