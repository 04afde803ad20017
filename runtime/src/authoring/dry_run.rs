//! The adapter author's dry run: one request or one message through the
//! active version of a backend, against mocked provider answers, storing
//! nothing. Shares request building with the fixture runner.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::fixtures::format::{MessageSpec, MockSpec, RequestSpec};
use super::fixtures::mock::MockTransport;
use crate::backend::{MountedBackend, Registry, contract};
use crate::wasm::bindings::types::{ParseError, SendError};

/// What to try: a provider request, or a message with mocked provider answers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TryRequest {
    #[serde(default)]
    pub request: Option<RequestSpec>,
    #[serde(default)]
    pub message: Option<MessageSpec>,
    #[serde(default)]
    pub mocks: Vec<MockSpec>,
}

/// Runs the dry run and describes what the backend did, as JSON.
pub async fn run(registry: &Registry, backend: &MountedBackend, req: TryRequest) -> Result<Value, String> {
    let mock = Arc::new(MockTransport::new(req.mocks));
    let sandbox = registry.sandbox_with(backend, mock.clone()).map_err(|e| format!("{e:#}"))?;
    let base_url = format!("{}/", sandbox_base(backend));
    match (req.request, req.message) {
        (Some(spec), None) => {
            let request = spec.to_request(&base_url)?;
            let out = sandbox.parse_incoming(&request).await;
            let result = match out.result {
                Err(e) => json!({ "call_failed": e.to_string() }),
                Ok(Ok(incoming)) => json!({
                    "messages": incoming.messages.iter().map(|m| json!({
                        "identity": m.identity, "text": m.text, "external_id": m.external_id,
                        "received_at": m.received_at, "fields": m.fields,
                    })).collect::<Vec<_>>(),
                    "reports": incoming.reports.iter().map(|r| json!({
                        "message_id": r.message_id, "external_id": r.external_id, "identity": r.identity,
                        "status": contract::delivery_status_name(r.status), "detail": r.detail,
                    })).collect::<Vec<_>>(),
                    "response": incoming.response.map(|r| json!({
                        "status": r.status, "headers": r.headers, "body": String::from_utf8_lossy(&r.body),
                    })),
                }),
                Ok(Err(e)) => json!({ "error": parse_error_json(&e) }),
            };
            Ok(json!({ "result": result, "log": out.log, "elapsed_us": out.elapsed.as_micros() as u64 }))
        }
        (None, Some(m)) => {
            let out = sandbox.send(m.to_outgoing()).await;
            let outcome = match out.result {
                Err(e) => json!({ "call_failed": e.to_string() }),
                Ok(Ok(sent)) => {
                    json!({ "sent": sent.iter().map(|s| json!({"identity": s.identity, "external_id": s.external_id})).collect::<Vec<_>>() })
                }
                Ok(Err(e)) => json!({ "error": send_error_json(&e) }),
            };
            let requests: Vec<Value> = mock
                .requests()
                .iter()
                .map(|r| {
                    // As the guest wrote it: `{{secret:NAME}}` where a secret goes.
                    let t = &r.template;
                    json!({
                        "method": t.method,
                        "url": t.url,
                        "headers": t.headers,
                        "body": String::from_utf8_lossy(&t.body),
                    })
                })
                .collect();
            Ok(
                json!({ "outcome": outcome, "requests": requests, "log": out.log, "elapsed_us": out.elapsed.as_micros() as u64 }),
            )
        }
        _ => Err("give either 'request' (a provider request) or 'message' (with optional 'mocks')".into()),
    }
}

fn sandbox_base(backend: &MountedBackend) -> String {
    format!("http://gateway.test/backends/{}", backend.name)
}

fn parse_error_json(e: &ParseError) -> Value {
    let (kind, reason) = contract::parse_error_parts(e);
    json!({ "kind": kind, "reason": reason })
}

fn send_error_json(e: &SendError) -> Value {
    let (kind, reason) = contract::send_error_parts(e);
    match e {
        SendError::Throttled(t) => json!({ "kind": kind, "reason": reason, "retry_after_ms": t.retry_after_ms }),
        SendError::FailedIdentities(p) => json!({
            "kind": kind,
            "sent": p.sent.iter().map(|s| json!({"identity": s.identity, "external_id": s.external_id})).collect::<Vec<_>>(),
            "failed": p.failed.iter().map(|f| json!({"identity": f.identity, "reason": f.reason, "retryable": f.retryable})).collect::<Vec<_>>(),
        }),
        _ => json!({ "kind": kind, "reason": reason }),
    }
}
