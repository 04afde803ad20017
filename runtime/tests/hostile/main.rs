//! The hostile suite: components written to attack their host are deployed
//! beside well-behaved backends under steady load. For every attack the
//! gateway must stay up, the attack must fail cleanly (or be contained), the
//! well-behaved backend must keep serving, and every message it acknowledged
//! must be stored. Run with `--nocapture` to see the neighbour's throughput
//! ratio under each attack. One module per class of attack; the tests of this
//! binary run one at a time (their load measurements would disturb each other).

#[path = "../common/mod.rs"]
mod common;

mod admin_attacks;
mod framing;
mod inbound;
mod logs;
mod memory;
mod neighbours;
mod secrets;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Gateway;

/// How long each load phase runs: bounded, and long enough to average noise.
pub const PHASE: Duration = Duration::from_millis(1200);
/// Concurrent clients of the well-behaved backend.
const CLIENTS: usize = 4;
/// Admin token of the gateways that need the admin API.
pub const TOKEN: &str = "hostile-suite-admin-token-0123";

/// Numbers the neighbour's messages across every phase.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Runs the tests of this binary one at a time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Options for a gateway whose admin API is on.
pub fn with_admin() -> common::GatewayOptions {
    let mut options = common::GatewayOptions::default();
    options.env.push(("SMSGW_ADMIN_TOKEN".into(), TOKEN.into()));
    options
}

/// What the well-behaved backend did during one phase.
pub struct Neighbour {
    pub ok: u64,
    pub failed: u64,
    pub took: Duration,
    pub p99: Duration,
}

impl Neighbour {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.took.as_secs_f64()
    }
}

/// A server that accepts connections and never answers (a provider that hangs).
pub fn start_silent_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline && held.len() < 1000 {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, handle)
}

/// A provider that redirects every request to `target`.
pub async fn start_redirector(target: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { (axum::http::StatusCode::FOUND, [("location", target)], "") }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// Load on the well-behaved backend `good` for one phase (and until `during`
/// ends): how many requests succeeded and failed, how long it ran, and the
/// requests' 99th-percentile latency.
pub async fn load(gw: &Gateway, during: impl std::future::Future<Output = ()>) -> Neighbour {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (ok, failed, stop, latencies) = (ok.clone(), failed.clone(), stop.clone(), latencies.clone());
        let http = gw.http.clone();
        let url = gw.url("/backends/good/");
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            // Bounded by count as well as time.
            while !stop.load(Ordering::Relaxed) && n < 200_000 {
                n += 1;
                // Unique across phases: a repeat would be taken for a provider's retry.
                let unique = NEXT.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let r = http.get(format!("{url}?identity=c{c}&text=hello+{unique}")).send().await;
                latencies.lock().unwrap().push(sent.elapsed());
                match r {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let started = Instant::now();
    let attack = async {
        during.await;
    };
    let timer = tokio::time::sleep(PHASE);
    tokio::join!(attack, timer);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let p99 = latencies.get(latencies.len().saturating_sub(1) * 99 / 100).copied().unwrap_or_default();
    Neighbour { ok: ok.load(Ordering::Relaxed), failed: failed.load(Ordering::Relaxed), took: started.elapsed(), p99 }
}

/// Repeats an attack request until the phase ends; returns the last answer.
pub async fn repeat_attack(gw: &Gateway, query: &str) -> (u16, String) {
    let end = Instant::now() + PHASE;
    let mut last = (0, String::new());
    let mut n = 0;
    while Instant::now() < end && n < 10_000 {
        n += 1;
        last = gw.inbound_get(&format!("/backends/evil/?identity=x&{query}")).await;
    }
    last
}

/// The text the hostile backend stored for its last accepted request.
pub async fn last_evil_text(gw: &Gateway) -> String {
    let (_, list) = gw.get_json("/api/v1/messages?direction=in&backend=evil&limit=1").await;
    list["messages"][0]["text"].as_str().unwrap_or("").to_string()
}

pub fn stored_count(gw: &Gateway, backend: &str) -> i64 {
    let db =
        rusqlite::Connection::open_with_flags(gw.data_dir.join("smsgw.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    db.query_row("SELECT COUNT(*) FROM messages WHERE direction = 'in' AND backend = ?1", [backend], |r| r.get(0))
        .unwrap()
}

/// Load on `good` while `during` runs.
pub async fn neighbour(gw: &Gateway, during: impl std::future::Future<Output = ()>) -> Neighbour {
    load(gw, during).await
}

/// The neighbour's baseline rate with no attack.
pub async fn baseline(gw: &Gateway) -> f64 {
    let n = neighbour(gw, async {}).await;
    assert_eq!(n.failed, 0, "the neighbour fails with no attack at all");
    n.rate()
}
