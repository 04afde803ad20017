//! The host's rules for a request a guest asks to make: size limits,
//! headers it may not set, the egress policy, and where `{{secret:NAME}}`
//! references are filled in.

use std::time::Duration;

use super::bindings::http_client::{Error, Request};
use super::host_state::BackendShared;
use super::transport::PreparedRequest;
use crate::limits::Limits;
use crate::secrets::{Escape, Secrets};

/// Headers a guest may not set: they change where or how the request travels.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
];

/// Checks one request against a backend's size limits and egress policy and
/// fills in its secrets.
pub fn prepare(backend: &BackendShared, limits: &Limits, req: Request) -> Result<PreparedRequest, Error> {
    if req.body.len() > limits.http_request_bytes {
        return Err(Error::LimitExceeded(format!(
            "request body of {} bytes exceeds the limit of {}",
            req.body.len(),
            limits.http_request_bytes
        )));
    }
    let secrets = &backend.secrets;
    let url = secrets.substitute_in(&req.url, Escape::Url).map_err(Error::InvalidRequest)?;
    let url = backend.policy.check(&url).map_err(|e| Error::Denied(e.to_string()))?;
    let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::InvalidRequest(format!("invalid method '{}'", req.method)))?;
    let mut headers = Vec::with_capacity(req.headers.len());
    let mut content_type = String::new();
    for (name, value) in req.headers {
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
            return Err(Error::InvalidRequest(format!("header '{name}' may not be set by a backend")));
        }
        let value = if lower == "authorization" {
            substitute_basic_auth(secrets, &value)?
        } else {
            secrets.substitute(&value).map_err(Error::InvalidRequest)?
        };
        if lower == "content-type" {
            content_type = value.to_ascii_lowercase();
        }
        headers.push((lower, value));
    }
    let body = match std::str::from_utf8(&req.body) {
        Ok(text) if !secrets.is_empty() => {
            let escape = if content_type.contains("json") {
                Escape::Json
            } else if content_type.starts_with("application/x-www-form-urlencoded") {
                Escape::Url
            } else {
                Escape::None
            };
            secrets.substitute_in(text, escape).map_err(Error::InvalidRequest)?.into_bytes()
        }
        _ => req.body,
    };
    let cap = Duration::from_millis(limits.http_timeout_ms);
    let timeout = req.timeout_ms.map(|ms| Duration::from_millis(ms.into()).min(cap)).unwrap_or(cap);
    Ok(PreparedRequest { method, url, headers, body, timeout, max_response_bytes: limits.http_response_bytes })
}

/// Fills secrets into an `Authorization` value; in `Basic` credentials the
/// reference sits inside base64, so it is decoded, filled in and re-encoded.
fn substitute_basic_auth(secrets: &Secrets, value: &str) -> Result<String, Error> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(token) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))
        && let Ok(decoded) = b64.decode(token.trim())
        && let Ok(text) = String::from_utf8(decoded)
        && text.contains("{{secret:")
    {
        let filled = secrets.substitute(&text).map_err(Error::InvalidRequest)?;
        return Ok(format!("Basic {}", b64.encode(filled)));
    }
    secrets.substitute(value).map_err(Error::InvalidRequest)
}
