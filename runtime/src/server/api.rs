//! The message API: queue outgoing messages and look at what happened.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::AppState;
use super::reply::error;
use crate::store::{Direction, Enqueued, ExchangeFilter, MessageFilter, MessageStatus, NewOutbound};

/// Longest text accepted for an outgoing message, in bytes.
const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Most recipients in one request.
const MAX_RECIPIENTS: usize = 1000;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/messages", get(list).post(create))
        .route("/messages/{id}", get(show))
        .route("/channel-log", get(channel_log))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateMessage {
    backend: String,
    to: Vec<String>,
    text: String,
    #[serde(default)]
    context: serde_json::Map<String, serde_json::Value>,
}

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// `POST /messages`. With an `Idempotency-Key` header, a repeat of the same
/// request within 24 h returns the message the first one queued.
async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let Json(raw) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let key = match headers.get("idempotency-key").map(|v| v.to_str().map(str::trim)) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= 255 => Some(k.to_string()),
        Some(_) => return error(StatusCode::BAD_REQUEST, "Idempotency-Key must be 1-255 visible characters"),
    };
    // Keys are sorted in serde_json's map: the same request hashes the same.
    let request_hash = hex::encode(sha2::Sha256::digest(raw.to_string().as_bytes()));
    let req: CreateMessage = match serde_json::from_value(raw) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid message: {e}")),
    };
    if state.registry.get(&req.backend).is_none() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("no backend named '{}'", req.backend));
    }
    if req.to.is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "'to' must list at least one identity");
    }
    if req.to.len() > MAX_RECIPIENTS {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("'to' lists more than {MAX_RECIPIENTS} identities"));
    }
    if let Some(bad) = req.to.iter().find(|t| t.trim().is_empty() || t.len() > 256) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid identity '{bad}' in 'to'"));
    }
    if req.text.len() > MAX_TEXT_BYTES {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("'text' is longer than {MAX_TEXT_BYTES} bytes"));
    }
    let in_response_to = match req.context.get("in_response_to") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => match v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(id) => Some(id),
            None => {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "context.in_response_to must be a message id");
            }
        },
    };
    if let Some(orig) = in_response_to {
        match state.store.get(orig).await {
            Ok(Some(m)) if m.direction == Direction::In => {}
            Ok(_) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("no inbound message {orig} (context.in_response_to)"),
                );
            }
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
    let mut to = Vec::with_capacity(req.to.len());
    for t in req.to {
        let t = t.trim().to_string();
        if !to.contains(&t) {
            to.push(t);
        }
    }
    let message =
        NewOutbound { backend: req.backend, text: req.text, identities: to, in_response_to, context: req.context };
    let Some(key) = key else {
        return match state.store.enqueue(message).await {
            Ok(id) => {
                state.outbound_wake.notify_waiters();
                (StatusCode::ACCEPTED, Json(json!({ "id": id, "status": "queued" }))).into_response()
            }
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
    };
    match state.store.enqueue_idempotent(message, &key, &request_hash, IDEMPOTENCY_WINDOW_MS).await {
        Ok(Enqueued::New(id)) => {
            state.outbound_wake.notify_waiters();
            (StatusCode::ACCEPTED, Json(json!({ "id": id, "status": "queued" }))).into_response()
        }
        Ok(Enqueued::Replayed(id)) => {
            let status = match state.store.get(id).await {
                Ok(Some(m)) => m.status.as_str().to_string(),
                _ => "queued".into(),
            };
            let body = Json(json!({ "id": id, "status": status }));
            (StatusCode::ACCEPTED, [("idempotent-replayed", "true")], body).into_response()
        }
        Ok(Enqueued::KeyReused) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Idempotency-Key '{key}' was used for a different request within 24 h"),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn show(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::BAD_REQUEST, format!("'{id}' is not a message id"));
    };
    match state.store.get(id).await {
        Ok(Some(m)) => {
            let mut shown = serde_json::to_value(&m).unwrap_or(Value::Null);
            shown["channel_log"] = Value::from(format!("/api/v1/channel-log?message_id={id}"));
            Json(shown).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no message {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    direction: Option<String>,
    backend: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// A page's size from `limit`: 1-1000, 50 when absent.
fn page_limit(limit: Option<&str>) -> Result<usize, String> {
    match limit.map(str::parse::<usize>) {
        None => Ok(50),
        Some(Ok(n)) if (1..=1000).contains(&n) => Ok(n),
        _ => Err("limit must be a number from 1 to 1000".into()),
    }
}

/// The cursor of the page after a full one: onwards from its last id, in the
/// direction it was read (`after` oldest first, else newest first).
fn next_page(len: usize, limit: usize, last: Option<i64>, after: bool) -> Value {
    match last {
        Some(last) if len == limit && after => json!({ "after": last }),
        Some(last) if len == limit => json!({ "before": last }),
        _ => Value::Null,
    }
}

/// A whole number from a query parameter, or the reason naming the parameter.
fn number(name: &str, value: Option<&str>) -> Result<Option<i64>, String> {
    value.map(|v| v.parse::<i64>().map_err(|_| format!("{name} must be a whole number"))).transpose()
}

/// Newest first, `limit` at a time (1-1000, default 50). `before=ID` pages
/// back; `after=ID` lists oldest first from there (following new messages).
/// `next` is the query for the following page when this one is full.
async fn list(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let direction = match q.direction.as_deref() {
        None => None,
        Some("in") => Some(Direction::In),
        Some("out") => Some(Direction::Out),
        Some(other) => {
            return error(StatusCode::BAD_REQUEST, format!("direction must be 'in' or 'out', not '{other}'"));
        }
    };
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => match MessageStatus::parse(s) {
            Some(status) => Some(status),
            None => return error(StatusCode::BAD_REQUEST, format!("unknown status '{s}'")),
        },
    };
    let limit = match page_limit(q.limit.as_deref()) {
        Ok(limit) => limit,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let numbers = (|| {
        Ok::<_, String>((
            number("since", q.since.as_deref())?,
            number("until", q.until.as_deref())?,
            number("before", q.before.as_deref())?,
            number("after", q.after.as_deref())?,
        ))
    })();
    let (since, until, before, after) = match numbers {
        Ok(n) => n,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    if before.is_some() && after.is_some() {
        return error(StatusCode::BAD_REQUEST, "give 'before' or 'after', not both");
    }
    let filter = MessageFilter { direction, backend: q.backend, status, since, until, before, after, limit };
    match state.store.list(filter).await {
        Ok(messages) => {
            let next = next_page(messages.len(), limit, messages.last().map(|m| m.id), after.is_some());
            Json(json!({ "messages": messages, "next": next })).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelLogQuery {
    backend: Option<String>,
    message_id: Option<String>,
    before: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /channel-log`: exchanges newest first (`before=ID` pages back),
/// or oldest first after `after=ID` (what `smsgw logs --follow` polls).
async fn channel_log(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ChannelLogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = match page_limit(q.limit.as_deref()) {
        Ok(limit) => limit,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let numbers = (|| {
        Ok::<_, String>((
            number("message_id", q.message_id.as_deref())?,
            number("before", q.before.as_deref())?,
            number("after", q.after.as_deref())?,
        ))
    })();
    let (message_id, before, after) = match numbers {
        Ok(n) => n,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let filter = ExchangeFilter { backend: q.backend, message_id, before, after, limit };
    match state.store.exchanges(filter).await {
        Ok(entries) => {
            let next = next_page(entries.len(), limit, entries.last().map(|e| e.id), after.is_some());
            Json(json!({ "entries": entries, "next": next })).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
