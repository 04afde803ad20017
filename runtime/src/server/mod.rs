//! The HTTP surface: provider routes under `/backends/`, the message API under
//! `/api/v1/`, the admin API under `/api/v1/admin/`, and `/healthz`. Handlers
//! only translate between HTTP and the gateway's parts.

mod admin;
mod api;
pub mod edge;
mod inbound;
mod metrics;
pub mod reply;

use std::sync::Arc;

use axum::Router as HttpRouter;
use axum::routing::{any, get};
use tokio::sync::Notify;

use crate::backend::Registry;
use crate::deploy::Deployer;
use crate::dispatch::Dispatch;
use crate::store::Store;

/// Everything a request handler needs.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub store: Arc<dyn Store>,
    pub dispatch: Arc<Dispatch>,
    pub outbound_wake: Arc<Notify>,
    pub public_url: String,
    pub max_inbound_body_bytes: usize,
    /// How long a client may take to send a request body.
    pub body_timeout: std::time::Duration,
    pub deployer: Arc<Deployer>,
    /// `None` disables the admin API.
    pub admin_token: Option<String>,
    /// `/metrics` needs no token.
    pub metrics_open: bool,
    /// Where exchanges with providers are recorded.
    pub channel_log: Arc<crate::channel_log::ChannelLog>,
}

/// The gateway's routes, with `extra` (see [`crate::gateway::Extensions`]) merged in.
pub fn routes(state: Arc<AppState>, extra: HttpRouter<Arc<AppState>>) -> HttpRouter {
    let body_timeout = state.body_timeout;
    HttpRouter::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::scrape))
        .route("/backends/{name}", any(inbound::handle))
        .route("/backends/{name}/", any(inbound::handle))
        .route("/backends/{name}/{*rest}", any(inbound::handle))
        .nest("/api/v1/admin", admin::routes(state.clone()))
        .nest("/api/v1", api::routes())
        .merge(extra)
        .with_state(state)
        // A client trickling a body cannot hold a request (and its task) forever.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        // A bug in host code fails one request with a 500, not the process.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
}
