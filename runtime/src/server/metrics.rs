//! `GET /metrics`: the Prometheus scrape, with the state gauges (backends,
//! breakers, queue depth) set from the registry and the store at that moment.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::admin::token_refusal;
use crate::metrics::metrics;
use crate::store::now_ms;

/// The text exposition; needs the admin token unless `/metrics` is open.
pub async fn scrape(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !state.metrics_open
        && let Some(refused) = token_refusal(&state, &headers)
    {
        return refused;
    }
    let m = metrics();
    m.clear_backend_state();
    for name in state.registry.names() {
        if let Some(backend) = state.registry.get(&name) {
            m.backend_state(&name, backend.version, backend.paused_until().is_some());
        }
    }
    if let Ok(pending) = state.store.pending().await {
        let now = now_ms();
        for status in ["received", "queued", "sending"] {
            let found = pending.iter().find(|p| p.status.as_str() == status);
            let oldest = found
                .and_then(|p| p.oldest_created_at)
                .map(|at| std::time::Duration::from_millis((now - at).max(0) as u64));
            m.queue(status, found.map_or(0, |p| p.count), oldest);
        }
    }
    ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], m.encode()).into_response()
}
