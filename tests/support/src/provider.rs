//! A real HTTP server on loopback standing in for an SMS provider.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A request the mock provider received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When it arrived (for latencies measured at the provider).
    pub at: Instant,
}

impl Received {
    /// The first query parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

struct ProviderState {
    /// Requests kept for inspection; `None` when only counting (load tests).
    received: Option<Mutex<Vec<Received>>>,
    /// Statuses to answer with, in order; then `answer`.
    script: Mutex<Vec<u16>>,
    answer: (u16, &'static str),
    /// Answer with the request itself (what a provider that echoes does).
    echo: bool,
    /// Answer only after this long (a slow provider).
    delay: Duration,
    epoch: Instant,
    count: AtomicU64,
    /// Nanoseconds after `epoch` of the first and the latest request.
    first: AtomicU64,
    last: AtomicU64,
}

/// A loopback provider; stopped when dropped.
pub struct MockProvider {
    pub addr: SocketAddr,
    state: Arc<ProviderState>,
    task: tokio::task::JoinHandle<()>,
}

impl MockProvider {
    /// Answers with the statuses in `script`, then 200; keeps every request.
    pub async fn start(script: &[u16]) -> MockProvider {
        Self::spawn(Some(Mutex::new(Vec::new())), script, (200, "mock answer"), false, Duration::ZERO).await
    }

    /// Answers every request with `status` and `body`, keeping only counts
    /// and times: for load, where storing requests would be measured too.
    pub async fn counting(status: u16, body: &'static str) -> MockProvider {
        Self::spawn(None, &[], (status, body), false, Duration::ZERO).await
    }

    /// Answers 200 with the request it got: method, URL, headers and body.
    pub async fn echo() -> MockProvider {
        Self::spawn(Some(Mutex::new(Vec::new())), &[], (200, ""), true, Duration::ZERO).await
    }

    /// Answers 200 after `delay`, keeping every request.
    pub async fn delayed(delay: Duration) -> MockProvider {
        Self::spawn(Some(Mutex::new(Vec::new())), &[], (200, "mock answer"), false, delay).await
    }

    async fn spawn(
        received: Option<Mutex<Vec<Received>>>,
        script: &[u16],
        answer: (u16, &'static str),
        echo: bool,
        delay: Duration,
    ) -> Self {
        let state = Arc::new(ProviderState {
            received,
            script: Mutex::new(script.to_vec()),
            answer,
            echo,
            delay,
            epoch: Instant::now(),
            count: AtomicU64::new(0),
            first: AtomicU64::new(0),
            last: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(record).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockProvider { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, for `allowed_hosts`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests received so far (empty for a counting provider).
    pub fn received(&self) -> Vec<Received> {
        self.state.received.as_ref().map(|r| r.lock().unwrap().clone()).unwrap_or_default()
    }

    /// Requests received so far.
    pub fn count(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// Forgets the first/latest times (the count keeps going).
    pub fn reset_times(&self) {
        self.state.first.store(0, Ordering::Relaxed);
        self.state.last.store(0, Ordering::Relaxed);
    }

    /// Time from the first to the latest request since the last reset.
    pub fn span(&self) -> Duration {
        let (first, last) = (self.state.first.load(Ordering::Relaxed), self.state.last.load(Ordering::Relaxed));
        Duration::from_nanos(last.saturating_sub(first))
    }

    /// Waits (at most `limit`) until `total` requests have arrived; false on timeout.
    pub async fn wait_count(&self, total: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.count() < total {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    /// Waits until at least `n` requests arrived and returns them; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        if !self.wait_count(n as u64, timeout).await {
            panic!("mock provider got {} request(s), expected {n}", self.count());
        }
        self.received()
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(state): State<Arc<ProviderState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default().to_vec();
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let echoed = state.echo.then(|| {
        let headers: Vec<String> =
            parts.headers.iter().map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?"))).collect();
        format!("{} {}\n{}\n\n{}", parts.method, parts.uri, headers.join("\n"), String::from_utf8_lossy(&body))
    });
    if let Some(received) = &state.received {
        let query = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
        let request = Received {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query,
            body,
            at: Instant::now(),
        };
        received.lock().unwrap().push(request);
    }
    let status = {
        let mut script = state.script.lock().unwrap();
        if script.is_empty() { state.answer.0 } else { script.remove(0) }
    };
    let at = state.epoch.elapsed().as_nanos() as u64;
    let _ = state.first.compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
    state.last.fetch_max(at, Ordering::Relaxed);
    // Counted last, so a waiter that sees the count also sees the request.
    state.count.fetch_add(1, Ordering::Relaxed);
    match echoed {
        Some(echoed) => (StatusCode::OK, echoed).into_response(),
        None => (StatusCode::from_u16(status).unwrap(), state.answer.1).into_response(),
    }
}
