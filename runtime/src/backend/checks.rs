//! What the host accepts back from `parse-incoming`: within the backend's
//! limits, and a reply that is valid HTTP whose framing the host owns.

use axum::http::{HeaderName, HeaderValue};

use crate::limits::Limits;
use crate::wasm::bindings::types::Incoming;

/// Why an answer from `parse-incoming` is not stored. What the provider's
/// request caused is the provider's to fix (a 4xx it will not retry forever);
/// only a broken backend is a 500.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request carried more than the limits allow (413).
    TooLarge(String),
    /// The request's content cannot be stored as it is (422).
    Unprocessable(String),
    /// The backend's own reply is unusable (500).
    Broken(String),
}

/// A backend's answer must stay within its limits and be a valid HTTP reply.
pub fn check_incoming(incoming: &Incoming, limits: &Limits) -> Result<(), Refusal> {
    let count = incoming.messages.len() + incoming.reports.len();
    if count > limits.max_messages {
        return Err(Refusal::TooLarge(format!(
            "{count} messages and reports in one request; the limit is {}",
            limits.max_messages
        )));
    }
    for m in &incoming.messages {
        if m.text.len() > limits.max_text_bytes {
            return Err(Refusal::TooLarge(format!(
                "a message text has {} bytes; the limit is {}",
                m.text.len(),
                limits.max_text_bytes
            )));
        }
        let field_bytes: usize = m.fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        if field_bytes > limits.max_text_bytes {
            return Err(Refusal::TooLarge(format!(
                "message fields take {field_bytes} bytes; the limit is {}",
                limits.max_text_bytes
            )));
        }
        if m.identity.trim().is_empty() {
            return Err(Refusal::Unprocessable("a message has an empty sender".into()));
        }
        if m.identity.len() > 256 || m.external_id.as_ref().is_some_and(|e| e.len() > 256) {
            return Err(Refusal::Unprocessable("a sender or message id is longer than 256 bytes".into()));
        }
    }
    if let Some(r) = &incoming.response {
        // 1xx (101 included) would switch or split the connection's framing.
        if !(200..=599).contains(&r.status) {
            return Err(Refusal::Broken(format!("response status {} is not allowed (200-599)", r.status)));
        }
        if r.body.len() > limits.http_response_bytes {
            return Err(Refusal::Broken("response body too large".into()));
        }
        for (n, v) in &r.headers {
            if HeaderName::try_from(n.as_str()).is_err() || HeaderValue::try_from(v.as_str()).is_err() {
                return Err(Refusal::Broken(format!("response header '{n}' is not valid")));
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
