//! Tools for backend authors: `smsgw test-backend` (the conformance runner)
//! and `smsgw inspect` (would this gateway accept this component, and why not).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use wasmtime::component::Component;

use crate::fixtures::FixtureFile;
use crate::fixtures::runner::FixtureRunner;
use crate::wasm::bindings::ADAPTER_EXPORT;
use crate::wasm::cache::sha256_hex;
use crate::wasm::engine::WasmEngine;
use crate::wasm::validate;

/// Runs fixture files against a component in the real sandbox; returns
/// whether every case passed (the caller turns that into the exit code).
pub async fn test_backend(component: &Path, fixtures: &[PathBuf], config: Option<&Path>) -> anyhow::Result<bool> {
    let wasm = std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    let runner = FixtureRunner::new()?;
    let compiled =
        runner.compile(&wasm).with_context(|| format!("{} is not an acceptable backend", component.display()))?;
    let override_config = match config {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                Ok(_) => anyhow::bail!("{} must hold a JSON object", path.display()),
                Err(e) => anyhow::bail!("{} is not valid JSON: {e}", path.display()),
            }
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for path in fixtures {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut file: FixtureFile =
            serde_json::from_str(&text).with_context(|| format!("{} is not a valid fixture file", path.display()))?;
        if let Some(c) = &override_config {
            file.config = c.clone();
        }
        let report = runner.run(&compiled, &file).await;
        println!("{}:\n{report}", path.display());
        failed += report.failed();
        passed += report.cases.len() - report.failed();
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// Prints what a component is and whether this gateway would accept it;
/// returns whether it would.
pub fn inspect(component: &Path) -> anyhow::Result<bool> {
    let wasm = std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    println!("file:     {}", component.display());
    println!("size:     {} bytes", wasm.len());
    println!("sha256:   {}", sha256_hex(&wasm));
    if let Err(e) = validate::check_header(&wasm) {
        println!("accepted: no: {e}");
        return Ok(false);
    }
    let engine = WasmEngine::new()?;
    let started = Instant::now();
    let compiled = match Component::new(engine.engine(), &wasm) {
        Ok(c) => c,
        Err(e) => {
            println!("accepted: no: it does not compile: {e:#}");
            return Ok(false);
        }
    };
    println!("compile:  {} ms", started.elapsed().as_millis());
    let shape = validate::shape(engine.engine(), &compiled);
    let world = shape.exports.iter().find(|e| e.starts_with("smsgw:backend/adapter@"));
    println!("world:    {}", world.map(|w| format!("smsgw:backend/backend ({w})")).unwrap_or_else(|| "unknown".into()));
    println!("imports:");
    for i in &shape.imports {
        println!("  {i}");
    }
    println!("exports:");
    for e in &shape.exports {
        println!("  {e}");
    }
    match validate::check_shape(&shape) {
        Ok(()) => {
            println!("accepted: yes (implements {ADAPTER_EXPORT})");
            Ok(true)
        }
        Err(e) => {
            println!("accepted: no: {e}");
            Ok(false)
        }
    }
}
