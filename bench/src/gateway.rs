//! The real `smsgw` binary as a child process, stopped by PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `smsgw` binary next to this benchmark's own executable (same profile),
/// built first if needed.
pub fn binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| anyhow::anyhow!("no exe dir"))?;
    let release = dir.ends_with("release");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.args(["build", "-q", "-p", "smsgw", "--bin", "smsgw"]);
    if release {
        cargo.arg("--release");
    }
    let status = cargo.current_dir(env!("CARGO_MANIFEST_DIR")).status()?;
    anyhow::ensure!(status.success(), "building smsgw failed");
    Ok(dir.join("smsgw"))
}

/// A running gateway.
pub struct Gateway {
    child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    config: PathBuf,
    bin: PathBuf,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Gateway {
    /// Starts the gateway with `config` in `dir` and waits until it serves.
    pub async fn start(bin: &Path, dir: &Path, config: &str) -> anyhow::Result<(Gateway, Duration)> {
        let config_path = dir.join("smsgw.toml");
        std::fs::write(&config_path, config)?;
        Self::spawn(bin.to_path_buf(), free_port(), dir.join("data"), config_path).await
    }

    async fn spawn(bin: PathBuf, port: u16, data_dir: PathBuf, config: PathBuf) -> anyhow::Result<(Gateway, Duration)> {
        let started = Instant::now();
        let child = Command::new(&bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .env("SMSGW_ADMIN_TOKEN", crate::parts::TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let gw = Gateway { child, port, data_dir, config, bin };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(gw.url("/healthz")).send().await
                && r.status().is_success()
            {
                return Ok((gw, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::bail!("gateway did not start")
    }

    /// Stops it and starts it again on the same data; returns the time to serving.
    pub async fn restart(self) -> anyhow::Result<(Gateway, Duration)> {
        let config = std::fs::read_to_string(&self.config)?;
        self.restart_with(&config).await
    }

    /// Like [`Gateway::restart`], with a new configuration.
    pub async fn restart_with(mut self, config: &str) -> anyhow::Result<(Gateway, Duration)> {
        std::fs::write(&self.config, config)?;
        self.stop();
        let (bin, port, data, config) = (self.bin.clone(), self.port, self.data_dir.clone(), self.config.clone());
        Self::spawn(bin, port, data, config).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
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

    /// CPU time (user + system) the gateway process has used so far.
    pub fn cpu_time(&self) -> Duration {
        process_cpu_time(self.child.id())
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// CPU time (user + system) process `pid` has used so far, 10 ms resolution.
pub fn process_cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th,
    // in USER_HZ (100 on every architecture Linux supports).
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}
