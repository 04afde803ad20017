//! `smsgw inspect`: would this gateway accept this component, and why not.

use std::path::Path;

use anyhow::Context as _;

use crate::wasm::bindings::ADAPTER_EXPORT;
use crate::wasm::cache::sha256_hex;
use crate::wasm::engine::WasmEngine;
use crate::wasm::validate::{self, CompileError};

/// Prints what a component is and whether this gateway would accept it;
/// returns whether it would.
pub fn inspect(component: &Path) -> anyhow::Result<bool> {
    let wasm = std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    println!("file:     {}", component.display());
    println!("size:     {} bytes", wasm.len());
    println!("sha256:   {}", sha256_hex(&wasm));
    let engine = WasmEngine::new()?;
    let compiled = match validate::compile_unchecked(engine.engine(), &wasm) {
        Ok(c) => c,
        Err(CompileError::DoesNotCompile(e)) => {
            println!("accepted: no: it does not compile: {e}");
            return Ok(false);
        }
        Err(e) => {
            println!("accepted: no: {e}");
            return Ok(false);
        }
    };
    println!("compile:  {} ms", compiled.elapsed.as_millis());
    let shape = validate::shape(engine.engine(), &compiled.component);
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
