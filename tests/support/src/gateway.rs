//! The real `smsgw` binary as a child process, stopped by its PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{free_port, process_cpu_time};

/// How to start a gateway process.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// The executable; it must accept `serve --listen --data-dir --config`.
    pub bin: PathBuf,
    /// Arguments after `serve`'s own.
    pub extra_args: Vec<String>,
    /// Environment added to the child's.
    pub env: Vec<(String, String)>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions { bin: binary(), extra_args: Vec::new(), env: vec![("RUST_LOG".into(), "info".into())] }
    }
}

/// `SMSGW_BIN`, else the `smsgw` built beside the running executable (an
/// integration test in `target/<profile>/deps/`, a benchmark in `target/<profile>/`).
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SMSGW_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current executable");
    let mut dir = exe.parent().expect("executable's directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("smsgw")
}

/// A running gateway process, killed (by PID) when dropped.
pub struct Gateway {
    child: Child,
    options: GatewayOptions,
    pub port: u16,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    /// How long it took from spawning to answering `/healthz`.
    pub started_in: Duration,
    pub http: reqwest::Client,
}

impl Gateway {
    /// Starts `smsgw serve` with `config` (TOML, without listen/data_dir) in `dir`.
    pub async fn start(dir: &Path, config: &str) -> Gateway {
        Self::start_with(GatewayOptions::default(), dir, config).await
    }

    /// Like [`Gateway::start`], with another executable, arguments or environment.
    pub async fn start_with(options: GatewayOptions, dir: &Path, config: &str) -> Gateway {
        let config_path = dir.join("smsgw.toml");
        std::fs::write(&config_path, config).unwrap();
        Self::spawn(options, free_port(), dir.join("data"), config_path).await
    }

    /// Stops it and starts the binary again on the same data and configuration.
    pub async fn restart(mut self) -> Gateway {
        self.stop();
        let (port, data_dir, config_path) = (self.port, self.data_dir.clone(), self.config_path.clone());
        Self::spawn(self.options.clone(), port, data_dir, config_path).await
    }

    /// Like [`Gateway::restart`], with a new configuration.
    pub async fn restart_with(self, config: &str) -> Gateway {
        std::fs::write(&self.config_path, config).unwrap();
        self.restart().await
    }

    async fn spawn(options: GatewayOptions, port: u16, data_dir: PathBuf, config_path: PathBuf) -> Gateway {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let log_path = data_dir.with_file_name(format!("gateway-{port}-{stamp}.log"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        let started = Instant::now();
        let child = Command::new(&options.bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--config")
            .arg(&config_path)
            .args(&options.extra_args)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", options.bin.display()));
        let mut gw = Gateway {
            child,
            options,
            port,
            data_dir,
            config_path,
            log_path,
            started_in: Duration::ZERO,
            http: reqwest::Client::new(),
        };
        gw.wait_healthy(started).await;
        gw
    }

    async fn wait_healthy(&mut self, started: Instant) {
        let deadline = started + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                self.started_in = started.elapsed();
                return;
            }
            if !self.is_running() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("gateway did not become healthy; log:\n{}", self.log());
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit;
    /// returns its exit status, or `None` if it was still running (it is then killed).
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        None
    }

    /// Starts the same executable, configuration and data directory again on
    /// another port without waiting for it: for checking that it refuses.
    pub fn start_second(&self) -> std::process::Output {
        Command::new(&self.options.bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .output()
            .expect("run a second gateway")
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

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Resident and peak memory in KiB (VmRSS, VmHWM).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        process_cpu_time(self.child.id())
    }

    /// GETs `path`; status and JSON body (null when not JSON).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POSTs `body` as JSON to `path`; status and JSON body.
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

    /// The newest outbound message replying to inbound message `inbound`.
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
