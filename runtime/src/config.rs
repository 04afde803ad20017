//! The gateway's TOML configuration, RapidSMS's `settings.py` for smsgw.
//!
//! Every key has a default, so an empty (or absent) file gives a useful
//! gateway: the built-in generic HTTP backend mounted as `http`, and the
//! `echo` and `ping` apps.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::apps::AppsConfig;
use crate::limits::Limits;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Where the database and compiled components live.
    pub data_dir: PathBuf,
    /// The URL providers use to reach this gateway (for callback URLs such as
    /// delivery reports). Defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// RapidSMS's `INSTALLED_BACKENDS`.
    pub backends: Vec<BackendConfig>,
    pub apps: AppsConfig,
    pub outbound: OutboundConfig,
    /// Limits applied to every backend unless it overrides them.
    pub limits: Limits,
    /// Largest inbound provider request body accepted, in bytes.
    pub max_inbound_body_bytes: usize,
    /// File holding the admin API's bearer token (`SMSGW_ADMIN_TOKEN` wins).
    /// With neither, the admin API is disabled.
    pub admin_token_file: Option<PathBuf>,
    /// Largest component accepted by upload (a Python component is ~20-40 MiB).
    pub max_component_bytes: usize,
    /// How long compiling an uploaded component may take.
    pub compile_timeout_ms: u64,
    /// How long a stop (SIGTERM) waits for requests and sends in flight to
    /// finish and be recorded before the process exits anyway.
    pub shutdown_timeout_ms: u64,
    /// The HTTP edge: timeouts and connection caps.
    pub http: HttpEdgeConfig,
    /// When a repeated provider callback is the same message.
    pub dedup: DedupConfig,
    /// `text` (for people) or `json` (for log collectors); `--log-format` wins.
    pub log_format: LogFormat,
    /// Who may read `/metrics`: `auto` (anyone when listening on loopback,
    /// else the admin token), `open` or `token`.
    pub metrics_auth: MetricsAuth,
    /// Every exchange between providers and backends, per backend.
    pub channel_log: crate::channel_log::ChannelLogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir: PathBuf::from("smsgw-data"),
            public_url: None,
            backends: vec![BackendConfig::builtin_http()],
            apps: AppsConfig::default(),
            outbound: OutboundConfig::default(),
            limits: Limits::default(),
            max_inbound_body_bytes: 1024 * 1024,
            admin_token_file: None,
            max_component_bytes: 64 << 20,
            compile_timeout_ms: 120_000,
            shutdown_timeout_ms: 30_000,
            http: HttpEdgeConfig::default(),
            dedup: DedupConfig::default(),
            log_format: LogFormat::Text,
            metrics_auth: MetricsAuth::Auto,
            channel_log: Default::default(),
        }
    }
}

/// Backend names appear in URLs and file names: keep them plain.
pub fn validate_backend_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        anyhow::bail!(
            "invalid backend name '{name}': use 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit"
        );
    }
    Ok(())
}

/// One mounted backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// The mount name: inbound requests arrive at `/backends/<name>/`.
    pub name: String,
    /// `builtin:<name>` or a path to a `.wasm` component.
    pub component: String,
    /// Origins (`scheme://host[:port]`) the backend may call.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Passed to the component as JSON.
    #[serde(default)]
    pub config: toml::Table,
    /// Values the host substitutes for `{{secret:NAME}}` in outbound requests;
    /// never shown to the component, never logged.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretValue>,
    /// Per-backend overrides of the global limits.
    #[serde(default)]
    pub limits: Option<toml::Table>,
}

impl BackendConfig {
    /// The backend every fresh gateway has.
    pub fn builtin_http() -> Self {
        BackendConfig {
            name: "http".into(),
            component: "builtin:http".into(),
            allowed_hosts: Vec::new(),
            config: toml::Table::new(),
            secrets: BTreeMap::new(),
            limits: None,
        }
    }
}

/// A secret given inline or read from the environment at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretValue {
    Inline(String),
    Env { env: String },
}

impl SecretValue {
    /// The secret's value.
    pub fn resolve(&self, name: &str) -> anyhow::Result<String> {
        match self {
            SecretValue::Inline(v) => Ok(v.clone()),
            SecretValue::Env { env } => std::env::var(env)
                .map_err(|_| anyhow::anyhow!("secret '{name}' names environment variable {env}, which is not set")),
        }
    }
}

/// Inbound de-duplication: providers resend callbacks they believe failed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Same backend and provider message id within this long is the same message (0: off).
    pub provider_id_window_ms: u64,
    /// Without a provider id: same backend, sender and text within this long (0: off).
    pub same_text_window_ms: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig { provider_id_window_ms: 24 * 3600 * 1000, same_text_window_ms: 10_000 }
    }
}

impl DedupConfig {
    /// The windows as the store applies them.
    pub fn windows(&self) -> crate::store::DedupWindows {
        let ms = |v: u64| v.min(i64::MAX as u64) as i64;
        crate::store::DedupWindows {
            provider_id_ms: ms(self.provider_id_window_ms),
            same_text_ms: ms(self.same_text_window_ms),
        }
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAuth {
    Auto,
    Open,
    Token,
}

impl Config {
    /// True when `/metrics` needs no token.
    pub fn metrics_open(&self) -> bool {
        match self.metrics_auth {
            MetricsAuth::Open => true,
            MetricsAuth::Token => false,
            MetricsAuth::Auto => self.listen.ip().is_loopback(),
        }
    }
}

/// How the gateway writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The HTTP listener's defences against slow and greedy clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpEdgeConfig {
    /// Time a client has to send a request's headers; also how long an idle
    /// keep-alive connection is kept.
    pub header_timeout_ms: u64,
    /// Time a client has to send a request's body.
    pub body_timeout_ms: u64,
    /// Connections served at once; beyond it a few more are accepted for
    /// `/healthz` alone, and the rest are closed at once.
    pub max_connections: usize,
}

impl Default for HttpEdgeConfig {
    fn default() -> Self {
        HttpEdgeConfig { header_timeout_ms: 10_000, body_timeout_ms: 30_000, max_connections: 1024 }
    }
}

/// The outbound queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Concurrent `send` calls per backend; 0 queues messages without sending
    /// them (to hold the queue during a provider outage, or on an API-only node).
    /// A slot is held until its outcome is committed (the kill -9 bound), so
    /// it turns over once per commit (a few ms under load): 32 keep echo
    /// replies level with 16 connections of inbound (`bench ... pace`), 8 did not.
    pub workers: usize,
    /// How long a message keeps being retried after it was queued: a real
    /// provider outage lasts minutes to hours.
    pub retry_for_ms: u64,
    /// Attempts before a retryable failure becomes final, if capped at all
    /// (throttled answers never count).
    pub max_attempts: Option<u32>,
    /// First retry delay; doubles each attempt, with jitter.
    pub retry_base_ms: u64,
    /// Upper bound of the retry delay (and of a provider's `Retry-After`).
    pub retry_max_ms: u64,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            workers: 32,
            retry_for_ms: 24 * 3600 * 1000,
            max_attempts: None,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
        }
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        let config: Config =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// Rejects configurations that would fail later in a less obvious way.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::HashSet::new();
        for b in &self.backends {
            validate_backend_name(&b.name)?;
            if !seen.insert(&b.name) {
                anyhow::bail!("backend '{}' is declared twice", b.name);
            }
            for origin in &b.allowed_hosts {
                crate::egress::Origin::parse(origin)
                    .map_err(|e| anyhow::anyhow!("backend '{}': allowed_hosts: {e}", b.name))?;
            }
        }
        self.apps.validate()?;
        if self.outbound.max_attempts == Some(0) {
            anyhow::bail!("outbound.max_attempts must be at least 1");
        }
        Ok(())
    }

    /// The admin token: `SMSGW_ADMIN_TOKEN`, else the token file, else none.
    pub fn admin_token(&self) -> anyhow::Result<Option<String>> {
        if let Ok(token) = std::env::var("SMSGW_ADMIN_TOKEN")
            && !token.trim().is_empty()
        {
            return Ok(Some(token.trim().to_string()));
        }
        match &self.admin_token_file {
            None => Ok(None),
            Some(path) => {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read admin_token_file {}: {e}", path.display()))?;
                let token = token.trim().to_string();
                if token.len() < 16 {
                    anyhow::bail!("the admin token in {} is shorter than 16 characters", path.display());
                }
                Ok(Some(token))
            }
        }
    }

    /// The public base URL, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}
