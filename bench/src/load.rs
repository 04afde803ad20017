//! A bounded HTTP load generator: fixed concurrency, each client on its own
//! keep-alive connection ([`http1`]), fixed duration, a cap on the number of
//! requests, latencies recorded per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::http1;

/// What one load phase measured.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub ok: u64,
    pub failed: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Most requests one phase sends, whatever the duration.
const MAX_REQUESTS: u64 = 2_000_000;

/// Numbers requests across every phase of the run, so no two carry the same
/// message (a repeat would be taken for a provider's retry and not stored).
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Sends GETs to `url_for(n)` from `concurrency` clients for `phase`.
pub async fn run(
    concurrency: usize,
    phase: Duration,
    url_for: impl Fn(u64) -> String + Send + Sync + 'static,
) -> LoadResult {
    run_with_acks(concurrency, phase, url_for).await.0
}

/// Like [`run`], also returning when each request `n` was acknowledged (for
/// latencies measured from the acknowledgement onwards).
pub async fn run_with_acks(
    concurrency: usize,
    phase: Duration,
    url_for: impl Fn(u64) -> String + Send + Sync + 'static,
) -> (LoadResult, Vec<(u64, Instant)>) {
    let url_for = Arc::new(url_for);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (url_for, stop, sent) = (url_for.clone(), stop.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut connection = http1::Connection::default();
            let mut latencies = Vec::new();
            let mut acks = Vec::new();
            let mut failed = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if sent.fetch_add(1, Ordering::Relaxed) >= MAX_REQUESTS {
                    break;
                }
                let t = Instant::now();
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                match connection.get(&url_for(n)).await {
                    Ok(status) if (200..300).contains(&status) => {
                        latencies.push(t.elapsed());
                        acks.push((n, Instant::now()));
                    }
                    _ => failed += 1,
                }
            }
            (latencies, acks, failed)
        }));
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut all_acks = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, a, f) = t.await.expect("load task");
        all.extend(l);
        all_acks.extend(a);
        failed += f;
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct =
        |p: f64| all.get(((all.len() as f64 - 1.0) * p).round() as usize).map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0);
    let result = LoadResult {
        ok: all.len() as u64,
        failed,
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    };
    (result, all_acks)
}
