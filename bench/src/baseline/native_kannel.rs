//! Kannel done by native Rust instead of the component: the baselines the
//! Wasm path is measured against (`--baseline-routes`, `--native-send`). It
//! mirrors what `backends/kannel` does for the benchmark's requests (UTF-8,
//! no delivery reports), through the same store, limits, egress policy and
//! HTTP transport, so the difference between the two is the Wasm tax.

use smsgw::store::NewInbound;
use smsgw::wasm::Sandbox;
use smsgw::wasm::bindings::http_client::{Error as HttpError, Request};
use smsgw::wasm::bindings::types::{OutgoingMessage, SendError, SentIdentity, Throttled};
use smsgw::wasm::request_policy::prepare;

const DEFAULT_SENDSMS_URL: &str = "http://127.0.0.1:13013/cgi-bin/sendsms";

/// Parameters the message itself sets; configured ones by these names are ignored.
const OWN_PARAMS: &[&str] = &["to", "text", "charset", "coding"];

/// Parses Kannel's MO `get-url` query like the component does, or names what is missing.
pub fn parse_mo(query: &str) -> Result<NewInbound, String> {
    let sender = raw_param(query, "id").map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let Some(identity) = sender.filter(|s| !s.is_empty()) else {
        return Err("missing parameter 'id'".into());
    };
    let Some(raw) = raw_param(query, "text") else {
        return Err("missing parameter 'text'".into());
    };
    let charset = raw_param(query, "charset");
    let coding = raw_param(query, "coding");
    let text = decode_text(&raw, charset.as_deref(), coding.as_deref()).trim().to_string();
    Ok(NewInbound { identity, text, external_id: None, received_at: None, fields: Vec::new(), decided: None })
}

/// Keeps this thread busy for `duration`: the benchmarks' calibration, a
/// native path made to cost as much CPU per message as a sandbox call.
pub fn burn_cpu(duration: std::time::Duration) {
    let started = std::time::Instant::now();
    while started.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Sends `message` to the sendsms URL of `sandbox`'s configuration.
pub async fn send(sandbox: &Sandbox, message: &OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
    if message.identities.is_empty() {
        return Ok(Vec::new());
    }
    let config: serde_json::Value =
        serde_json::from_str(sandbox.config_json()).map_err(|e| SendError::Config(e.to_string()))?;
    let url = sendsms_url(&config, message);
    let request = Request { method: "GET".into(), url, headers: Vec::new(), body: Vec::new(), timeout_ms: None };
    let prepared = prepare(sandbox.shared(), sandbox.limits(), request).map_err(http_error)?;
    let response = sandbox.shared().transport.send(prepared).await.map_err(http_error)?;
    let body = String::from_utf8_lossy(&response.body).trim().to_string();
    match response.status {
        200..=299 => {
            Ok(message.identities.iter().map(|i| SentIdentity { identity: i.clone(), external_id: None }).collect())
        }
        429 => Err(SendError::Throttled(Throttled {
            reason: format!("Kannel answered 429: {body}"),
            retry_after_ms: None,
        })),
        500..=599 => Err(SendError::Retryable(format!("Kannel answered {}: {body}", response.status))),
        status => Err(SendError::Permanent(format!("Kannel refused the message with {status}: {body}"))),
    }
}

/// The sendsms URL: configured parameters, then the message's own.
fn sendsms_url(config: &serde_json::Value, message: &OutgoingMessage) -> String {
    let base = config.get("sendsms_url").and_then(|v| v.as_str()).unwrap_or(DEFAULT_SENDSMS_URL);
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(params) = config.get("sendsms_params").and_then(|v| v.as_object()) {
        for (name, value) in params.iter().filter(|(k, _)| !OWN_PARAMS.contains(&k.as_str())) {
            query.append_pair(name, value.as_str().unwrap_or_default());
        }
    }
    let coding = if message.text.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) { "0" } else { "2" };
    query
        .append_pair("to", &message.identities.join(" "))
        .append_pair("text", &message.text)
        .append_pair("coding", coding)
        .append_pair("charset", "UTF-8");
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{}", query.finish())
}

fn http_error(e: HttpError) -> SendError {
    match e {
        HttpError::Denied(reason) => SendError::Config(reason),
        other => SendError::Retryable(format!("{other:?}")),
    }
}

/// The raw, percent-decoded bytes of the first `name` parameter.
fn raw_param(query: &str, name: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_encoding::percent_decode(v.replace('+', " ").as_bytes()).collect())
    })
}

/// Kannel's text decoded by `charset`/`coding`, as the component does it.
fn decode_text(bytes: &[u8], charset: Option<&[u8]>, coding: Option<&[u8]>) -> String {
    let charset = charset.map(|c| String::from_utf8_lossy(c).to_ascii_uppercase().replace(['-', '_'], ""));
    let utf16 = charset.as_deref() == Some("UTF16BE") || (charset.is_none() && coding == Some(b"2"));
    let latin1 = matches!(charset.as_deref(), Some("8BIT" | "ISO88591")) || (charset.is_none() && coding == Some(b"1"));
    if utf16 {
        let units: Vec<u16> = bytes.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
        String::from_utf16_lossy(&units)
    } else if latin1 {
        bytes.iter().map(|b| char::from(*b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mo_parsing_matches_the_component_on_the_benchmark_shape() {
        let m = parse_mo("id=%2B255700000001&text=hello+w%C3%B6rld+&charset=UTF-8&coding=0").unwrap();
        assert_eq!((m.identity.as_str(), m.text.as_str()), ("+255700000001", "hello wörld"));
        let m = parse_mo("id=1&text=%00h%00i&charset=UTF-16BE&coding=2").unwrap();
        assert_eq!(m.text, "hi");
        assert_eq!(parse_mo("text=x").unwrap_err(), "missing parameter 'id'");
        assert_eq!(parse_mo("id=1").unwrap_err(), "missing parameter 'text'");
    }
}
