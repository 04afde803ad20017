//! The Vumi backend: RapidSMS's `VumiBackend`.
//!
//! Inbound: Vumi POSTs each message as a JSON object to the mount URL; Vumi
//! events (ack, nack, delivery_report) POSTed there too become status reports.
//! Outbound: one JSON POST to `sendsms_url` per message, every identity in
//! `to_addr`, as Vumi's RapidSMS relay expects.

mod timestamp;

use smsgw_guest::config::ConfigError;
use smsgw_guest::http::Request;
use smsgw_guest::serde_json::{self, Map, Value, json};
use smsgw_guest::*;

/// The adapter the component exports.
struct Vumi;

/// Fields every Vumi message carries.
const REQUIRED: &[&str] = &["message_id", "to_addr", "from_addr", "transport_name", "transport_type"];

/// Message fields worth keeping for apps and replies.
const KEPT: &[&str] = &["to_addr", "transport_name", "transport_type", "in_reply_to", "session_event", "group"];

/// Context fields passed through to Vumi when an app or the API sets them.
const PASSED_THROUGH: &[&str] = &["from_addr", "endpoint"];

/// The body as a JSON object, or a 400 saying why not.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, ParseError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ParseError::InvalidRequest("body must be a JSON object".into())),
        Err(e) => Err(ParseError::InvalidRequest(format!("body is not valid JSON: {e}"))),
    }
}

/// A required non-empty string field, or a 400 naming it.
fn required<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, ParseError> {
    match object.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(ParseError::InvalidRequest(format!("field '{name}' is empty"))),
        None | Some(Value::Null) => Err(ParseError::InvalidRequest(format!("missing field '{name}'"))),
        Some(_) => Err(ParseError::InvalidRequest(format!("field '{name}' must be a string"))),
    }
}

/// An optional field as text: strings as they are, other values as JSON.
fn optional_text(object: &Map<String, Value>, name: &str) -> Option<String> {
    match object.get(name)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The reply Vumi gets on success.
fn ok() -> HttpResponse {
    HttpResponse::empty(200)
}

/// One user message.
fn message(object: &Map<String, Value>) -> Result<Incoming, ParseError> {
    for name in REQUIRED {
        required(object, name)?;
    }
    let text = match object.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ParseError::InvalidRequest("field 'content' must be a string or null".into()));
        }
    };
    let mut message = IncomingMessage::new(required(object, "from_addr")?, text);
    message.external_id = Some(required(object, "message_id")?.to_string());
    message.received_at = object.get("timestamp").and_then(Value::as_str).and_then(timestamp::parse_ms);
    message.fields = KEPT.iter().filter_map(|name| Some((name.to_string(), optional_text(object, name)?))).collect();
    Ok(Incoming::messages(vec![message]).with_response(ok()))
}

/// One event about a message sent earlier, matched by Vumi's id for it.
fn event(object: &Map<String, Value>) -> Result<Incoming, ParseError> {
    let event_type = required(object, "event_type")?;
    let user_message_id = required(object, "user_message_id")?;
    let (status, detail) = match event_type {
        "ack" => (DeliveryStatus::Sent, None),
        "nack" => (DeliveryStatus::Failed, optional_text(object, "nack_reason")),
        "delivery_report" => delivery_status(object)?,
        other => {
            return Err(ParseError::InvalidRequest(format!(
                "event_type '{other}' is not ack, nack or delivery_report"
            )));
        }
    };
    let report = StatusReport {
        message_id: None,
        external_id: Some(user_message_id.to_string()),
        identity: None,
        status,
        detail,
    };
    Ok(Incoming::reports(vec![report]).with_response(ok()))
}

/// A delivery report's `delivery_status`: pending means the network has it.
fn delivery_status(object: &Map<String, Value>) -> Result<(DeliveryStatus, Option<String>), ParseError> {
    let status = match required(object, "delivery_status")? {
        "delivered" => DeliveryStatus::Delivered,
        "pending" => DeliveryStatus::Sent,
        "failed" => DeliveryStatus::Failed,
        other => {
            return Err(ParseError::InvalidRequest(format!(
                "delivery_status '{other}' is not delivered, pending or failed"
            )));
        }
    };
    Ok((status, optional_text(object, "delivery_status")))
}

/// Events are told apart from messages by their `event_type`.
fn is_event(object: &Map<String, Value>) -> bool {
    object.contains_key("event_type") || object.get("message_type").and_then(Value::as_str) == Some("event")
}

/// The operator's settings for sending.
struct Settings {
    sendsms_url: String,
    /// Merged into the top level of every request; may hold secret references.
    params: Map<String, Value>,
    /// Basic credentials, only when both user and password are set.
    auth: Option<(String, String)>,
}

impl Settings {
    /// Reads the configuration; only sending needs it.
    fn read(ctx: &BackendContext) -> Result<Self, ConfigError> {
        let c = Config::parse(&ctx.config)?;
        let params = match c.value("sendsms_params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => {
                return Err(ConfigError("config key 'sendsms_params' must be a table".into()));
            }
        };
        let user = c.string("sendsms_user")?.filter(|u| !u.is_empty());
        let pass = c.string("sendsms_pass")?.filter(|p| !p.is_empty());
        Ok(Settings { sendsms_url: c.required("sendsms_url")?, params, auth: user.zip(pass) })
    }

    /// The JSON POST for `msg`. Everything from the message is written so that
    /// it cannot form a `{{secret:NAME}}` reference; `sendsms_params` may.
    fn request(&self, msg: &OutgoingMessage) -> Request {
        let body = json::object_body(&self.params, &message_members(msg));
        let req = Request::new("POST", &self.sendsms_url).header("content-type", "application/json").body(body);
        match &self.auth {
            Some((user, pass)) => req.basic_auth(user, pass),
            None => req,
        }
    }
}

/// The members this backend sets, as RapidSMS's Vumi backend does.
fn message_members(msg: &OutgoingMessage) -> Map<String, Value> {
    let mut members = Map::new();
    members.insert("content".into(), json!(msg.text));
    members.insert("to_addr".into(), json!(msg.identities));
    members.insert("session_event".into(), Value::Null);
    members.insert("metadata".into(), json!({ "rapidsms_msg_id": msg.id }));
    // Vumi can only thread a reply to one recipient.
    if let (Some(external_id), [_]) = (&msg.context.external_id, msg.identities.as_slice()) {
        members.insert("in_reply_to".into(), json!(external_id));
    }
    for name in PASSED_THROUGH {
        if let Some((_, value)) = msg.context.fields.iter().find(|(n, _)| n == name) {
            members.insert(name.to_string(), json!(value));
        }
    }
    members
}

/// What Vumi's answer means for the message.
fn outcome(result: Result<http::Response, http::Error>, identities: &[String]) -> Result<Vec<SentIdentity>, SendError> {
    let resp = result?;
    let body = resp.text().trim().to_string();
    match resp.status {
        200..=299 => Ok(sent_identities(&resp, identities)),
        429 => Err(SendError::Throttled(Throttled {
            reason: format!("Vumi answered 429: {body}"),
            retry_after_ms: resp.retry_after_ms(),
        })),
        500..=599 => Err(SendError::Retryable(format!("Vumi answered {}: {body}", resp.status))),
        status => Err(SendError::Permanent(format!("Vumi refused the message with {status}: {body}"))),
    }
}

/// Every identity, with Vumi's message id when the reply names one: the
/// RapidSMS relay answers with a list of sent messages (one per `to_addr`),
/// Vumi Go's HTTP API with the one message. Events refer to these ids.
fn sent_identities(resp: &http::Response, identities: &[String]) -> Vec<SentIdentity> {
    let reply: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    let sent_messages: Vec<&Value> = match &reply {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![&reply],
        _ => Vec::new(),
    };
    // One message answering for every identity: a single recipient, or one
    // message whose `to_addr` is the whole list.
    let shared = match sent_messages.as_slice() {
        [only] if identities.len() == 1 || !only.get("to_addr").is_some_and(Value::is_string) => Some(*only),
        _ => None,
    };
    let id_for = |identity: &str| {
        sent_messages
            .iter()
            .find(|m| m.get("to_addr").and_then(Value::as_str) == Some(identity))
            .copied()
            .or(shared)
            .and_then(|m| m.get("message_id"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    identities.iter().map(|i| SentIdentity { identity: i.clone(), external_id: id_for(i) }).collect()
}

impl Backend for Vumi {
    fn parse_incoming(_ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
        if req.method != "POST" {
            return Err(ParseError::MethodNotAllowed(format!("method {} not allowed; Vumi uses POST", req.method)));
        }
        if req.path != "/" {
            return Err(ParseError::NotFound(format!("no route '{}'; Vumi posts to /", req.path)));
        }
        let object = json_object(&req.body)?;
        if is_event(&object) { event(&object) } else { message(&object) }
    }

    fn send(ctx: BackendContext, msg: OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
        if msg.identities.is_empty() {
            return Ok(Vec::new());
        }
        let settings = Settings::read(&ctx)?;
        outcome(settings.request(&msg).send(), &msg.identities)
    }
}

export_backend!(Vumi);
