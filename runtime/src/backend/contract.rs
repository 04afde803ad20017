//! The one place that knows how the WIT contract's types map to the
//! gateway's: what a parsed request becomes in the store, what a queued
//! message looks like to `send`, and the names and HTTP statuses of every
//! status and error kind (the same words in the API, fixtures and dry runs).

use crate::store::{ClaimedSend, NewInbound, NewReport, RecipientStatus};
use crate::wasm::bindings::types::{
    DeliveryStatus, HttpResponse, Incoming, MessageContext, OutgoingMessage, ParseError, SendError,
};

/// A delivery status as the store records it.
pub fn recipient_status(status: DeliveryStatus) -> RecipientStatus {
    match status {
        DeliveryStatus::Queued => RecipientStatus::Queued,
        DeliveryStatus::Sent => RecipientStatus::Sent,
        DeliveryStatus::Delivered => RecipientStatus::Delivered,
        DeliveryStatus::Failed => RecipientStatus::Failed,
    }
}

/// A delivery status's name (as in the WIT and the API).
pub fn delivery_status_name(status: DeliveryStatus) -> &'static str {
    recipient_status(status).as_str()
}

/// A parse error's kind (as in the WIT) and its reason.
pub fn parse_error_parts(e: &ParseError) -> (&'static str, &str) {
    match e {
        ParseError::InvalidRequest(r) => ("invalid-request", r),
        ParseError::Unauthorized(r) => ("unauthorized", r),
        ParseError::Forbidden(r) => ("forbidden", r),
        ParseError::NotFound(r) => ("not-found", r),
        ParseError::MethodNotAllowed(r) => ("method-not-allowed", r),
        ParseError::Config(r) => ("config", r),
        ParseError::Other(r) => ("other", r),
    }
}

/// The HTTP status the provider gets for a parse error.
pub fn parse_error_status(e: &ParseError) -> u16 {
    match e {
        ParseError::InvalidRequest(_) => 400,
        ParseError::Unauthorized(_) => 401,
        ParseError::Forbidden(_) => 403,
        ParseError::NotFound(_) => 404,
        ParseError::MethodNotAllowed(_) => 405,
        ParseError::Config(_) | ParseError::Other(_) => 500,
    }
}

/// A send error's kind (as in the WIT) and its reason (empty for
/// `failed-identities`, whose reasons are per identity).
pub fn send_error_parts(e: &SendError) -> (&'static str, &str) {
    match e {
        SendError::Permanent(r) => ("permanent", r),
        SendError::Retryable(r) => ("retryable", r),
        SendError::Throttled(t) => ("throttled", &t.reason),
        SendError::Config(r) => ("config", r),
        SendError::FailedIdentities(_) => ("failed-identities", ""),
        SendError::Other(r) => ("other", r),
    }
}

/// Applies `f` to every reason a send error carries (redaction).
pub fn map_send_error_reasons(e: SendError, f: impl Fn(&str) -> String) -> SendError {
    match e {
        SendError::Permanent(r) => SendError::Permanent(f(&r)),
        SendError::Retryable(r) => SendError::Retryable(f(&r)),
        SendError::Config(r) => SendError::Config(f(&r)),
        SendError::Other(r) => SendError::Other(f(&r)),
        SendError::Throttled(mut t) => {
            t.reason = f(&t.reason);
            SendError::Throttled(t)
        }
        SendError::FailedIdentities(mut p) => {
            for failed in &mut p.failed {
                failed.reason = f(&failed.reason);
            }
            SendError::FailedIdentities(p)
        }
    }
}

/// What a successful `parse-incoming` asks the gateway to store, and the
/// reply the backend chose for the provider (if any).
pub struct ParsedRequest {
    pub messages: Vec<NewInbound>,
    pub reports: Vec<NewReport>,
    pub response: Option<HttpResponse>,
}

impl From<Incoming> for ParsedRequest {
    fn from(incoming: Incoming) -> Self {
        let Incoming { messages, reports, response } = incoming;
        ParsedRequest {
            messages: messages
                .into_iter()
                .map(|m| NewInbound {
                    identity: m.identity,
                    text: m.text,
                    external_id: m.external_id,
                    received_at: m.received_at,
                    fields: m.fields,
                    decided: None,
                })
                .collect(),
            reports: reports
                .into_iter()
                .map(|r| NewReport {
                    message_id: r.message_id,
                    external_id: r.external_id,
                    identity: r.identity,
                    status: recipient_status(r.status),
                    detail: r.detail,
                })
                .collect(),
            response,
        }
    }
}

/// A claimed queue entry as the backend's `send` receives it.
pub fn outgoing_message(job: &ClaimedSend) -> OutgoingMessage {
    OutgoingMessage {
        id: job.id.to_string(),
        text: job.text.clone(),
        identities: job.identities.clone(),
        context: MessageContext {
            in_response_to: job.in_response_to.map(|id| id.to_string()),
            external_id: job.reply_to_external_id.clone(),
            fields: context_pairs(&job.context),
        },
    }
}

/// The API caller's context as name/value pairs (non-strings as JSON).
fn context_pairs(context: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    context
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k.clone(), s.clone()),
            other => (k.clone(), other.to_string()),
        })
        .collect()
}
