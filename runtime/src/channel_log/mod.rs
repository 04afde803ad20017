//! The channel log: every provider request a backend parsed and every request
//! a backend made to its provider, per backend, linked to the messages it
//! touched: what an operator reads to see exactly what an uploaded backend
//! did. Requests are recorded as the backend wrote them (`{{secret:NAME}}`,
//! never a filled-in value) and responses as the backend saw them (redacted).
//!
//! Recording never slows a request: entries go into a bounded channel (full
//! means dropped and counted) and a background task writes them in batches;
//! another prunes by age and total size.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::store::{ChannelLogStore, Exchange};

/// Entries waiting to be written at most; more are dropped.
const QUEUE: usize = 10_000;
/// Entries written per batch at most.
const BATCH: usize = 500;
/// How often retention is applied.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// `[channel_log]` in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelLogConfig {
    pub enabled: bool,
    /// Bytes of each request and response body kept.
    pub max_body_bytes: usize,
    /// Entries older than this are removed.
    pub retention_ms: u64,
    /// The oldest entries are removed while all of them take more than this.
    pub max_total_bytes: u64,
}

impl Default for ChannelLogConfig {
    fn default() -> Self {
        ChannelLogConfig {
            enabled: true,
            max_body_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            max_total_bytes: 256 << 20,
        }
    }
}

/// Where exchanges are recorded.
pub struct ChannelLog {
    tx: Option<mpsc::Sender<Exchange>>,
    max_body_bytes: usize,
    dropped: AtomicU64,
}

impl ChannelLog {
    /// A channel log writing to `store` (and pruning it) in the background;
    /// disabled, it records nothing.
    pub fn start(store: Arc<dyn ChannelLogStore>, config: &ChannelLogConfig) -> Arc<Self> {
        if !config.enabled {
            return Arc::new(ChannelLog { tx: None, max_body_bytes: 0, dropped: AtomicU64::new(0) });
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(store.clone(), rx));
        tokio::spawn(prune(store, config.retention_ms, config.max_total_bytes));
        Arc::new(ChannelLog { tx: Some(tx), max_body_bytes: config.max_body_bytes, dropped: AtomicU64::new(0) })
    }

    /// Records `exchange`, unless the log is off or the writer is behind.
    pub fn record(&self, exchange: Exchange) {
        if let Some(tx) = &self.tx
            && tx.try_send(exchange).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// True when exchanges are recorded (so callers can skip building them).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// A body as the log keeps it: text, cut at `max_body_bytes`.
    pub fn body(&self, bytes: &[u8]) -> String {
        let cut = bytes.len().min(self.max_body_bytes);
        let mut text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
        if bytes.len() > cut {
            text.push_str(&format!("… ({} bytes in all)", bytes.len()));
        }
        text
    }

    /// Entries dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Writes what arrives in batches: one store operation per batch.
async fn write(store: Arc<dyn ChannelLogStore>, mut rx: mpsc::Receiver<Exchange>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if let Err(e) = store.record_exchanges(std::mem::take(&mut batch)).await {
            tracing::warn!("channel log entries lost: {e}");
        }
    }
}

/// Applies the retention every minute.
async fn prune(store: Arc<dyn ChannelLogStore>, retention_ms: u64, max_total_bytes: u64) {
    loop {
        let before = crate::store::now_ms() - retention_ms.min(i64::MAX as u64) as i64;
        match store.prune_exchanges(before, max_total_bytes).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!("channel log: {n} old entries removed"),
            Err(e) => tracing::warn!("channel log pruning failed: {e}"),
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}
