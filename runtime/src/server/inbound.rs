//! Provider requests: the backend parses, the store commits, then the provider
//! gets its answer. A message is never acknowledged before it is durable.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::apps::InboundMessage;
use crate::backends::{CallStats, MountedBackend};
use crate::limits::Limits;
use crate::store::{NewInbound, NewReport, RecipientStatus};
use crate::wasm::bindings::types::{DeliveryStatus, HttpRequest, Incoming, ParseError};
use crate::wasm::sandbox::CallError;

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text = text.into();
    text.push('\n');
    (status, [("content-type", "text/plain; charset=utf-8")], text).into_response()
}

/// Any method on `/backends/{name}/...`.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Path(params): Path<Vec<(String, String)>>,
    request: Request,
) -> Response {
    let name = params.iter().find(|(k, _)| k == "name").map(|(_, v)| v.clone()).unwrap_or_default();
    let Some(backend) = state.registry.get(&name) else {
        return plain(StatusCode::NOT_FOUND, format!("no backend named '{name}'"));
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, state.max_inbound_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {} bytes", state.max_inbound_body_bytes),
            );
        }
    };
    let prefix = format!("/backends/{name}");
    let path = parts.uri.path().strip_prefix(&prefix).unwrap_or("/");
    let path = if path.is_empty() { "/" } else { path };
    let query = parts.uri.query().unwrap_or("").to_string();
    let url =
        format!("{}{}", state.public_url, parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(parts.uri.path()));
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let http_request = HttpRequest {
        method: parts.method.as_str().to_string(),
        path: path.to_string(),
        query,
        headers,
        body: body.to_vec(),
        url,
    };

    if let Some(until) = backend.breaker.open_until() {
        return paused(until);
    }
    let output = backend.sandbox.parse_incoming(http_request).await;
    note_outcome(&backend, &output.result);
    let stats = &backend.stats;
    CallStats::bump(if matches!(output.result, Ok(Ok(_))) { &stats.inbound_ok } else { &stats.inbound_failed });
    let incoming = match output.result {
        Ok(Ok(incoming)) => incoming,
        Ok(Err(e)) => return parse_error(e),
        Err(CallError::Busy(_)) => {
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "backend busy, retry later");
            r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
            return r;
        }
        // Details are in the gateway log; the provider only learns it failed.
        Err(_) => {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "backend failed to process the request");
        }
    };
    if let Err(reason) = check_result(&incoming, backend.sandbox.limits()) {
        tracing::warn!(backend = name.as_str(), "backend returned an invalid result: {reason}");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "backend returned an invalid result");
    }

    let Incoming { messages, reports, response } = incoming;
    let new_messages: Vec<NewInbound> = messages
        .into_iter()
        .map(|m| NewInbound {
            identity: m.identity,
            text: m.text,
            external_id: m.external_id,
            received_at: m.received_at,
            fields: m.fields,
        })
        .collect();
    let new_reports = reports
        .into_iter()
        .map(|r| NewReport {
            message_id: r.message_id,
            external_id: r.external_id,
            identity: r.identity,
            status: match r.status {
                DeliveryStatus::Queued => RecipientStatus::Queued,
                DeliveryStatus::Sent => RecipientStatus::Sent,
                DeliveryStatus::Delivered => RecipientStatus::Delivered,
                DeliveryStatus::Failed => RecipientStatus::Failed,
            },
            detail: r.detail,
        })
        .collect();
    let recorded = match state.store.record_inbound(&name, new_messages.clone(), new_reports).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(backend = name.as_str(), "could not store inbound request: {e}");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "could not store the message, retry later");
        }
    };
    if recorded.reports_unmatched > 0 {
        tracing::info!(backend = name.as_str(), "{} status report(s) matched no message", recorded.reports_unmatched);
    }
    for (id, m) in recorded.message_ids.iter().zip(new_messages) {
        let router = state.router.clone();
        let message = InboundMessage {
            id: *id,
            backend: name.clone(),
            identity: m.identity,
            text: m.text,
            external_id: m.external_id,
            fields: m.fields,
            received_at: m.received_at,
        };
        tokio::spawn(async move { router.process(message).await });
    }

    match response {
        None => (StatusCode::OK, [("content-type", "text/plain; charset=utf-8")], "OK").into_response(),
        Some(r) => {
            let mut out = Response::new(Body::from(r.body));
            *out.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
            for (n, v) in r.headers {
                if let (Ok(n), Ok(v)) = (HeaderName::try_from(n), HeaderValue::try_from(v)) {
                    out.headers_mut().append(n, v);
                }
            }
            out
        }
    }
}

/// 503 while a backend is paused by its circuit breaker.
fn paused(until: i64) -> Response {
    let secs = ((until - crate::store::now_ms()) / 1000).max(1);
    let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "backend paused after repeated failures, retry later");
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

/// Feeds a call's outcome to the backend's circuit breaker. Only the
/// component's own failures count: a busy pool or a refused request does not.
pub fn note_outcome<T>(backend: &MountedBackend, result: &Result<T, CallError>) {
    let failed = matches!(result, Err(e) if !e.is_busy());
    if backend.breaker.record(failed) {
        tracing::warn!(backend = backend.name.as_str(), "backend paused after repeated failures");
    }
}

fn parse_error(e: ParseError) -> Response {
    match e {
        ParseError::InvalidRequest(r) => plain(StatusCode::BAD_REQUEST, r),
        ParseError::Unauthorized(r) => plain(StatusCode::UNAUTHORIZED, r),
        ParseError::Forbidden(r) => plain(StatusCode::FORBIDDEN, r),
        ParseError::NotFound(r) => plain(StatusCode::NOT_FOUND, r),
        ParseError::MethodNotAllowed(r) => plain(StatusCode::METHOD_NOT_ALLOWED, r),
        ParseError::Config(r) => {
            tracing::error!("backend configuration error: {r}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "backend is misconfigured")
        }
        ParseError::Other(r) => {
            tracing::warn!("backend error: {r}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "backend failed to process the request")
        }
    }
}

/// A backend's answer must stay within its limits and be a valid HTTP reply.
fn check_result(incoming: &Incoming, limits: &Limits) -> Result<(), String> {
    let count = incoming.messages.len() + incoming.reports.len();
    if count > limits.max_messages {
        return Err(format!("{count} messages and reports, limit {}", limits.max_messages));
    }
    for m in &incoming.messages {
        if m.identity.trim().is_empty() {
            return Err("a message has an empty identity".into());
        }
        if m.text.len() > limits.max_text_bytes {
            return Err(format!("a message text has {} bytes, limit {}", m.text.len(), limits.max_text_bytes));
        }
        if m.identity.len() > 256 || m.external_id.as_ref().is_some_and(|e| e.len() > 256) {
            return Err("an identity or external id is longer than 256 bytes".into());
        }
        let field_bytes: usize = m.fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        if field_bytes > limits.max_text_bytes {
            return Err(format!("message fields take {field_bytes} bytes, limit {}", limits.max_text_bytes));
        }
    }
    if let Some(r) = &incoming.response {
        if !(100..=599).contains(&r.status) {
            return Err(format!("response status {} is not valid", r.status));
        }
        if r.body.len() > limits.http_response_bytes {
            return Err("response body too large".into());
        }
        for (n, v) in &r.headers {
            if HeaderName::try_from(n.as_str()).is_err() || HeaderValue::try_from(v.as_str()).is_err() {
                return Err(format!("response header '{n}' is not valid"));
            }
        }
    }
    Ok(())
}
