//! The gateways the benchmarks run: the real `smsgw` binary, and the same
//! library with the native baselines added (this executable's `serve` mode,
//! see [`crate::baseline`]), both as child processes stopped by PID.

use std::process::Command;

pub use smsgw_test_support::{Gateway, GatewayOptions, free_port, process_cpu_time};

/// Admin token the benchmark's gateways use.
pub const TOKEN: &str = "bench-admin-token-0123456789";

fn env() -> Vec<(String, String)> {
    vec![("RUST_LOG".into(), "warn".into()), ("SMSGW_ADMIN_TOKEN".into(), TOKEN.into())]
}

/// The `smsgw` binary next to this benchmark's own executable (same profile),
/// built first if needed; `SMSGW_BENCH_SMSGW` names another build instead
/// (to compare two builds phase by phase on a machine whose speed drifts).
pub fn smsgw() -> anyhow::Result<GatewayOptions> {
    if let Some(bin) = std::env::var_os("SMSGW_BENCH_SMSGW") {
        return Ok(GatewayOptions { bin: bin.into(), extra_args: Vec::new(), env: env() });
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| anyhow::anyhow!("no exe dir"))?;
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.args(["build", "-q", "-p", "smsgw", "--bin", "smsgw"]);
    if dir.ends_with("release") {
        cargo.arg("--release");
    }
    let status = cargo.current_dir(env!("CARGO_MANIFEST_DIR")).status()?;
    anyhow::ensure!(status.success(), "building smsgw failed");
    Ok(GatewayOptions { bin: dir.join("smsgw"), extra_args: Vec::new(), env: env() })
}

/// This executable as a gateway with the baselines named by `args` switched on.
pub fn baseline(args: &[&str]) -> anyhow::Result<GatewayOptions> {
    let extra_args = args.iter().map(|a| a.to_string()).collect();
    Ok(GatewayOptions { bin: std::env::current_exe()?, extra_args, env: env() })
}
