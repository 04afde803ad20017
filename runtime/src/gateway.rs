//! Assembling a running gateway from its configuration.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::backends::Registry;
use crate::config::Config;
use crate::deploy::Deployer;
use crate::outbound::Outbound;
use crate::router::Router;
use crate::server::{self, AppState};
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use crate::wasm::cache::CompileCache;
use crate::wasm::engine::WasmEngine;
use crate::wasm::http_client::NetworkTransport;

/// Starts every part and serves until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir)?);
    let engine = Arc::new(WasmEngine::new()?);
    let cache = CompileCache::new(&config.data_dir.join("compiled"), engine.engine())?;
    let transport = Arc::new(NetworkTransport::new()?);
    let public_url = config.public_url();
    let registry = Arc::new(Registry::new(engine, cache, transport, public_url.clone(), config.limits.clone())?);

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
    let apps = crate::apps::from_config(&config.apps)?;
    let router = Arc::new(Router::new(store.clone(), apps, config.apps.default_reply.clone(), outbound_wake.clone()));

    let released = store.release_leases().await?;
    if released > 0 {
        tracing::info!("{released} outbound message(s) interrupted by the last stop are queued again");
    }
    let mut outbound = Outbound::new(store.clone(), registry.clone(), config.outbound.clone(), outbound_wake.clone());
    if config.bench_native_send {
        tracing::warn!("bench_native_send: outbound messages are sent by native Kannel code, not by their backends");
        outbound.send_natively_for_benchmarks(std::time::Duration::from_micros(config.bench_native_send_spin_us));
    }
    let outbound = Arc::new(outbound);
    outbound.spawn_workers();
    {
        let router = router.clone();
        tokio::spawn(async move {
            match router.recover().await {
                Ok(0) => {}
                Ok(n) => tracing::info!("processed {n} inbound message(s) left from the last run"),
                Err(e) => tracing::error!("could not recover unprocessed messages: {e}"),
            }
        });
    }

    let state = Arc::new(AppState {
        registry: registry.clone(),
        store,
        router,
        outbound_wake,
        public_url,
        max_inbound_body_bytes: config.max_inbound_body_bytes,
        deployer,
        admin_token,
        bench_routes: config.bench_routes,
    });
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        "smsgw listening on http://{} with backends: {}",
        listener.local_addr()?,
        registry.names().join(", ")
    );
    axum::serve(listener, server::routes(state)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
