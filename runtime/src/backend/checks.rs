//! What the host accepts back from `parse-incoming`: within the backend's
//! limits, and a reply that is valid HTTP whose framing the host owns.

use axum::http::{HeaderName, HeaderValue};

use crate::limits::Limits;
use crate::wasm::bindings::types::Incoming;

/// A backend's answer must stay within its limits and be a valid HTTP reply.
pub fn check_incoming(incoming: &Incoming, limits: &Limits) -> Result<(), String> {
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
        // 1xx (101 included) would switch or split the connection's framing.
        if !(200..=599).contains(&r.status) {
            return Err(format!("response status {} is not allowed (200-599)", r.status));
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

/// Headers that frame the connection or the message. The host sets them: a
/// backend's `content-length: 0` followed by a body that is itself an HTTP
/// response would otherwise answer the client's next pipelined request.
const FRAMING_HEADERS: &[&str] =
    &["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"];

/// True for a header a backend's reply may not set (dropped, not an error:
/// an innocent backend may well set `content-length`).
pub fn is_framing_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    FRAMING_HEADERS.contains(&name.as_str()) || name.starts_with("proxy-")
}
