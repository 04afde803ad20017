//! The inbound baselines (`--baseline-routes`), in the same process and
//! through the same store and dispatch as the component's route.
//!
//! - `GET /bench/floor`: answers at once (the HTTP floor).
//! - `GET /bench/native/{name}/`: Kannel's MO request parsed by
//!   [`super::native_kannel`], then stored and answered exactly like
//!   `/backends/{name}/` (the Wasm tax is the difference). With
//!   `bench_spin_us=N` in the query it first burns N µs of CPU: what a
//!   per-request cost of that size alone does to throughput (calibration).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use smsgw::server::AppState;

use super::native_kannel;

/// The baseline routes, under `/bench/`.
pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/bench/floor", get(|| async { StatusCode::OK }))
        .route("/bench/native/{name}/", get(native_route))
}

async fn native_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let spin_us = query.split('&').find_map(|pair| pair.strip_prefix("bench_spin_us=")?.parse().ok()).unwrap_or(0);
    native_kannel::burn_cpu(std::time::Duration::from_micros(spin_us));
    let message = match native_kannel::parse_mo(&query) {
        Ok(m) => m,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    match state.dispatch.accept(&name, vec![message], Vec::new()).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "could not store the message").into_response(),
    }
}
