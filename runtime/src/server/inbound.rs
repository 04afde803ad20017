//! Provider requests: the backend parses, the store commits, then the provider
//! gets its answer. A message is never acknowledged before it is durable.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::reply::plain;
use crate::backend::{InboundFailure, MountedBackend};
use crate::store::{Exchange, now_ms};
use crate::wasm::bindings::types::{HttpRequest, HttpResponse};

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
    let response = answer(&state, &backend, &name, request).await;
    backend.sandbox().shared().metrics.inbound_request(response.status().as_u16());
    response
}

/// Everything after the backend is known: parse, store, reply, and record
/// the exchange in the channel log.
async fn answer(state: &AppState, backend: &MountedBackend, name: &str, request: Request) -> Response {
    let started = std::time::Instant::now();
    let http_request = match to_backend_request(state, name, request).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let (parsed, log) = backend.parse_incoming(&http_request).await;
    let seen = state.channel_log.enabled().then_some(http_request);
    let mut stored = Vec::new();
    let (outcome, response) = match parsed {
        Err(failure) => (format!("{failure:?}"), failure_response(failure)),
        Ok(parsed) => match state.dispatch.accept(name, parsed.messages, parsed.reports).await {
            Err(e) => {
                tracing::error!(backend = name, "could not store inbound request: {e}");
                let reply = plain(StatusCode::SERVICE_UNAVAILABLE, "could not store the message, retry later");
                ("not stored: the store is unavailable".to_string(), reply)
            }
            Ok(recorded) => {
                stored = recorded.messages.iter().map(|m| m.id).collect();
                let outcome = format!(
                    "stored {} message(s), {} report(s) matched, {} repeat(s)",
                    recorded.messages.len(),
                    recorded.reports_matched,
                    recorded.duplicates
                );
                let reply = match parsed.response {
                    None => (StatusCode::OK, [("content-type", "text/plain; charset=utf-8")], "OK").into_response(),
                    Some(r) => backend_response(r),
                };
                (outcome, reply)
            }
        },
    };
    let Some(request) = seen else { return response };
    // The reply's body is read back to be recorded (it is small: the backend's own).
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let log_body = state.channel_log.body(&body);
    let secrets = backend.sandbox().secrets();
    state.channel_log.record(Exchange {
        backend: name.to_string(),
        kind: "inbound".into(),
        method: request.method,
        url: secrets.redact(&request.url),
        request_headers: request.headers.into_iter().map(|(n, v)| (n, secrets.redact(&v))).collect(),
        request_body: secrets.redact(&state.channel_log.body(&request.body)),
        status: Some(parts.status.as_u16()),
        response_headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        response_body: log_body,
        duration_us: started.elapsed().as_micros() as u64,
        log,
        outcome,
        message_ids: stored,
        created_at: now_ms(),
    });
    Response::from_parts(parts, Body::from(body))
}

/// The request as the backend sees it: path below its mount point, headers, body.
async fn to_backend_request(state: &AppState, name: &str, request: Request) -> Result<HttpRequest, Response> {
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(state.body_timeout, axum::body::to_bytes(body, state.max_inbound_body_bytes))
        .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(e)) if is_timeout(&e) => return Err(plain(StatusCode::REQUEST_TIMEOUT, "request body too slow")),
        Ok(Err(_)) => {
            let limit = state.max_inbound_body_bytes;
            return Err(plain(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {limit} bytes")));
        }
        Err(_) => return Err(plain(StatusCode::REQUEST_TIMEOUT, "request body too slow")),
    };
    let prefix = format!("/backends/{name}");
    let path = parts.uri.path().strip_prefix(&prefix).unwrap_or("/");
    let path = if path.is_empty() { "/" } else { path };
    let url =
        format!("{}{}", state.public_url, parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(parts.uri.path()));
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    Ok(HttpRequest {
        method: parts.method.as_str().to_string(),
        path: path.to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body: body.to_vec(),
        url,
    })
}

/// True when reading a body failed on its deadline rather than its size.
fn is_timeout(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The reply the backend chose (already checked to be valid HTTP).
fn backend_response(r: HttpResponse) -> Response {
    let mut out = Response::new(Body::from(r.body));
    *out.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    for (n, v) in r.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(n), HeaderValue::try_from(v)) {
            out.headers_mut().append(n, v);
        }
    }
    out
}

/// What the provider learns when nothing was stored; details are in the gateway log.
fn failure_response(failure: InboundFailure) -> Response {
    match failure {
        InboundFailure::Paused(until) => {
            let secs = ((until - now_ms()) / 1000).max(1);
            let r = plain(StatusCode::SERVICE_UNAVAILABLE, "backend paused after repeated failures, retry later");
            with_retry_after(r, secs)
        }
        InboundFailure::Busy => {
            with_retry_after(plain(StatusCode::SERVICE_UNAVAILABLE, "backend busy, retry later"), 1)
        }
        InboundFailure::Rejected { status, reason } => {
            plain(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), reason)
        }
        InboundFailure::Misconfigured => plain(StatusCode::INTERNAL_SERVER_ERROR, "backend is misconfigured"),
        InboundFailure::Failed => plain(StatusCode::INTERNAL_SERVER_ERROR, "backend failed to process the request"),
        InboundFailure::InvalidResult => plain(StatusCode::INTERNAL_SERVER_ERROR, "backend returned an invalid result"),
    }
}

fn with_retry_after(mut response: Response, secs: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert("retry-after", v);
    }
    response
}
