//! The baselines the Wasm path is measured against, in a gateway built from
//! the same library: `bench serve [serve's options] [--baseline-routes]
//! [--native-send [--native-send-spin-us N]]`. They reach the gateway only
//! through [`smsgw::gateway::Extensions`], so the `smsgw` binary and its
//! configuration know nothing of them.

pub mod native_kannel;
mod routes;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

/// `bench serve`: the gateway with baselines.
#[derive(Parser)]
struct BaselineArgs {
    #[command(flatten)]
    serve: smsgw::cli::ServeArgs,
    /// Serve `/bench/floor` and `/bench/native/{name}/` beside the gateway's routes.
    #[arg(long)]
    baseline_routes: bool,
    /// Send outbound messages with native Kannel code instead of the component.
    #[arg(long)]
    native_send: bool,
    /// With `--native-send`, burn this much CPU per send first (calibration).
    #[arg(long, default_value_t = 0)]
    native_send_spin_us: u64,
}

/// Runs the baseline gateway until Ctrl-C or SIGTERM; `args` start after `serve`.
pub fn serve(args: &[String]) -> anyhow::Result<()> {
    let args = BaselineArgs::parse_from(std::iter::once("bench serve".to_string()).chain(args.iter().cloned()));
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let config = args.serve.config()?;
    let mut extensions = smsgw::gateway::Extensions::default();
    if args.baseline_routes {
        extensions.routes = routes::routes();
    }
    if args.native_send {
        let spin = Duration::from_micros(args.native_send_spin_us);
        extensions.sender = Arc::new(sender::NativeKannelSender { spin });
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(smsgw::gateway::run_with(config, extensions, smsgw::cli::shutdown_signal()))
}
