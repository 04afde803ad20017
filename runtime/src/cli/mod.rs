//! The `smsgw` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

pub mod admin_client;
mod logs;

/// An SMS gateway whose provider backends are sandboxed WebAssembly components.
#[derive(Parser)]
#[command(name = "smsgw", version)]
pub struct Cli {
    /// Log as `text` (for people) or `json` (one object per line, for log collectors).
    #[arg(long, global = true, env = "SMSGW_LOG_FORMAT", value_enum)]
    pub log_format: Option<crate::config::LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Run a component against fixture files in the real sandbox (exit 1 on any failure).
    TestBackend {
        /// The `.wasm` component.
        component: PathBuf,
        /// Fixture files (JSON).
        #[arg(required = true)]
        fixtures: Vec<PathBuf>,
        /// JSON object replacing each file's `config`.
        #[arg(long, conflicts_with = "settings")]
        config: Option<PathBuf>,
        /// Upload settings (as for `backend upload --config`): run the fixtures
        /// as an upload would, with these settings and the files' overrides.
        #[arg(long)]
        settings: Option<PathBuf>,
        /// Compile every time instead of reusing compiled components
        /// (kept in $SMSGW_CACHE_DIR, else ~/.cache/smsgw/components).
        #[arg(long)]
        no_cache: bool,
    },
    /// Create a ready-to-build backend project.
    New {
        /// Backend name (also the directory name).
        name: String,
        /// Language of the project.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Show a component's world, imports and exports, and whether this gateway accepts it.
    Inspect {
        /// The `.wasm` file.
        component: PathBuf,
    },
    /// Show a backend's channel log: every exchange with its provider, oldest first.
    Logs {
        /// The backend.
        backend: String,
        /// Keep printing new exchanges as they come.
        #[arg(long, short)]
        follow: bool,
        /// How many of the latest exchanges to show first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The gateway's URL.
        #[arg(long, env = "SMSGW_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
    },
    /// Internal: compile a component read from stdin (the gateway runs this
    /// in a child process it can kill at the upload's deadline).
    #[command(name = "compile-component", hide = true)]
    CompileComponent,
    /// Manage uploaded backends of a running gateway (admin API).
    Backend {
        #[command(flatten)]
        connection: admin_client::Connection,
        #[command(subcommand)]
        command: admin_client::BackendCommand,
    },
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file; without one the built-in defaults apply.
    #[arg(long, env = "SMSGW_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides the config file).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory for the database and compiled components (overrides the config file).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// URL providers use to reach this gateway (overrides the config file).
    #[arg(long)]
    pub public_url: Option<String>,
}

impl ServeArgs {
    /// The configuration file with command-line overrides applied.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.public_url {
            config.public_url = Some(url.clone());
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs the command line; the binary's `main` is this.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The serve command's configuration may choose the log format.
    let serve_config = match &cli.command {
        Command::Serve(args) => Some(args.config()?),
        _ => None,
    };
    let format = cli.log_format.or(serve_config.as_ref().map(|c| c.log_format)).unwrap_or(LogFormat::Text);
    init_logging(format);
    match cli.command {
        Command::Serve(_) => {
            let config = serve_config.expect("loaded above");
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(crate::gateway::run(config, shutdown_signal()));
            // What is left (a client that never finished, a blocking task) does not hold up the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
        Command::TestBackend { component, fixtures, config, settings, no_cache } => {
            use crate::authoring::test_backend::{TestBackend, default_cache_dir, test_backend};
            let runtime = tokio::runtime::Runtime::new()?;
            let run = TestBackend {
                component: &component,
                fixtures: &fixtures,
                config: config.as_deref(),
                settings: settings.as_deref(),
                cache_dir: if no_cache { None } else { default_cache_dir() },
            };
            if !runtime.block_on(test_backend(run))? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::New { name, lang, dir } => {
            let root = crate::authoring::templates::create(&name, &lang, &dir)?;
            println!(
                "created {}: run {}/build.sh, then smsgw test-backend on the result",
                root.display(),
                root.display()
            );
            Ok(())
        }
        Command::Inspect { component } => {
            if !crate::authoring::inspect::inspect(&component)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::CompileComponent => crate::deploy::compiler::child_main(),
        Command::Logs { backend, follow, limit, url } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(logs::run(&url, &backend, limit.clamp(1, 1000), follow))
        }
        Command::Backend { connection, command } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(admin_client::run(connection, command))
        }
    }
}

/// Logs to stderr: `RUST_LOG` picks what, `format` how; colour codes only
/// for a person at a terminal, never in a log file.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
