//! The channel log: every provider request a backend parsed and every request
//! a backend made to its provider, per backend, linked to the messages it
//! touched: what an operator reads to see exactly what an uploaded backend
//! did. Requests are recorded as the backend wrote them (`{{secret:NAME}}`,
//! never a filled-in value) and responses as the backend saw them (redacted).
//!
//! Recording never slows a request: entries go into a bounded channel (full
//! means dropped and counted) and a background task writes them in batches;
//! another prunes by age and total size.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::store::{ChannelLogStore, Exchange};

/// Entries waiting to be written at most; more are dropped.
const QUEUE: usize = 10_000;
/// Entries written per batch at most.
const BATCH: usize = 500;
/// How long the writer gathers entries before writing a batch that is not
/// full: the log's commits are not synced, so without a pause each entry
/// would commit on its own, and a commit's cost is the pages it rewrites.
const GATHER: Duration = Duration::from_millis(50);
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
    /// Tells the writer to write what it holds now and stop.
    closing: Arc<Notify>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl ChannelLog {
    /// A channel log writing to `store` (and pruning it) in the background;
    /// disabled, it records nothing.
    pub fn start(store: Arc<dyn ChannelLogStore>, config: &ChannelLogConfig) -> Arc<Self> {
        let closing = Arc::new(Notify::new());
        if !config.enabled {
            let writer = Mutex::new(None);
            return Arc::new(ChannelLog { tx: None, max_body_bytes: 0, dropped: AtomicU64::new(0), closing, writer });
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Mutex::new(Some(tokio::spawn(write(store.clone(), rx, closing.clone()))));
        tokio::spawn(prune(store, config.retention_ms, config.max_total_bytes));
        let max_body_bytes = config.max_body_bytes;
        Arc::new(ChannelLog { tx: Some(tx), max_body_bytes, dropped: AtomicU64::new(0), closing, writer })
    }

    /// Writes what is queued and stops writing: for shutdown, once the last
    /// request and send are done. Waits at most
    /// `deadline`; false when the writer did not finish within it.
    pub async fn close(&self, deadline: Duration) -> bool {
        // A stored permit if the writer is not waiting right now.
        self.closing.notify_one();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(writer) = writer else { return true };
        let finished = tokio::time::timeout(deadline, writer).await.is_ok();
        if !finished {
            tracing::warn!("channel log: the last entries were not written within {deadline:?}");
        }
        finished
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

/// Writes what arrives in batches, gathered for up to [`GATHER`]: one store
/// operation per batch. Told to close, it writes what is queued and returns.
async fn write(store: Arc<dyn ChannelLogStore>, mut rx: mpsc::Receiver<Exchange>, closing: Arc<Notify>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut close = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return } else { false },
            () = closing.notified() => true,
        };
        if !close && batch.len() < BATCH {
            close = tokio::select! {
                () = tokio::time::sleep(GATHER) => false,
                () = closing.notified() => true,
            };
            while batch.len() < BATCH
                && let Ok(exchange) = rx.try_recv()
            {
                batch.push(exchange);
            }
        }
        if close {
            while let Ok(exchange) = rx.try_recv() {
                batch.push(exchange);
            }
        }
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(BATCH));
            if let Err(e) = store.record_exchanges(std::mem::replace(&mut batch, rest)).await {
                tracing::warn!("channel log entries lost: {e}");
            }
        }
        if close {
            return;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{ExchangeFilter, now_ms};

    fn exchange(n: usize) -> Exchange {
        Exchange {
            backend: "k".into(),
            kind: "inbound".into(),
            method: "GET".into(),
            url: format!("http://127.0.0.1/backends/k/?n={n}"),
            request_headers: vec![],
            request_body: String::new(),
            status: Some(200),
            response_headers: vec![],
            response_body: "OK".into(),
            duration_us: 1,
            log: vec![],
            outcome: "stored".into(),
            message_ids: vec![n as i64],
            created_at: now_ms(),
        }
    }

    /// At shutdown every entry already queued is written, more than one batch of them.
    #[tokio::test]
    async fn closing_writes_everything_queued() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let log = ChannelLog::start(store.clone(), &ChannelLogConfig::default());
        let queued = 2 * BATCH + 7;
        for n in 0..queued {
            log.record(exchange(n));
        }
        assert!(log.close(Duration::from_secs(10)).await, "the writer stopped once it had written them");
        let filter = ExchangeFilter { backend: Some("k".into()), limit: 10 * BATCH, ..Default::default() };
        assert_eq!(store.exchanges(filter).await.unwrap().len(), queued);
        assert_eq!(log.dropped(), 0);
    }
}
