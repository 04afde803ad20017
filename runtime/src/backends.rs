//! The mounted backends: loading components, and looking them up by name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;

use crate::config::BackendConfig;
use crate::egress::EgressPolicy;
use crate::limits::Limits;
use crate::secrets::Secrets;
use crate::wasm::cache::CompileCache;
use crate::wasm::engine::WasmEngine;
use crate::wasm::http_client::Transport;
use crate::wasm::sandbox::{self, BackendShared, HostState, Sandbox};
use crate::wasm::validate;

/// A backend version serving traffic.
pub struct MountedBackend {
    pub name: String,
    /// Where the component came from (`builtin:http`, a path, `upload`).
    pub source: String,
    pub sha256: String,
    pub size: usize,
    /// Uploaded version number; `None` for backends from the config file.
    pub version: Option<i64>,
    /// How long compiling (or loading from the cache) took.
    pub load_time: std::time::Duration,
    pub sandbox: Sandbox,
    /// Kept to build sandboxes with another transport (dry runs).
    pub component: wasmtime::component::Component,
    pub config: BackendConfig,
    pub stats: CallStats,
    pub breaker: Breaker,
}

/// Pauses a backend that keeps failing (trapping, timing out), so a broken
/// component stops burning CPU and retries; resumes after a cool-down or on
/// redeploy (a new version starts closed).
#[derive(Debug)]
pub struct Breaker {
    failures: AtomicU32,
    open_until: AtomicI64,
    threshold: u32,
    cooldown_ms: i64,
}

impl Breaker {
    /// A closed breaker opening after `threshold` consecutive failures.
    pub fn new(threshold: u32, cooldown_ms: u64) -> Self {
        Breaker {
            failures: AtomicU32::new(0),
            open_until: AtomicI64::new(0),
            threshold: threshold.max(1),
            cooldown_ms: cooldown_ms.min(i64::MAX as u64) as i64,
        }
    }

    /// When the pause ends, if the backend is paused now.
    pub fn open_until(&self) -> Option<crate::store::Millis> {
        let until = self.open_until.load(Ordering::Relaxed);
        (until > crate::store::now_ms()).then_some(until)
    }

    /// Records one call's outcome; returns true when this failure opened the breaker.
    pub fn record(&self, failed: bool) -> bool {
        if !failed {
            self.failures.store(0, Ordering::Relaxed);
            return false;
        }
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n < self.threshold {
            return false;
        }
        self.open_until.store(crate::store::now_ms() + self.cooldown_ms, Ordering::Relaxed);
        // Half-open after the cool-down: one more failure pauses it again.
        self.failures.store(self.threshold - 1, Ordering::Relaxed);
        true
    }
}

/// Call counters shown by the admin API.
#[derive(Debug, Default)]
pub struct CallStats {
    pub inbound_ok: AtomicU64,
    pub inbound_failed: AtomicU64,
    pub send_ok: AtomicU64,
    pub send_failed: AtomicU64,
}

impl CallStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
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

/// Backend names appear in URLs and file names: keep them plain.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
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

/// Loads components and holds the active version of each backend.
pub struct Registry {
    engine: Arc<WasmEngine>,
    linker: wasmtime::component::Linker<HostState>,
    cache: CompileCache,
    transport: Arc<dyn Transport>,
    public_url: String,
    defaults: Limits,
    active: RwLock<HashMap<String, Arc<MountedBackend>>>,
}

impl Registry {
    /// An empty registry compiling into `cache`.
    pub fn new(
        engine: Arc<WasmEngine>,
        cache: CompileCache,
        transport: Arc<dyn Transport>,
        public_url: String,
        defaults: Limits,
    ) -> anyhow::Result<Self> {
        let linker = sandbox::linker(&engine)?;
        Ok(Registry { engine, linker, cache, transport, public_url, defaults, active: RwLock::new(HashMap::new()) })
    }

    /// The active version of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<MountedBackend>> {
        self.active.read().expect("registry lock").get(name).cloned()
    }

    /// Names of every mounted backend, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.active.read().expect("registry lock").keys().cloned().collect();
        names.sort();
        names
    }

    /// Makes `backend` the active version of its name; running calls finish on the old one.
    pub fn activate(&self, backend: Arc<MountedBackend>) {
        self.active.write().expect("registry lock").insert(backend.name.clone(), backend);
    }

    /// Unmounts `name`; running calls finish, new requests get 404.
    pub fn remove(&self, name: &str) -> Option<Arc<MountedBackend>> {
        self.active.write().expect("registry lock").remove(name)
    }

    /// The engine components are compiled for.
    pub fn engine(&self) -> &Arc<WasmEngine> {
        &self.engine
    }

    /// A sandbox for `backend` whose HTTP goes to `transport` (dry runs).
    pub fn sandbox_with(&self, backend: &MountedBackend, transport: Arc<dyn Transport>) -> anyhow::Result<Sandbox> {
        self.build_sandbox(&backend.config, &backend.component, transport)
    }

    fn build_sandbox(
        &self,
        cfg: &BackendConfig,
        component: &wasmtime::component::Component,
        transport: Arc<dyn Transport>,
    ) -> anyhow::Result<Sandbox> {
        let limits = self.defaults.with_overrides(cfg.limits.as_ref())?;
        let policy = EgressPolicy::new(&cfg.allowed_hosts)?;
        let secrets = Secrets::new(
            cfg.secrets
                .iter()
                .map(|(k, v)| v.resolve(k).map(|v| (k.clone(), v)))
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        let config_json = serde_json::to_string(&cfg.config)?;
        let shared = BackendShared { name: cfg.name.clone(), policy, secrets, transport };
        let base_url = format!("{}/backends/{}/", self.public_url, cfg.name);
        Sandbox::new(&self.linker, component, shared, limits, config_json, base_url)
            .context("the component's imports cannot be satisfied")
    }

    /// Reads the component named by `cfg.component`.
    pub fn component_bytes(source: &str) -> anyhow::Result<Vec<u8>> {
        if let Some(name) = source.strip_prefix("builtin:") {
            return crate::builtin::component(name).map(<[u8]>::to_vec).with_context(|| {
                format!(
                    "unknown built-in component '{name}' (built-in: {})",
                    crate::builtin::names().collect::<Vec<_>>().join(", ")
                )
            });
        }
        std::fs::read(source).with_context(|| format!("cannot read component {source}"))
    }

    /// Validates, compiles (or loads from cache) and links a backend. Blocking:
    /// compilation is CPU-bound.
    pub fn load(&self, cfg: &BackendConfig, wasm: &[u8]) -> anyhow::Result<MountedBackend> {
        validate_name(&cfg.name)?;
        validate::check_header(wasm)?;
        let compiled = self.cache.load(wasm).context("the component does not compile")?;
        let shape = validate::shape(self.engine.engine(), &compiled.component);
        validate::check_shape(&shape)?;
        let sandbox = self.build_sandbox(cfg, &compiled.component, self.transport.clone())?;
        tracing::info!(
            backend = cfg.name.as_str(),
            source = cfg.component.as_str(),
            sha256 = compiled.sha256.as_str(),
            cached = !compiled.compiled,
            "loaded backend in {:?}",
            compiled.elapsed
        );
        let breaker = Breaker::new(sandbox.limits().breaker_failures, sandbox.limits().breaker_cooldown_ms);
        Ok(MountedBackend {
            name: cfg.name.clone(),
            source: cfg.component.clone(),
            sha256: compiled.sha256,
            size: wasm.len(),
            version: None,
            load_time: compiled.elapsed,
            sandbox,
            component: compiled.component,
            breaker,
            config: cfg.clone(),
            stats: CallStats::default(),
        })
    }
}
