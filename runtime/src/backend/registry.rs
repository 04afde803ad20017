//! The mounted backends: loading components, and looking them up by name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;

use super::MountedBackend;
use crate::channel_log::ChannelLog;
use crate::config::{BackendConfig, validate_backend_name};
use crate::egress::EgressPolicy;
use crate::limits::Limits;
use crate::secrets::Secrets;
use crate::wasm::cache::{CompileCache, Compiled};
use crate::wasm::engine::WasmEngine;
use crate::wasm::rate::{Gcra, RateLimiter};
use crate::wasm::transport::Transport;
use crate::wasm::{Sandbox, SandboxFactory, SandboxSpec, validate};

/// Instance slots every mounted backend version holds for itself, so that no
/// other backend can take its last one.
pub const RESERVED_SLOTS: u32 = 1;

/// A backend's (rate, burst) and the limiter enforcing it.
type RateEntry = ((u32, u32), Arc<Gcra>);

/// Loads components and holds the active version of each backend.
pub struct Registry {
    sandboxes: SandboxFactory,
    cache: CompileCache,
    transport: Arc<dyn Transport>,
    public_url: String,
    defaults: Limits,
    active: RwLock<HashMap<String, Arc<MountedBackend>>>,
    /// Each backend's send rate, kept across versions: a redeploy does not
    /// reset how fast its provider is being called.
    rates: Mutex<HashMap<String, RateEntry>>,
    /// Where mounted backends record their provider exchanges.
    channel_log: Option<Arc<ChannelLog>>,
}

impl Registry {
    /// An empty registry compiling into `cache`; backends reach providers through `transport`.
    pub fn new(
        engine: Arc<WasmEngine>,
        cache: CompileCache,
        transport: Arc<dyn Transport>,
        public_url: String,
        defaults: Limits,
    ) -> anyhow::Result<Self> {
        let sandboxes = SandboxFactory::new(engine)?;
        Ok(Registry {
            sandboxes,
            cache,
            transport,
            public_url,
            defaults,
            active: RwLock::new(HashMap::new()),
            rates: Mutex::new(HashMap::new()),
            channel_log: None,
        })
    }

    /// Records the provider exchanges of backends loaded from now on in `log`.
    pub fn with_channel_log(mut self, log: Arc<ChannelLog>) -> Self {
        self.channel_log = Some(log);
        self
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
        self.sandboxes.engine()
    }

    /// A sandbox for `backend` whose HTTP goes to `transport` (dry runs; it
    /// reserves no instance slots).
    pub fn sandbox_with(&self, backend: &MountedBackend, transport: Arc<dyn Transport>) -> anyhow::Result<Sandbox> {
        let spec = SandboxSpec { reserved_slots: 0, rate: None, channel_log: None, ..self.spec_for(&backend.config)? };
        self.sandboxes.build(backend.component(), spec, transport)
    }

    /// What a sandbox for `cfg` is given: its limits (defaults with its
    /// overrides), egress policy, resolved secrets, configuration and URL.
    pub fn spec_for(&self, cfg: &BackendConfig) -> anyhow::Result<SandboxSpec> {
        let limits = self.defaults.with_overrides(cfg.limits.as_ref())?;
        let rate = self.rate_for(&cfg.name, &limits);
        let secrets = cfg
            .secrets
            .iter()
            .map(|(k, v)| v.resolve(k).map(|v| (k.clone(), v)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SandboxSpec {
            name: cfg.name.clone(),
            policy: EgressPolicy::new(&cfg.allowed_hosts)?,
            secrets: Secrets::new(secrets),
            limits,
            config_json: serde_json::to_string(&cfg.config)?,
            base_url: format!("{}/backends/{}/", self.public_url, cfg.name),
            reserved_slots: RESERVED_SLOTS,
            rate,
            channel_log: self.channel_log.clone(),
        })
    }

    /// The send rate of backend `name`, the same limiter while its rate stays the same.
    fn rate_for(&self, name: &str, limits: &Limits) -> Option<Arc<dyn RateLimiter>> {
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if limits.rate_per_second == 0 {
            rates.remove(name);
            return None;
        }
        let wanted = (limits.rate_per_second, limits.rate_burst);
        let entry = rates.entry(name.to_string()).or_insert_with(|| (wanted, Arc::new(Gcra::new(wanted.0, wanted.1))));
        if entry.0 != wanted {
            *entry = (wanted, Arc::new(Gcra::new(wanted.0, wanted.1)));
        }
        Some(entry.1.clone())
    }

    /// Reads the component named by `cfg.component`.
    pub fn component_bytes(source: &str) -> anyhow::Result<Vec<u8>> {
        if let Some(name) = source.strip_prefix("builtin:") {
            return super::builtin::component(name).map(<[u8]>::to_vec).with_context(|| {
                format!(
                    "unknown built-in component '{name}' (built-in: {})",
                    super::builtin::names().collect::<Vec<_>>().join(", ")
                )
            });
        }
        std::fs::read(source).with_context(|| format!("cannot read component {source}"))
    }

    /// The compile cache (uploads put their validated artefacts there).
    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// Validates, compiles (or loads from cache) and links a backend from a
    /// source the operator trusts (the configuration file, a version that
    /// passed upload checks before). Blocking: compilation is CPU-bound.
    pub fn load(&self, cfg: &BackendConfig, wasm: &[u8]) -> anyhow::Result<MountedBackend> {
        validate_backend_name(&cfg.name)?;
        let compiled = validate::compile(self.engine().engine(), Some(&self.cache), wasm)?;
        self.mount(cfg, compiled, wasm.len())
    }

    /// Links a validated component as a version of `cfg.name`, ready to activate.
    pub fn mount(&self, cfg: &BackendConfig, compiled: Compiled, size: usize) -> anyhow::Result<MountedBackend> {
        let sandbox = self
            .sandboxes
            .build(&compiled.component, self.spec_for(cfg)?, self.transport.clone())
            .context("the component's imports cannot be satisfied")?;
        if sandbox.reserved_slots() < RESERVED_SLOTS {
            anyhow::bail!(
                "the instance pool has no slot left to reserve for another backend ({} backends mounted); remove one first",
                self.names().len()
            );
        }
        tracing::info!(
            backend = cfg.name.as_str(),
            source = cfg.component.as_str(),
            sha256 = compiled.sha256.as_str(),
            cached = !compiled.compiled,
            "loaded backend in {:?}",
            compiled.elapsed
        );
        let facts = (compiled.sha256, size, compiled.elapsed);
        Ok(MountedBackend::new(cfg.clone(), sandbox, compiled.component, facts))
    }
}
