//! The HTTP surface: provider routes under `/backends/`, the message API under
//! `/api/v1/`, and `/healthz`.

mod admin;
mod api;
mod bench_routes;
mod inbound;

pub use inbound::note_outcome;

use std::sync::Arc;

use axum::Router as HttpRouter;
use axum::routing::{any, get};
use tokio::sync::Notify;

use crate::backends::Registry;
use crate::router::Router;
use crate::store::Store;

/// Everything a request handler needs.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub store: Arc<dyn Store>,
    pub router: Arc<Router>,
    pub outbound_wake: Arc<Notify>,
    pub public_url: String,
    pub max_inbound_body_bytes: usize,
    pub deployer: Arc<crate::deploy::Deployer>,
    /// `None` disables the admin API.
    pub admin_token: Option<String>,
    /// Serve the benchmark baselines under `/bench/`.
    pub bench_routes: bool,
}

/// The gateway's routes.
pub fn routes(state: Arc<AppState>) -> HttpRouter {
    let bench = if state.bench_routes { bench_routes::routes() } else { HttpRouter::new() };
    HttpRouter::new()
        .nest("/bench", bench)
        .route("/healthz", get(|| async { "ok" }))
        .route("/backends/{name}", any(inbound::handle))
        .route("/backends/{name}/", any(inbound::handle))
        .route("/backends/{name}/{*rest}", any(inbound::handle))
        .nest("/api/v1/admin", admin::routes(state.clone()))
        .nest("/api/v1", api::routes())
        .with_state(state)
        // A bug in host code fails one request with a 500, not the process.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
}
