//! Compiles guest crates of this workspace to WebAssembly components from a build script.
//!
//! Why a nested cargo: components need the `wasm32-wasip2` target while the host
//! crate builds natively, and `cargo run`/`cargo test` must need no extra step.
//! The nested build uses its own target directory so it never waits on the
//! outer build's lock (the approach of wasmtime's `test-programs/artifacts`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust target every guest is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Builds `packages` (cargo package names) to components and returns their paths,
/// keyed by package name. Panics with a readable message on failure: this only
/// runs inside build scripts, where a panic is how errors are reported.
pub fn build(workspace_root: &Path, packages: &[&str]) -> Vec<(String, PathBuf)> {
    let target_dir = workspace_root.join("target").join("wasm-guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root)
        .args(["build", "--profile", "guest", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    // The outer build's flags and profile settings are for the host, not for Wasm.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || key.starts_with("RUSTFLAGS")
            || key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_BUILD_")
            || key == "CARGO_TARGET_DIR"
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "RUSTC_WRAPPER"
        {
            cmd.env_remove(&key);
        }
    }
    let status = cmd.status().expect("failed to run cargo for the guest components");
    if !status.success() {
        panic!(
            "building guest components failed; is the target installed? \
             Run `rustup target add {TARGET}` (the README's commands do this)."
        );
    }
    let out = target_dir.join(TARGET).join("guest");
    packages
        .iter()
        .map(|p| {
            let file = out.join(format!("{}.wasm", p.replace('-', "_")));
            assert!(file.exists(), "guest build did not produce {}", file.display());
            (p.to_string(), file)
        })
        .collect()
}

/// Tells cargo to rebuild when any guest source, the WIT or the guest SDK changes.
pub fn rerun_if_changed(workspace_root: &Path, dirs: &[&str]) {
    for dir in dirs {
        watch(&workspace_root.join(dir));
    }
}

fn watch(path: &Path) {
    if path.file_name().is_some_and(|n| n == "target") {
        return;
    }
    println!("cargo:rerun-if-changed={}", path.display());
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                watch(&p);
            }
        }
    }
}
