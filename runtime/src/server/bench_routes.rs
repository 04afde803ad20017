//! Benchmark-only routes (`bench_routes = true`): the baselines the Wasm path
//! is measured against, in the same binary and through the same store.
//!
//! - `GET /bench/floor`: answers at once (the HTTP floor).
//! - `GET /bench/native/{name}/`: Kannel's MO request parsed by native Rust
//!   code doing what the Kannel component does, then stored and answered
//!   exactly like `/backends/{name}/` (the Wasm tax is the difference).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::apps::InboundMessage;
use crate::store::NewInbound;

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new().route("/floor", get(|| async { StatusCode::OK })).route("/native/{name}/", get(native_kannel))
}

/// The raw, percent-decoded bytes of the first `name` parameter.
fn raw_param(query: &str, name: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            let plus_as_space = v.replace('+', " ");
            percent_decode(plus_as_space.as_bytes())
        })
    })
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (hex(input[i + 1]), input.get(i + 2).and_then(|c| hex(*c)))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

/// Kannel's text decoded by `charset`/`coding`, as the component does it.
fn decode_text(bytes: &[u8], charset: Option<&[u8]>, coding: Option<&[u8]>) -> String {
    let charset = charset.map(|c| String::from_utf8_lossy(c).to_ascii_uppercase().replace(['-', '_'], ""));
    let utf16 = charset.as_deref() == Some("UTF16BE") || (charset.is_none() && coding == Some(b"2"));
    let latin1 = matches!(charset.as_deref(), Some("8BIT" | "ISO88591")) || (charset.is_none() && coding == Some(b"1"));
    if utf16 {
        let units: Vec<u16> = bytes.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
        String::from_utf16_lossy(&units)
    } else if latin1 {
        bytes.iter().map(|b| char::from(*b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

async fn native_kannel(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let sender = raw_param(&query, "id").map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let Some(sender) = sender.filter(|s| !s.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "missing parameter 'id'").into_response();
    };
    let Some(raw) = raw_param(&query, "text") else {
        return (StatusCode::BAD_REQUEST, "missing parameter 'text'").into_response();
    };
    let charset = raw_param(&query, "charset");
    let coding = raw_param(&query, "coding");
    let text = decode_text(&raw, charset.as_deref(), coding.as_deref()).trim().to_string();
    let message = NewInbound { identity: sender, text, external_id: None, received_at: None, fields: Vec::new() };
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
