//! The generic HTTP backend: smsgw's counterpart of RapidSMS's `GenericHttpBackendView`.
//!
//! Inbound: `GET ?identity=..&text=..` or a POSTed form, with configurable
//! parameter names. Outbound: one request per identity (or one for all when
//! `identity_separator` is set) to `sendsms_url`, as a query, form or JSON.

use smsgw_guest::http::Request;
use smsgw_guest::*;

struct GenericHttp;

/// Where the message goes in an outgoing request.
enum Encoding {
    Query,
    Form,
    Json,
}

/// The options of this backend, read from the operator's table.
struct Settings {
    identity_name: String,
    text_name: String,
    sendsms_url: Option<String>,
    method: String,
    encoding: Encoding,
    out_identity_name: String,
    out_text_name: String,
    out_id_name: Option<String>,
    params: Vec<(String, String)>,
    identity_separator: Option<String>,
}

impl Settings {
    fn read(ctx: &BackendContext) -> Result<Self, config::ConfigError> {
        let c = Config::parse(&ctx.config)?;
        let identity_name = c.string_or("identity_name", "identity")?;
        let text_name = c.string_or("text_name", "text")?;
        let method = c.string_or("sendsms_method", "GET")?.to_ascii_uppercase();
        if method != "GET" && method != "POST" {
            return Err(config::ConfigError(format!(
                "config key 'sendsms_method' must be GET or POST, not '{method}'"
            )));
        }
        let default_encoding = if method == "GET" { "query" } else { "form" };
        let encoding = match c.string_or("sendsms_encoding", default_encoding)?.as_str() {
            "query" => Encoding::Query,
            "form" => Encoding::Form,
            "json" => Encoding::Json,
            other => {
                return Err(config::ConfigError(format!(
                    "config key 'sendsms_encoding' must be query, form or json, not '{other}'"
                )));
            }
        };
        Ok(Settings {
            out_identity_name: c.string_or("outgoing_identity_name", &identity_name)?,
            out_text_name: c.string_or("outgoing_text_name", &text_name)?,
            out_id_name: c.string("outgoing_id_name")?,
            identity_name,
            text_name,
            sendsms_url: c.string("sendsms_url")?,
            method,
            encoding,
            params: c.string_map("sendsms_params")?,
            identity_separator: c.string("identity_separator")?,
        })
    }

    fn request(&self, url: &str, msg: &OutgoingMessage, to: &str) -> Request {
        let mut params = Params::default();
        params.push(&self.out_identity_name, to);
        params.push(&self.out_text_name, &msg.text);
        if let Some(id_name) = &self.out_id_name {
            params.push(id_name, &msg.id);
        }
        // Only the operator's parameters may carry {{secret:NAME}} references;
        // the message's own values are fully encoded so a reference typed into
        // an SMS is never filled in.
        let configured = Params::from_pairs(self.params.clone()).encode_with_secret_refs();
        let encoded = match (configured.is_empty(), params.encode()) {
            (true, own) => own,
            (false, own) => format!("{configured}&{own}"),
        };
        match self.encoding {
            Encoding::Query => {
                let separator = if url.contains('?') { '&' } else { '?' };
                Request::new(&self.method, format!("{url}{separator}{encoded}"))
            }
            Encoding::Form => Request::new(&self.method, url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encoded),
            Encoding::Json => {
                let object = |pairs: &[(String, String)]| {
                    pairs
                        .iter()
                        .map(|(k, v)| (k.clone(), smsgw_guest::serde_json::Value::String(v.clone())))
                        .collect::<smsgw_guest::serde_json::Map<_, _>>()
                };
                let body = smsgw_guest::json::object_body(&object(&self.params), &object(params.pairs()));
                Request::new(&self.method, url).header("content-type", "application/json").body(body)
            }
        }
    }
}

/// What one provider reply means for the identities it covered.
fn classify(identities: &[String], result: Result<http::Response, http::Error>) -> Result<(), SendError> {
    let who = identities.join(", ");
    match result {
        Ok(resp) if resp.is_success() => Ok(()),
        Ok(resp) if resp.status == 429 => Err(SendError::Throttled(Throttled {
            reason: format!("provider throttled {who}"),
            retry_after_ms: retry_after_ms(&resp),
        })),
        Ok(resp) if resp.status >= 500 => {
            Err(SendError::Retryable(format!("provider answered {} for {who}: {}", resp.status, resp.text().trim())))
        }
        Ok(resp) => {
            Err(SendError::Permanent(format!("provider refused {who} with {}: {}", resp.status, resp.text().trim())))
        }
        Err(e) => Err(e.into()),
    }
}

fn retry_after_ms(resp: &http::Response) -> Option<u64> {
    resp.headers
        .iter()
        .find(|(n, _)| n == "retry-after")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(|secs| secs.saturating_mul(1000))
}

impl Backend for GenericHttp {
    fn parse_incoming(ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
        let settings = Settings::read(&ctx)?;
        let params = match req.method.as_str() {
            "GET" => Params::from_query(&req),
            "POST" => Params::from_form(&req),
            other => {
                return Err(ParseError::MethodNotAllowed(format!("method {other} not allowed; use GET or POST")));
            }
        };
        let identity = params.required(&settings.identity_name)?;
        let text = params.required(&settings.text_name)?;
        Ok(Incoming::messages(vec![IncomingMessage::new(identity, text)]))
    }

    fn send(ctx: BackendContext, msg: OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
        let settings = Settings::read(&ctx)?;
        let url = settings
            .sendsms_url
            .clone()
            .ok_or_else(|| SendError::Config("config key 'sendsms_url' is required to send".into()))?;

        if let Some(sep) = &settings.identity_separator {
            let to = msg.identities.join(sep);
            classify(&msg.identities, settings.request(&url, &msg, &to).send())?;
            return Ok(SentIdentity::all(&msg.identities));
        }

        let mut sent = Vec::new();
        let mut failed = Vec::new();
        let mut last_error = None;
        for identity in &msg.identities {
            let outcome = classify(std::slice::from_ref(identity), settings.request(&url, &msg, identity).send());
            match outcome {
                Ok(()) => sent.push(SentIdentity { identity: identity.clone(), external_id: None }),
                Err(e) => {
                    let (reason, retryable) = describe(&e);
                    failed.push(FailedIdentity { identity: identity.clone(), reason, retryable });
                    last_error = Some(e);
                }
            }
        }
        match last_error {
            None => Ok(sent),
            // Everything failed the same way: report that error as it is.
            Some(e) if sent.is_empty() && msg.identities.len() == 1 => Err(e),
            Some(_) => Err(SendError::FailedIdentities(PartialFailure { sent, failed })),
        }
    }
}

fn describe(e: &SendError) -> (String, bool) {
    match e {
        SendError::Permanent(r) | SendError::Config(r) => (r.clone(), false),
        SendError::Retryable(r) | SendError::Other(r) => (r.clone(), true),
        SendError::Throttled(t) => (t.reason.clone(), true),
        SendError::FailedIdentities(_) => ("partial failure".into(), true),
    }
}

export_backend!(GenericHttp);
