//! smsgw's benchmark suite. Every comparison is measured side by side in one
//! run on this machine (shared and noisy: the ratios are what count).
//!
//! `cargo run -p bench --release -- all` writes `bench/results/latest.{md,json}`;
//! `cargo run -p bench -- smoke` runs every part very briefly (CI keeps it from rotting);
//! `cargo run -p bench --release -- all sandbox` runs only the named parts (nothing is written).
//! For profiling the sandbox part, `SMSGW_BENCH_COMPONENT=kannel` keeps only the
//! components whose name contains that text and `SMSGW_BENCH_POOLING_ONLY=1`
//! skips the on-demand allocator. To compare two builds, run them in turn
//! with `SMSGW_BENCH_SMSGW=<binary>` (the gateway the parts start) and
//! `SMSGW_BENCH_SKIP_RAPIDSMS=1`, several times; `SMSGW_BENCH_PACE_CONFIG` adds TOML
//! tables to the pace part's inbound configuration (e.g. the channel log off, to
//! see what it costs). `bench serve ...` is the baseline gateway
//! the parts start as a child process ([`baseline`]).

mod baseline;
mod gateway;
mod http1;
mod load;
mod parts;

use std::time::Duration;

/// How long and how hard each part runs.
#[derive(Clone, Copy)]
pub struct Budget {
    /// Length of each load phase.
    pub phase: Duration,
    /// Concurrent HTTP clients.
    pub concurrency: usize,
    /// Calls per sandbox measurement.
    pub calls: usize,
    /// Messages through the outbound queue.
    pub messages: usize,
    /// Backends deployed for the restart measurement.
    pub backends: usize,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_else(|| "all".into());
    if mode == "serve" {
        return baseline::serve(&args[1..]);
    }
    // The baseline gateway compiles uploads by running its own executable.
    if mode == smsgw::deploy::compiler::SUBCOMMAND {
        return smsgw::deploy::compiler::child_main();
    }
    // Further arguments pick parts (for profiling one of them); none means every part.
    let only: Vec<String> = args.iter().skip(1).cloned().collect();
    for part in &only {
        anyhow::ensure!(parts::PARTS.contains(&part.as_str()), "unknown part '{part}': use {:?}", parts::PARTS);
    }
    let budget = match mode.as_str() {
        "all" => {
            Budget { phase: Duration::from_secs(8), concurrency: 32, calls: 20_000, messages: 20_000, backends: 100 }
        }
        "smoke" => Budget { phase: Duration::from_millis(300), concurrency: 4, calls: 200, messages: 20, backends: 3 },
        other => anyhow::bail!("unknown mode '{other}': use `all` or `smoke`, optionally followed by parts"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(parts::run_all(budget, mode == "all", &only))?;
    println!("{}", report.markdown());
    if mode == "all" && only.is_empty() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("latest.md"), report.markdown())?;
        std::fs::write(dir.join("latest.json"), serde_json::to_string_pretty(&report.json())?)?;
        println!("wrote {}", dir.join("latest.md").display());
    }
    Ok(())
}
