//! Assembling a running gateway from its configuration.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use std::time::{Duration, Instant};

use crate::backend::Registry;
use crate::channel_log::ChannelLog;
use crate::config::Config;
use crate::data_dir::DataDirLock;
use crate::deploy::Deployer;
use crate::dispatch::Dispatch;
use crate::outbound::{ComponentSender, Outbound, Sender};
use crate::server::edge::EdgeLimits;
use crate::server::{self, AppState};
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use crate::wasm::cache::CompileCache;
use crate::wasm::engine::WasmEngine;
use crate::wasm::transport::NetworkTransport;

/// What a program embedding the gateway may add. The `smsgw` binary adds
/// nothing; the benchmarks add their native baselines here, so no benchmark
/// knob reaches the user's configuration.
pub struct Extensions {
    /// Routes merged beside the gateway's own (they see the same state).
    pub routes: axum::Router<Arc<AppState>>,
    /// How the outbound queue sends a claimed message.
    pub sender: Arc<dyn Sender>,
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions { routes: axum::Router::new(), sender: Arc::new(ComponentSender) }
    }
}

/// Starts every part and serves until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(config, Extensions::default(), shutdown).await
}

/// Like [`run`], with `extensions` added.
pub async fn run_with(
    config: Config,
    extensions: Extensions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    // Before anything touches the data dir: a second gateway on it would
    // requeue this one's sends in flight.
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    raise_open_file_limit();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir)?);
    let engine = Arc::new(WasmEngine::new()?);
    let cache = CompileCache::new(&config.data_dir.join("compiled"), engine.engine())?;
    let transport = Arc::new(NetworkTransport::new()?);
    let public_url = config.public_url();
    let channel_log = ChannelLog::start(store.clone(), &config.channel_log);
    let registry = Arc::new(
        Registry::new(engine, cache, transport, public_url.clone(), config.limits.clone())?
            .with_channel_log(channel_log.clone()),
    );

    for backend in &config.backends {
        let wasm =
            Registry::component_bytes(&backend.component).with_context(|| format!("backend '{}'", backend.name))?;
        let registry2 = registry.clone();
        let cfg = backend.clone();
        let mounted = tokio::task::spawn_blocking(move || registry2.load(&cfg, &wasm))
            .await?
            .with_context(|| format!("backend '{}' ({}) cannot be loaded", backend.name, backend.component))?;
        registry.activate(Arc::new(mounted));
    }

    let config_names = config.backends.iter().map(|b| b.name.clone()).collect();
    let deployer = Arc::new(Deployer::new(
        registry.clone(),
        store.clone(),
        config.data_dir.join("components"),
        config_names,
        std::time::Duration::from_millis(config.compile_timeout_ms),
        config.max_component_bytes,
    )?);
    let restored = deployer.restore().await?;
    if restored > 0 {
        tracing::info!("restored {restored} uploaded backend(s)");
    }
    let admin_token = config.admin_token()?;
    if admin_token.is_none() {
        tracing::info!("admin API disabled: set SMSGW_ADMIN_TOKEN or admin_token_file to enable it");
    }

    let outbound_wake = Arc::new(Notify::new());
    let apps = config.apps.build()?;
    let dispatch = Arc::new(Dispatch::new(
        store.clone(),
        apps,
        config.apps.default_reply.clone(),
        outbound_wake.clone(),
        config.dedup.windows(),
    ));

    let released = store.release_leases().await?;
    if released > 0 {
        tracing::info!("{released} outbound message(s) interrupted by the last stop are queued again");
    }
    let outbound = Arc::new(Outbound::new(
        store.clone(),
        registry.clone(),
        config.outbound.clone(),
        outbound_wake.clone(),
        extensions.sender,
    ));
    outbound.spawn_workers();
    dispatch.spawn_recovery(RECOVERY_EVERY);

    let state = Arc::new(AppState {
        registry: registry.clone(),
        store,
        dispatch,
        outbound_wake,
        public_url,
        max_inbound_body_bytes: config.max_inbound_body_bytes,
        body_timeout: Duration::from_millis(config.http.body_timeout_ms),
        deployer,
        admin_token,
        metrics_open: config.metrics_open(),
        channel_log: channel_log.clone(),
    });
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        "smsgw listening on http://{} with backends: {}",
        listener.local_addr()?,
        registry.names().join(", ")
    );
    // On the signal: the queue stops claiming at once; the listener stops
    // accepting and lets requests in flight finish; then sends in flight are
    // recorded. All within `shutdown_timeout_ms`.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(None::<Instant>);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(Some(Instant::now()));
    });
    let deadline = Duration::from_millis(config.shutdown_timeout_ms);
    let outbound_stop = {
        let (outbound, mut rx) = (outbound.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let _ = rx.wait_for(Option::is_some).await;
            outbound.stop(deadline).await
        })
    };
    let mut http_stop = stop_rx.clone();
    let stopped = async move {
        let _ = http_stop.wait_for(Option::is_some).await;
    };
    let limits = EdgeLimits {
        header_timeout: Duration::from_millis(config.http.header_timeout_ms),
        max_connections: config.http.max_connections,
    };
    let open = server::edge::serve(listener, server::routes(state, extensions.routes), limits, stopped, deadline).await;
    let unfinished = outbound_stop.await.unwrap_or(0);
    // Every exchange of those requests and sends is queued by now.
    let _ = channel_log.close(deadline).await;
    let took = stop_rx.borrow().map(|at| at.elapsed()).unwrap_or_default();
    if open > 0 || unfinished > 0 {
        tracing::warn!(
            "stopped after {took:?} with {open} connection(s) and {unfinished} send(s) unfinished; the sends are retried at the next start"
        );
    } else {
        tracing::info!("stopped after {took:?}: every request answered, every send recorded");
    }
    Ok(())
}

/// How often inbound messages left unhandled are looked for.
const RECOVERY_EVERY: Duration = Duration::from_secs(5);

/// Each connection is a file descriptor; the usual soft limit (1024) is too
/// low for a gateway. Raises it to the hard limit, which needs no privilege.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::warn!("cannot raise the open-file limit: {}", std::io::Error::last_os_error());
            }
        }
    }
}
