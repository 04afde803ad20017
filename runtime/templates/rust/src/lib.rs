//! {{name}}: an smsgw backend. Inbound: `GET ?from=...&text=...`; outbound: a
//! JSON POST per message to the configured `url`. Change both to match your
//! provider, then pin the behaviour in `testdata/`.

wit_bindgen::generate!({ world: "backend", path: "wit" });

use exports::smsgw::backend::adapter::Guest;
use smsgw::backend::http_client::{self, Request};
use smsgw::backend::types::{
    BackendContext, HttpRequest, HttpResponse, Incoming, IncomingMessage, OutgoingMessage, ParseError, SendError,
    SentIdentity,
};

struct Backend;

/// The first value of a query parameter, trimmed; a 400 naming it when missing.
fn param(query: &str, name: &str) -> Result<String, ParseError> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ParseError::InvalidRequest(format!("missing parameter '{name}'")))
}

/// A string from the operator's configuration (a JSON object).
fn config(ctx: &BackendContext, key: &str) -> Option<String> {
    let table: serde_json::Value = serde_json::from_str(&ctx.config).ok()?;
    table.get(key)?.as_str().map(str::to_string)
}

impl Guest for Backend {
    fn parse_incoming(_ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
        if req.method != "GET" {
            return Err(ParseError::MethodNotAllowed(format!("use GET, not {}", req.method)));
        }
        let message = IncomingMessage {
            identity: param(&req.query, "from")?,
            text: param(&req.query, "text")?,
            external_id: None,
            received_at: None,
            fields: Vec::new(),
        };
        let ok = HttpResponse { status: 200, headers: vec![("content-type".into(), "text/plain".into())], body: b"OK".to_vec() };
        Ok(Incoming { messages: vec![message], reports: Vec::new(), response: Some(ok) })
    }

    fn send(ctx: BackendContext, msg: OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
        let url = config(&ctx, "url").ok_or_else(|| SendError::Config("config key 'url' is required".into()))?;
        let body = serde_json::json!({ "to": msg.identities, "text": msg.text, "id": msg.id });
        let request = Request {
            method: "POST".into(),
            url,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            timeout_ms: None,
        };
        match http_client::fetch(&request) {
            Ok(r) if (200..300).contains(&r.status) => Ok(msg
                .identities
                .iter()
                .map(|identity| SentIdentity { identity: identity.clone(), external_id: None })
                .collect()),
            Ok(r) if r.status >= 500 => Err(SendError::Retryable(format!("provider answered {}", r.status))),
            Ok(r) => Err(SendError::Permanent(format!("provider answered {}", r.status))),
            Err(e) => Err(SendError::Retryable(format!("{e:?}"))),
        }
    }
}

export!(Backend);
