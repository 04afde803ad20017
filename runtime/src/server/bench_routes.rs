//! Benchmark-only routes (`bench_routes = true`): the baselines the Wasm path
//! is measured against, in the same binary and through the same store.
//!
//! - `GET /bench/floor`: answers at once (the HTTP floor).
//! - `GET /bench/native/{name}/`: Kannel's MO request parsed by
//!   [`crate::native_kannel`], then stored and answered exactly like
//!   `/backends/{name}/` (the Wasm tax is the difference). With
//!   `bench_spin_us=N` in the query it first burns N µs of CPU: what a
//!   per-request cost of that size alone does to throughput (calibration).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::apps::InboundMessage;

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new().route("/floor", get(|| async { StatusCode::OK })).route("/native/{name}/", get(native_kannel))
}

async fn native_kannel(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let spin_us = query.split('&').find_map(|pair| pair.strip_prefix("bench_spin_us=")?.parse().ok()).unwrap_or(0);
    crate::native_kannel::burn_cpu(std::time::Duration::from_micros(spin_us));
    let message = match crate::native_kannel::parse_mo(&query) {
        Ok(m) => m,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    match state.store.record_inbound(&name, vec![message.clone()], Vec::new()).await {
        Ok(recorded) => {
            for id in recorded.message_ids {
                let router = state.router.clone();
                let m = InboundMessage {
                    id,
                    backend: name.clone(),
                    identity: message.identity.clone(),
                    text: message.text.clone(),
                    external_id: None,
                    fields: Vec::new(),
                    received_at: None,
                };
                tokio::spawn(async move { router.process(m).await });
            }
            StatusCode::OK.into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "could not store the message").into_response(),
    }
}
