//! Adding, replacing, rolling back and removing backends while the gateway
//! serves traffic.
//!
//! Everything is checked before anything changes: the component is validated
//! and compiled (on a bounded pool, within a time limit), optional fixtures are
//! run against it, its bytes are written content-addressed, and only then is the
//! version recorded and swapped in. Calls already running finish on the old
//! version; a crash at any point leaves the last activated version in place.

pub mod compiler;
mod files;

pub use crate::backend::settings::UploadSettings;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::Semaphore;

use self::compiler::Compiler;
use self::files::ComponentFiles;
use crate::authoring::fixtures::{FixtureFile, FixtureRunner};
use crate::backend::{MountedBackend, Registry};
use crate::config::{BackendConfig, validate_backend_name};
use crate::secrets::Secrets;
use crate::store::{BackendVersion, VersionStore};
use crate::wasm::bindings::WIT_VERSION;
use crate::wasm::cache::{Compiled, sha256_hex};
use crate::wasm::validate;

/// Fixture cases an upload may carry.
const MAX_FIXTURE_CASES: usize = 500;
/// How long an upload's fixtures may run in all.
const FIXTURE_TIME: Duration = Duration::from_secs(60);

/// Why a deployment did not happen. Nothing changed in any case.
#[derive(Debug, Error)]
pub enum DeployError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FixturesFailed(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Internal(String),
}

impl From<crate::store::StoreError> for DeployError {
    fn from(e: crate::store::StoreError) -> Self {
        DeployError::Internal(e.to_string())
    }
}

/// What a successful deployment produced.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub size: usize,
    pub wit_version: &'static str,
    pub compile_ms: u64,
    /// True when the compiled code came from the cache.
    pub cached: bool,
    /// Fixture results, when fixtures were sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixtures: Option<String>,
}

/// Deploys uploaded backends.
pub struct Deployer {
    registry: Arc<Registry>,
    store: Arc<dyn VersionStore>,
    files: ComponentFiles,
    /// Backends from the config file: managed there, not by upload.
    config_names: HashSet<String>,
    /// Compiles uploads in a child process, one at a time, so uploads cannot
    /// starve live traffic of CPU and a compile bomb is killed at its deadline.
    compiler: Compiler,
    /// One in-process compilation at a time (restores and rollbacks of versions
    /// that passed the upload checks before).
    compile_slots: Semaphore,
    max_component_bytes: usize,
    /// Serialises changes to the set of versions (uploads, rollbacks, deletes).
    changes: tokio::sync::Mutex<()>,
}

impl Deployer {
    /// A deployer storing component bytes in `components_dir`.
    pub fn new(
        registry: Arc<Registry>,
        store: Arc<dyn VersionStore>,
        components_dir: PathBuf,
        config_names: HashSet<String>,
        compile_timeout: Duration,
        max_component_bytes: usize,
    ) -> anyhow::Result<Self> {
        Ok(Deployer {
            registry,
            store,
            files: ComponentFiles::new(components_dir)?,
            config_names,
            compiler: Compiler::new(compile_timeout)?,
            compile_slots: Semaphore::new(1),
            max_component_bytes,
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// Largest accepted component.
    pub fn max_component_bytes(&self) -> usize {
        self.max_component_bytes
    }

    fn check_managed_here(&self, name: &str) -> Result<(), DeployError> {
        validate_backend_name(name).map_err(|e| DeployError::Invalid(e.to_string()))?;
        if self.config_names.contains(name) {
            return Err(DeployError::Conflict(format!(
                "backend '{name}' is declared in the configuration file; change it there, or upload under another name"
            )));
        }
        Ok(())
    }

    /// Uploads a new component (or, with `wasm` = None, new settings for the
    /// active component) and makes it the active version. Every check
    /// (compilation, imports, settings, fixtures) runs before the change lock
    /// is taken, so a slow upload never holds up other changes.
    pub async fn upload(
        &self,
        name: &str,
        wasm: Option<Vec<u8>>,
        settings: UploadSettings,
        fixtures: Option<FixtureFile>,
    ) -> Result<DeployReport, DeployError> {
        self.check_managed_here(name)?;
        let wasm = match wasm {
            Some(w) => w,
            None => {
                let current = self.registry.get(name).filter(|b| b.version.is_some()).ok_or_else(|| {
                    DeployError::NotFound(format!("no uploaded backend '{name}': send a component with its config"))
                })?;
                self.files.read(&current.sha256)?
            }
        };
        if wasm.len() > self.max_component_bytes {
            return Err(DeployError::TooLarge(format!(
                "component is {} bytes; the limit is {} (max_component_bytes)",
                wasm.len(),
                self.max_component_bytes
            )));
        }
        validate::check_header(&wasm).map_err(|e| DeployError::Invalid(format!("not accepted: {e}")))?;
        let cfg = settings.to_backend_config(name, "upload").map_err(DeployError::Invalid)?;
        if let Some(file) = &fixtures {
            let cases = file.incoming.len() + file.outgoing.len();
            if cases > MAX_FIXTURE_CASES {
                return Err(DeployError::Invalid(format!(
                    "the fixture file has {cases} cases; an upload may carry at most {MAX_FIXTURE_CASES}"
                )));
            }
        }
        let (mounted, artefact) = self.compile_upload(&cfg, &wasm).await?;
        let fixture_report = self.check_with_settings(&mounted, &settings, fixtures).await?;

        let _change = self.changes.lock().await;
        let sha256 = mounted.sha256.clone();
        self.files.write(&sha256, &wasm)?;
        if let Some(artefact) = artefact {
            // Only now, every check passed, does its native code reach the cache.
            self.registry
                .cache()
                .put(&sha256, &artefact)
                .map_err(|e| DeployError::Internal(format!("cannot cache the compiled component: {e:#}")))?;
        }
        let settings_json = serde_json::to_string(&settings).map_err(|e| DeployError::Internal(e.to_string()))?;
        let version =
            self.store.add_backend_version(name, &sha256, wasm.len() as i64, settings_json, WIT_VERSION).await?;
        let report = DeployReport {
            name: name.to_string(),
            version: version.version,
            sha256,
            size: wasm.len(),
            wit_version: WIT_VERSION,
            compile_ms: mounted.load_time.as_millis() as u64,
            cached: false,
            fixtures: fixture_report,
        };
        let mut mounted = mounted;
        mounted.version = Some(version.version);
        self.registry.activate(Arc::new(mounted));
        tracing::info!(backend = name, version = version.version, sha256 = report.sha256.as_str(), "backend deployed");
        Ok(report)
    }

    /// Compiles an upload (in the child process, unless the cache already
    /// holds it: only accepted components are cached) and links it. Returns
    /// the artefact to cache once the upload is accepted.
    async fn compile_upload(
        &self,
        cfg: &BackendConfig,
        wasm: &[u8],
    ) -> Result<(MountedBackend, Option<Vec<u8>>), DeployError> {
        let sha256 = sha256_hex(wasm);
        let (compiled, artefact) = match self.registry.cache().get(&sha256) {
            Some(component) => (Compiled { component, sha256, compiled: false, elapsed: Duration::ZERO }, None),
            None => {
                let artefact = self.compiler.compile(self.registry.engine(), wasm).await?;
                validate::accept(self.registry.engine().engine(), &artefact.component)
                    .map_err(|e| DeployError::Invalid(format!("not accepted: {e}")))?;
                let compiled =
                    Compiled { component: artefact.component, sha256, compiled: true, elapsed: artefact.elapsed };
                (compiled, Some(artefact.bytes))
            }
        };
        let mounted = self
            .registry
            .mount(cfg, compiled, wasm.len())
            .map_err(|e| DeployError::Invalid(format!("not accepted: {e:#}")))?;
        Ok((mounted, artefact))
    }

    /// Runs the checks that need the upload's settings, each bounded in time:
    /// settings the component itself rejects (a `config` error when called
    /// with them) are refused, since such a version would fail every request;
    /// then the fixtures, if any, run under those settings. Returns their report.
    async fn check_with_settings(
        &self,
        mounted: &MountedBackend,
        settings: &UploadSettings,
        fixtures: Option<FixtureFile>,
    ) -> Result<Option<String>, DeployError> {
        let runner = FixtureRunner::with_engine(self.registry.engine().clone())
            .map_err(|e| DeployError::Internal(e.to_string()))?;
        // Refusals and mismatches quote what the component sent, secrets filled in.
        let secrets = Secrets::new(settings.secrets.clone());
        let refusal = tokio::time::timeout(
            FIXTURE_TIME,
            runner.settings_refusal(mounted.component(), settings, fixtures.as_ref()),
        )
        .await
        .map_err(|_| {
            DeployError::Invalid(format!("checking the settings did not finish within {} s", FIXTURE_TIME.as_secs()))
        })?;
        if let Some(reason) = refusal {
            return Err(DeployError::Invalid(format!(
                "the component rejects these settings ({})",
                secrets.redact(&reason)
            )));
        }
        let Some(file) = fixtures else { return Ok(None) };
        let file = file.under_settings(settings);
        let report =
            tokio::time::timeout(FIXTURE_TIME, runner.run(mounted.component(), &file)).await.map_err(|_| {
                DeployError::FixturesFailed(format!("the fixtures did not finish within {} s", FIXTURE_TIME.as_secs()))
            })?;
        let text = secrets.redact(&report.to_string());
        if !report.passed() {
            return Err(DeployError::FixturesFailed(format!("fixtures failed:\n{text}")));
        }
        Ok(Some(text))
    }

    /// Validates and compiles in process, on the bounded pool, within the time
    /// limit: for versions that passed the upload checks before.
    async fn compile(&self, cfg: BackendConfig, wasm: Vec<u8>) -> Result<MountedBackend, DeployError> {
        let timeout = self.compiler.timeout();
        let _slot = tokio::time::timeout(timeout, self.compile_slots.acquire())
            .await
            .map_err(|_| DeployError::Busy("another upload is compiling; try again".into()))?
            .map_err(|_| DeployError::Internal("compile pool closed".into()))?;
        let registry = self.registry.clone();
        let task = tokio::task::spawn_blocking(move || registry.load(&cfg, &wasm));
        match tokio::time::timeout(timeout, task).await {
            Err(_) => {
                Err(DeployError::Invalid(format!("the component did not compile within {} ms", timeout.as_millis())))
            }
            Ok(Err(e)) => Err(DeployError::Internal(format!("compiler task failed: {e}"))),
            Ok(Ok(Err(e))) => Err(DeployError::Invalid(format!("not accepted: {e:#}"))),
            Ok(Ok(Ok(mounted))) => Ok(mounted),
        }
    }

    /// Loads a stored version (bytes and settings) and mounts it.
    async fn mount_version(&self, v: &BackendVersion) -> Result<(), DeployError> {
        let settings: UploadSettings =
            serde_json::from_str(&v.settings).map_err(|e| DeployError::Internal(format!("stored settings: {e}")))?;
        let wasm = self.files.read(&v.sha256)?;
        let cfg = settings.to_backend_config(&v.name, "upload").map_err(DeployError::Invalid)?;
        let mut mounted = self.compile(cfg, wasm).await?;
        mounted.version = Some(v.version);
        self.registry.activate(Arc::new(mounted));
        Ok(())
    }

    /// Mounts the last activated version of every uploaded backend (at start-up).
    pub async fn restore(&self) -> anyhow::Result<usize> {
        let mut mounted = 0;
        for v in self.store.active_backend_versions().await? {
            if self.config_names.contains(&v.name) {
                tracing::warn!(backend = v.name.as_str(), "uploaded backend is shadowed by the configuration file's");
                continue;
            }
            match self.mount_version(&v).await {
                Ok(()) => mounted += 1,
                Err(e) => tracing::error!(backend = v.name.as_str(), version = v.version, "cannot restore: {e}"),
            }
        }
        Ok(mounted)
    }

    /// Activates `version`, or the one before the active version.
    pub async fn rollback(&self, name: &str, version: Option<i64>) -> Result<BackendVersion, DeployError> {
        self.check_managed_here(name)?;
        let _change = self.changes.lock().await;
        let versions = self.store.backend_versions(name).await?;
        let active = versions
            .iter()
            .find(|v| v.active)
            .ok_or_else(|| DeployError::NotFound(format!("no uploaded backend '{name}'")))?;
        let target = match version {
            Some(n) => versions
                .iter()
                .find(|v| v.version == n)
                .ok_or_else(|| DeployError::NotFound(format!("backend '{name}' has no version {n}")))?,
            None => versions.iter().rev().find(|v| v.version < active.version).ok_or_else(|| {
                DeployError::NotFound(format!("backend '{name}' has no version before {}", active.version))
            })?,
        };
        self.mount_version(target).await?;
        self.store.activate_backend_version(name, target.version).await?;
        let mut activated = target.clone();
        activated.active = true;
        tracing::info!(backend = name, version = target.version, "backend rolled back");
        Ok(activated)
    }

    /// Unmounts an uploaded backend and fails its queued messages.
    pub async fn delete(&self, name: &str) -> Result<usize, DeployError> {
        self.check_managed_here(name)?;
        let _change = self.changes.lock().await;
        let versions = self.store.backend_versions(name).await?;
        if versions.is_empty() {
            return Err(DeployError::NotFound(format!("no uploaded backend '{name}'")));
        }
        // Unmount first: the outbound workers then fail anything they pick up.
        self.registry.remove(name);
        let failed = self.store.delete_backend(name, format!("backend '{name}' was deleted")).await?;
        tracing::info!(backend = name, failed, "backend deleted");
        Ok(failed)
    }

    /// Versions of an uploaded backend.
    pub async fn versions(&self, name: &str) -> Result<Vec<BackendVersion>, DeployError> {
        self.store.backend_versions(name).await.map_err(DeployError::from)
    }

    /// True when `name` comes from the configuration file.
    pub fn is_from_config(&self, name: &str) -> bool {
        self.config_names.contains(name)
    }
}
