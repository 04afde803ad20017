//! {{name}}: an smsgw backend. Inbound: `GET ?from=...&text=...`; outbound: a
//! JSON POST per message to the configured `url`. Change both to match your
//! provider, then pin the behaviour in `testdata/`.

use smsgw_guest::*;

struct Adapter;

impl Backend for Adapter {
    fn parse_incoming(_ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
        if req.method != "GET" {
            return Err(ParseError::MethodNotAllowed(format!("use GET, not {}", req.method)));
        }
        let q = Params::from_query(&req);
        let message = IncomingMessage::new(q.required("from")?, q.required("text")?);
        Ok(Incoming::messages(vec![message]).with_response(HttpResponse::new(200, "text/plain", "OK")))
    }

    fn send(ctx: BackendContext, msg: OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
        let url = Config::parse(&ctx.config)?.required("url")?;
        let body = serde_json::json!({ "to": msg.identities, "text": msg.text, "id": msg.id });
        let response = http::Request::post_json(&url, &body).send()?;
        match response.status {
            200..=299 => Ok(SentIdentity::all(&msg.identities)),
            500.. => Err(SendError::Retryable(format!("provider answered {}", response.status))),
            _ => Err(SendError::Permanent(format!("provider answered {}", response.status))),
        }
    }
}

export_backend!(Adapter);
