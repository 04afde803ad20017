//! The Twilio backend (Programmable Messaging).
//!
//! Inbound: Twilio's messaging webhook (a signed form POST) on the mount URL,
//! status callbacks on `/status/`. Outbound: one `Messages.json` POST per
//! identity, so each recipient gets its own Twilio `sid` for status callbacks.

mod signature;

use smsgw_guest::config::ConfigError;
use smsgw_guest::http::Request;
use smsgw_guest::serde_json::{self, Value};
use smsgw_guest::*;

/// The adapter the component exports.
struct Twilio;

/// Twilio's REST API.
const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// The empty TwiML document: acknowledge, reply nothing (replies go out
/// through the REST API like every other message).
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

/// Parameters that become the message itself rather than its fields.
const MAPPED: &[&str] = &["From", "Body", "MessageSid"];

/// The webhook's parameters: the form for POST, the query for GET (Twilio
/// can be told to use either; a GET's parameters are already in the signed URL).
fn params(req: &HttpRequest) -> Result<(Params, Vec<(String, String)>), ParseError> {
    match req.method.as_str() {
        "POST" => {
            let form = Params::from_form(req);
            let signed = form.pairs().to_vec();
            Ok((form, signed))
        }
        "GET" => Ok((Params::from_query(req), Vec::new())),
        other => Err(ParseError::MethodNotAllowed(format!("method {other} not allowed; Twilio uses POST or GET"))),
    }
}

/// Refuses requests that Twilio did not sign, unless the operator turned
/// validation off.
fn check_signature(config: &Config, req: &HttpRequest, signed: &[(String, String)]) -> Result<(), ParseError> {
    if !config.bool_or("validate_signature", true)? {
        return Ok(());
    }
    let token = match config.string("auth_token")? {
        Some(t) if t.contains("{{secret:") => {
            return Err(ParseError::Config(
                "config key 'auth_token' is a secret reference, which the backend cannot read; \
                 signature validation needs the token itself (or set validate_signature = false)"
                    .into(),
            ));
        }
        Some(t) if !t.is_empty() => t,
        _ => {
            return Err(ParseError::Config("config key 'auth_token' is required to validate signatures".into()));
        }
    };
    let signature = req
        .header("x-twilio-signature")
        .ok_or_else(|| ParseError::Forbidden("missing X-Twilio-Signature header".into()))?;
    if signature::verify(&token, &req.url, signed, signature.trim()) {
        Ok(())
    } else {
        Err(ParseError::Forbidden("X-Twilio-Signature does not match the request".into()))
    }
}

/// The first non-empty value among `names` (Twilio repeats ids under old names).
fn first_of(params: &Params, names: &[&str]) -> Option<String> {
    names.iter().filter_map(|n| params.get(n)).map(str::trim).find(|v| !v.is_empty()).map(str::to_string)
}

/// One inbound SMS or MMS.
fn message(params: &Params) -> Result<Incoming, ParseError> {
    let identity = params.required("From")?;
    let mut message = IncomingMessage::new(identity, params.get("Body").unwrap_or(""));
    message.external_id = first_of(params, &["MessageSid", "SmsMessageSid", "SmsSid"]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for (name, value) in params.pairs() {
        if !MAPPED.contains(&name.as_str()) && !fields.iter().any(|(n, _)| n == name) {
            fields.push((name.clone(), value.clone()));
        }
    }
    message.fields = fields;
    let twiml = HttpResponse::new(200, "text/xml", EMPTY_TWIML);
    Ok(Incoming::messages(vec![message]).with_response(twiml))
}

/// One status callback about a message sent earlier, matched by its `sid`.
fn report(params: &Params) -> Result<Incoming, ParseError> {
    let sid = first_of(params, &["MessageSid", "SmsSid"])
        .ok_or_else(|| ParseError::InvalidRequest("missing parameter 'MessageSid'".into()))?;
    let status_name = first_of(params, &["MessageStatus", "SmsStatus"])
        .ok_or_else(|| ParseError::InvalidRequest("missing parameter 'MessageStatus'".into()))?;
    let report = StatusReport {
        message_id: None,
        external_id: Some(sid),
        identity: first_of(params, &["To"]),
        status: delivery_status(&status_name)?,
        detail: error_detail(params),
    };
    Ok(Incoming::reports(vec![report]).with_response(HttpResponse::empty(200)))
}

/// Twilio's `MessageStatus` as a delivery status.
fn delivery_status(name: &str) -> Result<DeliveryStatus, ParseError> {
    match name {
        "accepted" | "queued" | "scheduled" | "sending" => Ok(DeliveryStatus::Queued),
        "sent" => Ok(DeliveryStatus::Sent),
        "delivered" | "read" => Ok(DeliveryStatus::Delivered),
        "undelivered" | "failed" | "canceled" => Ok(DeliveryStatus::Failed),
        other => Err(ParseError::InvalidRequest(format!("MessageStatus '{other}' is not a status of a sent message"))),
    }
}

/// "ErrorCode 30003" (and Twilio's message, when it sends one).
fn error_detail(params: &Params) -> Option<String> {
    let code = first_of(params, &["ErrorCode"])?;
    Some(match first_of(params, &["ErrorMessage"]) {
        Some(message) => format!("ErrorCode {code}: {message}"),
        None => format!("ErrorCode {code}"),
    })
}

/// A status callback arrives on `/status/`; one pointed at the mount URL
/// (e.g. a Messaging Service's callback) is recognised by a `MessageStatus`
/// without a `Body`.
fn is_status_callback(route: &Route, params: &Params) -> bool {
    match route {
        Route::Status => true,
        Route::Message => params.get("Body").is_none() && params.get("MessageStatus").is_some(),
    }
}

/// The operator's settings for sending.
struct Settings {
    messages_url: String,
    account_sid: String,
    /// Used as given: normally a `{{secret:NAME}}` reference for the host.
    auth_token: String,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    status_callback: Option<String>,
}

impl Settings {
    /// Reads the configuration for sending (inbound only needs the token).
    fn read(ctx: &BackendContext) -> Result<Self, ConfigError> {
        let c = Config::parse(&ctx.config)?;
        let api_base = c.string_or("api_base", DEFAULT_API_BASE)?;
        let account_sid = c.required("account_sid")?;
        let from = c.string("from")?.filter(|v| !v.is_empty());
        let messaging_service_sid = c.string("messaging_service_sid")?.filter(|v| !v.is_empty());
        if from.is_none() && messaging_service_sid.is_none() {
            return Err(ConfigError("config key 'from' or 'messaging_service_sid' is required to send".into()));
        }
        let status_callback = c.bool_or("status_callback", false)?.then(|| format!("{}status/", ctx.base_url));
        Ok(Settings {
            messages_url: format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", api_base.trim_end_matches('/')),
            auth_token: c.required("auth_token")?,
            account_sid,
            from,
            messaging_service_sid,
            status_callback,
        })
    }

    /// The `Messages.json` POST for one recipient.
    fn request(&self, msg: &OutgoingMessage, identity: &str) -> Request {
        let mut form = Params::default();
        form.push("To", identity);
        if let Some(from) = &self.from {
            form.push("From", from);
        }
        if let Some(sid) = &self.messaging_service_sid {
            form.push("MessagingServiceSid", sid);
        }
        form.push("Body", &msg.text);
        if let Some(url) = &self.status_callback {
            form.push("StatusCallback", url);
        }
        Request::post_form(&self.messages_url, &form).basic_auth(&self.account_sid, &self.auth_token)
    }
}

/// What Twilio's answer for one recipient means: its `sid`, or why not.
fn attempt(result: Result<http::Response, http::Error>) -> Result<Option<String>, SendError> {
    let resp = result?;
    let reply: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    match resp.status {
        200..=299 => Ok(reply.get("sid").and_then(Value::as_str).map(str::to_string)),
        429 => Err(SendError::Throttled(Throttled {
            reason: twilio_error(&resp, &reply),
            retry_after_ms: resp.retry_after_ms(),
        })),
        401 => Err(SendError::Config(format!("Twilio refused the credentials: {}", twilio_error(&resp, &reply)))),
        500..=599 => Err(SendError::Retryable(twilio_error(&resp, &reply))),
        _ => Err(SendError::Permanent(twilio_error(&resp, &reply))),
    }
}

/// "Twilio error 21211: The 'To' number ... (HTTP 400)", from Twilio's error
/// JSON, or the body as text when it is not one.
fn twilio_error(resp: &http::Response, reply: &Value) -> String {
    let code = reply.get("code").filter(|c| !c.is_null()).map(|c| c.to_string());
    let message = reply.get("message").and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => {
            format!("Twilio error {code}: {message} (HTTP {})", resp.status)
        }
        (None, Some(message)) => format!("Twilio: {message} (HTTP {})", resp.status),
        _ => format!("Twilio answered {}: {}", resp.status, resp.text().trim()),
    }
}

/// Errors that concern the whole message, not one recipient: sending to the
/// others would only repeat them.
fn stops_sending(e: &SendError) -> bool {
    matches!(e, SendError::Throttled(_) | SendError::Config(_))
}

/// A send error's reason, and whether trying again later may help.
fn reason_and_retryable(e: &SendError) -> (String, bool) {
    match e {
        SendError::Permanent(r) | SendError::Config(r) => (r.clone(), false),
        SendError::Retryable(r) | SendError::Other(r) => (r.clone(), true),
        SendError::Throttled(t) => (t.reason.clone(), true),
        SendError::FailedIdentities(_) => ("partial failure".into(), true),
    }
}

/// Sends to each identity in turn and sums up, RapidSMS's `failed_identities`.
fn send_each(settings: &Settings, msg: &OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
    let mut sent = Vec::new();
    let mut failed = Vec::new();
    let mut first_error: Option<SendError> = None;
    for identity in &msg.identities {
        // After a throttle or a credentials error, the rest fail the same way unsent.
        let result = match first_error.as_ref().filter(|e| stops_sending(e)) {
            Some(e) => Err(e.clone()),
            None => attempt(settings.request(msg, identity).send()),
        };
        match result {
            Ok(external_id) => sent.push(SentIdentity { identity: identity.clone(), external_id }),
            Err(e) => {
                let (reason, retryable) = reason_and_retryable(&e);
                failed.push(FailedIdentity { identity: identity.clone(), reason, retryable });
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(sent),
        Some(e) if msg.identities.len() == 1 || (sent.is_empty() && stops_sending(&e)) => Err(e),
        Some(_) => Err(SendError::FailedIdentities(PartialFailure { sent, failed })),
    }
}

impl Backend for Twilio {
    fn parse_incoming(ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
        let (params, signed) = params(&req)?;
        let route = Route::of(&req.path)?;
        check_signature(&Config::parse(&ctx.config)?, &req, &signed)?;
        if is_status_callback(&route, &params) { report(&params) } else { message(&params) }
    }

    fn send(ctx: BackendContext, msg: OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
        if msg.identities.is_empty() {
            return Ok(Vec::new());
        }
        send_each(&Settings::read(&ctx)?, &msg)
    }
}

export_backend!(Twilio);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_delivery_states() {
        assert!(matches!(delivery_status("queued"), Ok(DeliveryStatus::Queued)));
        assert!(matches!(delivery_status("sent"), Ok(DeliveryStatus::Sent)));
        assert!(matches!(delivery_status("read"), Ok(DeliveryStatus::Delivered)));
        assert!(matches!(delivery_status("undelivered"), Ok(DeliveryStatus::Failed)));
        assert!(matches!(delivery_status("received"), Err(ParseError::InvalidRequest(_))));
    }

    #[test]
    fn status_callbacks_are_recognised_on_either_route() {
        let callback = Params::parse(b"MessageSid=SM1&MessageStatus=sent");
        let inbound = Params::parse(b"MessageSid=SM1&Body=hi&SmsStatus=received");
        assert!(is_status_callback(&Route::Status, &inbound));
        assert!(is_status_callback(&Route::Message, &callback));
        assert!(!is_status_callback(&Route::Message, &inbound));
    }
}
