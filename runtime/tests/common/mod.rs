//! Test harness: the real `smsgw` binary on loopback, and a real mock provider.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A free loopback port (the listener is closed before the port is used).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Directory of the test-only guest components.
pub fn test_guest(name: &str) -> PathBuf {
    Path::new(env!("SMSGW_TEST_GUESTS")).join(format!("{name}.wasm"))
}

/// A running gateway process, killed (by PID) when dropped.
pub struct Gateway {
    child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub http: reqwest::Client,
}

impl Gateway {
    /// Starts `smsgw serve` with `config` (TOML, without listen/data_dir) in `dir`.
    pub async fn start(dir: &Path, config: &str) -> Gateway {
        let port = free_port();
        let data_dir = dir.join("data");
        let config_path = dir.join("smsgw.toml");
        std::fs::write(&config_path, config).unwrap();
        Self::spawn(port, data_dir, config_path).await
    }

    /// Starts the binary again on the same data directory and configuration.
    pub async fn restart(mut self) -> Gateway {
        self.stop();
        let (port, data_dir, config_path) = (self.port, self.data_dir.clone(), self.config_path.clone());
        Self::spawn(port, data_dir, config_path).await
    }

    async fn spawn(port: u16, data_dir: PathBuf, config_path: PathBuf) -> Gateway {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let log_path = data_dir.with_file_name(format!("gateway-{port}-{stamp}.log"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_smsgw"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start smsgw");
        let gw = Gateway { child, port, data_dir, config_path, log_path, http: reqwest::Client::new() };
        gw.wait_healthy().await;
        gw
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway did not become healthy; log:\n{}", self.log());
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.http.post(self.url(path)).json(body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GETs a provider route; returns status and body text.
    pub async fn inbound_get(&self, path_and_query: &str) -> (u16, String) {
        let r = self.http.get(self.url(path_and_query)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Polls a message until `done` holds for it, or panics after `timeout`.
    pub async fn wait_message(&self, id: i64, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let (status, m) = self.get_json(&format!("/api/v1/messages/{id}")).await;
            if status == 200 && done(&m) {
                return m;
            }
            last = m;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("message {id} never reached the expected state; last: {last:#}\nlog:\n{}", self.log());
    }

    /// The newest outbound message replying to inbound message `id`.
    pub async fn wait_reply_to(&self, inbound: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let (_, list) = self.get_json("/api/v1/messages?direction=out&limit=100").await;
            if let Some(m) = list["messages"].as_array().unwrap().iter().find(|m| m["in_response_to"] == inbound) {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no reply to message {inbound}; log:\n{}", self.log());
    }

    /// The id of the newest inbound message.
    pub async fn last_inbound_id(&self) -> i64 {
        let (_, list) = self.get_json("/api/v1/messages?direction=in&limit=1").await;
        list["messages"][0]["id"].as_i64().expect("an inbound message")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A request the mock provider received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct MockState {
    received: Vec<Received>,
    /// Statuses to answer with, in order; 200 once they run out.
    script: Vec<u16>,
}

/// A real HTTP server on loopback standing in for an SMS provider.
pub struct MockProvider {
    pub addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockProvider {
    /// Starts a provider answering with `script` (then 200).
    pub async fn start(script: &[u16]) -> MockProvider {
        let state = Arc::new(Mutex::new(MockState { received: Vec::new(), script: script.to_vec() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(record).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockProvider { addr, state, task }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("mock provider got {} request(s), expected {n}", self.received().len());
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(state): State<Arc<Mutex<MockState>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
    let query = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let mut s = state.lock().unwrap();
    s.received.push(Received { method: parts.method.to_string(), path: parts.uri.path().to_string(), query, body });
    let status = if s.script.is_empty() { 200 } else { s.script.remove(0) };
    (StatusCode::from_u16(status).unwrap(), "mock answer").into_response()
}
