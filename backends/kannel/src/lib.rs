//! The Kannel backend: RapidSMS's `KannelBackend`, plus correct charsets and
//! delivery reports.
//!
//! Inbound: Kannel's `sms-service` calls `GET /?id=%p&text=%a&charset=%C&coding=%c`
//! below the mount; delivery reports arrive on `GET /status/`. Outbound: one
//! `GET` of Kannel's `sendsms` interface per message, every identity in `to`.

mod charset;
mod gsm;

use charset::Charset;
use smsgw_guest::config::ConfigError;
use smsgw_guest::http::Request;
use smsgw_guest::serde_json::Value;
use smsgw_guest::*;

/// The adapter the component exports.
struct Kannel;

/// Kannel's default `sendsms` interface on the same host.
const DEFAULT_SENDSMS_URL: &str = "http://127.0.0.1:13013/cgi-bin/sendsms";

/// Every delivery-report type (delivered, failed, buffered, submitted, rejected).
const DEFAULT_DLR_MASK: &str = "31";

/// The placeholders Kannel fills into the delivery-report URL, after `message_id`.
const DLR_PLACEHOLDERS: &str = "status=%d&smsc=%i&sms_id=%I&date_sent=%t&identity=%p&status_text=%A";

/// Parameters this backend sets itself; the same names in `sendsms_params` are dropped.
const OWN_PARAMS: &[&str] = &["to", "text", "charset", "coding"];

/// The operator's settings for sending.
struct Settings {
    sendsms_url: String,
    /// `sendsms_params` less `charset`, `coding` and what the message sets.
    params: Vec<(String, String)>,
    /// A charset pinned by the operator; UTF-8 otherwise.
    charset: Option<String>,
    /// A coding pinned by the operator; chosen per text otherwise.
    coding: Option<String>,
    /// This backend's inbound base URL as Kannel reaches it, ending in "/";
    /// `None` when no delivery reports are wanted.
    dlr_base: Option<String>,
    dlr_mask: String,
}

impl Settings {
    /// Reads the configuration; RapidSMS's top-level `charset` and `coding`
    /// keys are honoured when `sendsms_params` does not pin them.
    fn read(ctx: &BackendContext) -> Result<Self, ConfigError> {
        let c = Config::parse(&ctx.config)?;
        let all = c.string_map("sendsms_params")?;
        let pinned = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let charset = pinned("charset").or(c.string("charset")?).filter(|v| !v.trim().is_empty());
        let coding = pinned("coding").or(c.string("coding")?).filter(|v| !v.trim().is_empty());
        let dlr_base = delivery_report_base(&c, &ctx.base_url)?;
        let params = all
            .into_iter()
            .filter(|(k, _)| !OWN_PARAMS.contains(&k.as_str()))
            .filter(|(k, _)| dlr_base.is_none() || (k != "dlr-url" && k != "dlr-mask"))
            .collect();
        Ok(Settings {
            sendsms_url: c.string_or("sendsms_url", DEFAULT_SENDSMS_URL)?,
            params,
            charset,
            coding,
            dlr_base,
            dlr_mask: c.string_or("dlr_mask", DEFAULT_DLR_MASK)?,
        })
    }

    /// The `sendsms` URL for `msg`: the operator's parameters (secret
    /// references intact) followed by the message's (fully encoded).
    fn url(&self, msg: &OutgoingMessage) -> Result<String, ConfigError> {
        let configured = Params::from_pairs(self.params.clone()).encode_with_secret_refs();
        let own = self.message_query(msg)?;
        let query = if configured.is_empty() { own } else { format!("{configured}&{own}") };
        let separator = if self.sendsms_url.contains('?') { '&' } else { '?' };
        Ok(format!("{}{separator}{query}", self.sendsms_url))
    }

    /// `to`, `text`, `coding`, `charset` and the delivery-report request.
    fn message_query(&self, msg: &OutgoingMessage) -> Result<String, ConfigError> {
        let (charset_name, charset) = self.charset()?;
        let coding = self.coding.clone().unwrap_or_else(|| coding_for(&msg.text).into());
        let mut pairs = vec![
            ("to", encode(msg.identities.join(" ").as_bytes())),
            ("text", encode(&charset.encode(&msg.text))),
            ("coding", encode(coding.as_bytes())),
            ("charset", encode(charset_name.as_bytes())),
        ];
        if let Some(base) = &self.dlr_base {
            pairs.push(("dlr-mask", encode(self.dlr_mask.as_bytes())));
            pairs.push(("dlr-url", encode(dlr_url(base, &msg.id).as_bytes())));
        }
        Ok(pairs.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("&"))
    }

    /// The charset to declare and encode the text in.
    fn charset(&self) -> Result<(String, Charset), ConfigError> {
        let name = self.charset.clone().unwrap_or_else(|| "UTF-8".into());
        match Charset::from_name(&name) {
            Some(charset) => Ok((name, charset)),
            None => Err(ConfigError(format!(
                "the configured charset is '{name}'; this backend can encode \
                 UTF-8, UTF-16BE, ISO-8859-1 and ASCII"
            ))),
        }
    }
}

/// Where Kannel should send delivery reports: `delivery_report_url = true`
/// means the gateway's own public URL for this backend; a string is that base
/// URL as Kannel reaches it (a "/" is added if missing); absent or `false`
/// asks for no reports.
fn delivery_report_base(c: &Config, base_url: &str) -> Result<Option<String>, ConfigError> {
    let base = match c.value("delivery_report_url") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(None),
        Some(Value::Bool(true)) => base_url.to_string(),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.trim().is_empty() => {
            return Ok(None);
        }
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => base_url.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => {
            return Err(ConfigError("config key 'delivery_report_url' must be true, false or a base URL".into()));
        }
    };
    Ok(Some(if base.ends_with('/') { base } else { format!("{base}/") }))
}

/// The `dlr-url` Kannel calls back, carrying the gateway's message id.
fn dlr_url(base: &str, message_id: &str) -> String {
    format!("{base}status/?message_id={}&{DLR_PLACEHOLDERS}", encode(message_id.as_bytes()))
}

/// 7-bit when the GSM alphabet covers the text, else UCS-2 (Kannel converts
/// the UTF-8 text itself when told `coding=2&charset=UTF-8`).
fn coding_for(text: &str) -> &'static str {
    if gsm::is_gsm(text) { "0" } else { "2" }
}

/// Form-encodes raw bytes (the text may be in a charset other than UTF-8).
fn encode(bytes: &[u8]) -> String {
    form_urlencoded::byte_serialize(bytes).collect()
}

/// What Kannel's answer means for the message.
fn outcome(result: Result<http::Response, http::Error>, identities: &[String]) -> Result<Vec<SentIdentity>, SendError> {
    let resp = result?;
    let body = resp.text().trim().to_string();
    match resp.status {
        200..=299 => Ok(SentIdentity::all(identities)),
        429 => Err(SendError::Throttled(Throttled {
            reason: format!("Kannel answered 429: {body}"),
            retry_after_ms: resp.retry_after_ms(),
        })),
        500..=599 => Err(SendError::Retryable(format!("Kannel answered {}: {body}", resp.status))),
        status => Err(SendError::Permanent(format!("Kannel refused the message with {status}: {body}"))),
    }
}

/// The reply Kannel gets: 200 and no body, since Kannel would send any body
/// back to the phone as an SMS.
fn empty_ok() -> HttpResponse {
    HttpResponse::new(200, "text/plain; charset=utf-8", Vec::new())
}

/// One SMS from Kannel's `get-url`.
fn message(req: &HttpRequest) -> Result<Incoming, ParseError> {
    let raw = RawParams::from_query(req);
    let identity = required_text(&raw, "id")?;
    let charset_name = lossy(&raw, "charset");
    let coding = lossy(&raw, "coding");
    let bytes = raw.get("text").ok_or_else(|| ParseError::InvalidRequest("missing parameter 'text'".into()))?;
    let charset = charset::for_incoming(charset_name.as_deref(), coding.as_deref(), bytes);
    if charset_name.as_deref().is_some_and(|c| !c.trim().is_empty() && Charset::from_name(c).is_none()) {
        log::warn(&format!("unknown charset {charset_name:?}; decoding as {charset:?}"));
    }
    let text = charset.decode(bytes).trim().to_string();
    if text.is_empty() {
        return Err(ParseError::InvalidRequest("parameter 'text' is empty".into()));
    }
    let mut message = IncomingMessage::new(identity, text);
    message.fields = other_fields(&raw);
    Ok(Incoming::messages(vec![message]).with_response(empty_ok()))
}

/// A required parameter as trimmed text, or a 400 naming it.
fn required_text(raw: &RawParams, name: &str) -> Result<String, ParseError> {
    match raw.get(name).map(|v| String::from_utf8_lossy(v).trim().to_string()) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(ParseError::InvalidRequest(format!("parameter '{name}' is empty"))),
        None => Err(ParseError::InvalidRequest(format!("missing parameter '{name}'"))),
    }
}

/// An optional parameter as text.
fn lossy(raw: &RawParams, name: &str) -> Option<String> {
    raw.get(name).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Everything but `id` and `text` (charset, coding, smsc, to, ...), first
/// occurrence of each name, so apps can see how the message arrived.
fn other_fields(raw: &RawParams) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (name, value) in raw.pairs() {
        if name != "id" && name != "text" && !fields.iter().any(|(n, _)| n == name) {
            fields.push((name.clone(), String::from_utf8_lossy(value).into_owned()));
        }
    }
    fields
}

/// One delivery report from the `dlr-url` that `send` gave Kannel.
fn report(req: &HttpRequest) -> Result<Incoming, ParseError> {
    let q = Params::from_query(req);
    let message_id = q.required("message_id")?;
    let status = dlr_status(&q.required("status")?)?;
    let nonempty = |name: &str| q.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let detail_parts: Vec<String> =
        [nonempty("status_text"), nonempty("sms_id").map(|id| format!("sms_id {id}"))].into_iter().flatten().collect();
    let report = StatusReport {
        message_id: Some(message_id),
        external_id: None,
        identity: nonempty("identity"),
        status,
        detail: if detail_parts.is_empty() { None } else { Some(detail_parts.join("; ")) },
    };
    Ok(Incoming::reports(vec![report]).with_response(empty_ok()))
}

/// Kannel's DLR type (`%d`) as a delivery status.
fn dlr_status(value: &str) -> Result<DeliveryStatus, ParseError> {
    match value {
        "1" => Ok(DeliveryStatus::Delivered),
        "2" | "16" => Ok(DeliveryStatus::Failed),
        "4" => Ok(DeliveryStatus::Queued),
        "8" => Ok(DeliveryStatus::Sent),
        other => Err(ParseError::InvalidRequest(format!(
            "parameter 'status' is '{other}'; Kannel DLR types are 1, 2, 4, 8 and 16"
        ))),
    }
}

impl Backend for Kannel {
    fn parse_incoming(_ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
        if req.method != "GET" {
            return Err(ParseError::MethodNotAllowed(format!("method {} not allowed; Kannel uses GET", req.method)));
        }
        match Route::of(&req.path)? {
            Route::Message => message(&req),
            Route::Status => report(&req),
        }
    }

    fn send(ctx: BackendContext, msg: OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
        if msg.identities.is_empty() {
            return Ok(Vec::new());
        }
        let url = Settings::read(&ctx)?.url(&msg)?;
        outcome(Request::new("GET", url).send(), &msg.identities)
    }
}

export_backend!(Kannel);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlr_url_keeps_placeholders_for_kannel() {
        let url = dlr_url("http://gw.test/backends/kannel/", "4 2");
        assert_eq!(
            url,
            "http://gw.test/backends/kannel/status/?message_id=4+2&status=%d&smsc=%i&sms_id=%I\
             &date_sent=%t&identity=%p&status_text=%A"
        );
    }

    #[test]
    fn coding_follows_the_gsm_alphabet() {
        assert_eq!(coding_for("Hello €[]"), "0");
        assert_eq!(coding_for("Habari 😀"), "2");
        assert_eq!(coding_for("ça va"), "2");
    }

    #[test]
    fn dlr_types_map_to_statuses() {
        assert!(matches!(dlr_status("1"), Ok(DeliveryStatus::Delivered)));
        assert!(matches!(dlr_status("16"), Ok(DeliveryStatus::Failed)));
        assert!(dlr_status("3").is_err());
    }
}
