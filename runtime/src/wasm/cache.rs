//! Compiling components, with the native code cached on disk.
//!
//! Artefacts are keyed by the wasm's sha256 and the engine's compatibility
//! hash, so a restart (or a second backend with the same component) does not
//! recompile, and an upgraded engine never loads stale code. Only the gateway
//! writes this directory: loading an artefact runs it as native code.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components live.
pub struct CompileCache {
    dir: PathBuf,
    engine: Engine,
    engine_key: String,
}

/// A loaded component and how it was obtained.
pub struct Compiled {
    pub component: Component,
    pub sha256: String,
    /// False when the artefact came from the cache.
    pub compiled: bool,
    pub elapsed: Duration,
}

impl Compiled {
    /// Compiles `wasm` in memory, caching nothing (tools that run once).
    pub fn without_cache(engine: &Engine, wasm: &[u8]) -> anyhow::Result<Compiled> {
        let started = Instant::now();
        let component = Component::new(engine, wasm)?;
        Ok(Compiled { component, sha256: sha256_hex(wasm), compiled: true, elapsed: started.elapsed() })
    }
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl CompileCache {
    /// Uses (and creates) `dir` for artefacts of `engine`.
    pub fn new(dir: &Path, engine: &Engine) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create cache directory {}: {e}", dir.display()))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine: engine.clone(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, sha256: &str) -> std::path::PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for the wasm with this hash, if it is cached.
    pub fn get(&self, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if !path.exists() {
            return None;
        }
        // SAFETY: only this gateway writes the cache directory, and only
        // artefacts of components that passed validation; the engine key in the
        // name ensures it was produced by a compatible engine.
        match unsafe { Component::deserialize_file(&self.engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!("discarding unreadable cache entry {}: {e:#}", path.display());
                None
            }
        }
    }

    /// Stores a validated component's native code and loads it back from the
    /// file (memory-mapped, like every later cache hit).
    pub fn put(&self, sha256: &str, artefact: &[u8]) -> anyhow::Result<Component> {
        let path = self.path(sha256);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, artefact)?;
        std::fs::rename(&tmp, &path)?;
        // SAFETY: the bytes were produced by this gateway's engine (in process
        // or in its own compiler child) for a component that passed validation.
        Ok(unsafe { Component::deserialize_file(&self.engine, &path)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::engine::{self, WasmEngine};
    use wasmtime::ModuleVersionStrategy;

    /// Compiled code calls the host's builtins by index, and `vendor/` changed
    /// their list: code from an engine stamped with wasmtime's own version
    /// (stock wasmtime, or a build of the gateway from before) must be
    /// compiled again, never run, though every other setting agrees.
    #[test]
    fn code_of_another_code_version_is_compiled_again_not_run() {
        let ours = WasmEngine::new().unwrap();
        let stock = engine::config(true, ModuleVersionStrategy::WasmtimeVersion).unwrap();
        let stock = Engine::new(&stock).unwrap();
        let wasm = crate::backend::builtin::component("kannel").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path(), ours.engine()).unwrap();
        let sha256 = sha256_hex(wasm);

        std::fs::write(cache.path(&sha256), stock.precompile_component(wasm).unwrap()).unwrap();
        assert!(cache.get(&sha256).is_none(), "code stamped with another version was loaded");

        std::fs::write(cache.path(&sha256), ours.engine().precompile_component(wasm).unwrap()).unwrap();
        assert!(cache.get(&sha256).is_some(), "our own engine's code was not loaded");
    }
}
