//! The shapes of the gateway's own answers: plain text for providers, JSON
//! errors with a reason for the APIs.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A plain-text answer (what providers get).
pub fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text = text.into();
    text.push('\n');
    (status, [("content-type", "text/plain; charset=utf-8")], text).into_response()
}

/// A JSON error with a reason: `{"error": "..."}` (what API clients get).
pub fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, Json(json!({ "error": reason.into() }))).into_response()
}
