//! The host's rules for a request a guest asks to make: size limits, methods
//! and headers it may not use, the egress policy, and where `{{secret:NAME}}`
//! references are filled in.
//!
//! Every check runs on the request as the guest wrote it (the template), and
//! every error quotes only the template: a guest never sees a filled-in secret,
//! not even in an error about its own request. Secrets are filled in last,
//! and may not change where the request goes.

use std::time::Duration;

use super::bindings::http_client::{Error, Request};
use super::host_state::BackendShared;
use super::transport::{PreparedRequest, RequestTemplate};
use crate::egress::Origin;
use crate::limits::Limits;
use crate::secrets::{Escape, Secrets};

/// Headers a guest may not set: they change where or how the request travels,
/// or claim to speak for a proxy or for the gateway's own clients.
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
    "expect",
    "forwarded",
    "via",
    "x-real-ip",
];

/// Header-name prefixes a guest may not use (`x-forwarded-for`, `proxy-…`).
const FORBIDDEN_HEADER_PREFIXES: &[&str] = &["x-forwarded-", "proxy-"];

/// Methods a provider API uses; `CONNECT` and `TRACE` (tunnels, reflection) are not among them.
const ALLOWED_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Checks one request against a backend's limits and egress policy, then fills
/// in its secrets.
pub fn prepare(backend: &BackendShared, limits: &Limits, req: Request) -> Result<PreparedRequest, Error> {
    if req.body.len() > limits.http_request_bytes {
        return Err(Error::LimitExceeded(format!(
            "request body of {} bytes exceeds the limit of {}",
            req.body.len(),
            limits.http_request_bytes
        )));
    }
    let method_name = req.method.to_ascii_uppercase();
    if !ALLOWED_METHODS.contains(&method_name.as_str()) {
        return Err(Error::InvalidRequest(format!(
            "method '{}' is not allowed (allowed: {})",
            req.method,
            ALLOWED_METHODS.join(", ")
        )));
    }
    let method = reqwest::Method::from_bytes(method_name.as_bytes())
        .map_err(|_| Error::InvalidRequest(format!("invalid method '{}'", req.method)))?;
    // The destination is decided by the template alone.
    let template_url = backend.policy.check(&req.url).map_err(|e| Error::Denied(e.to_string()))?;
    let mut headers = Vec::with_capacity(req.headers.len());
    let mut template_headers = Vec::with_capacity(req.headers.len());
    let mut sensitive = Vec::new();
    let mut content_type = String::new();
    let secrets = &backend.secrets;
    for (name, value) in req.headers {
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) || FORBIDDEN_HEADER_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            return Err(Error::InvalidRequest(format!("header '{name}' may not be set by a backend")));
        }
        let filled = if lower == "authorization" {
            substitute_basic_auth(secrets, &value, &mut sensitive)?
        } else {
            secrets.substitute(&value).map_err(Error::InvalidRequest)?
        };
        if reqwest::header::HeaderValue::from_str(&filled).is_err() {
            return Err(Error::InvalidRequest(format!("header '{name}' has a value that is not valid in HTTP")));
        }
        if lower == "content-type" {
            content_type = filled.to_ascii_lowercase();
        }
        template_headers.push((lower.clone(), value));
        headers.push((lower, filled));
    }
    let url = fill_url(secrets, &req.url, &template_url)?;
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
        _ => req.body.clone(),
    };
    let cap = Duration::from_millis(limits.http_timeout_ms);
    let timeout = req.timeout_ms.map(|ms| Duration::from_millis(ms.into()).min(cap)).unwrap_or(cap);
    let template = RequestTemplate { method: method_name, url: req.url, headers: template_headers, body: req.body };
    Ok(PreparedRequest {
        template,
        method,
        url,
        headers,
        body,
        timeout,
        max_response_bytes: limits.http_response_bytes,
        sensitive,
    })
}

/// The URL with its secrets filled in (percent-encoded, so a value cannot add
/// structure), which must still go where the checked template goes.
fn fill_url(secrets: &Secrets, template: &str, checked: &url::Url) -> Result<url::Url, Error> {
    let filled = secrets.substitute_in(template, Escape::Url).map_err(Error::InvalidRequest)?;
    if filled == template {
        return Ok(checked.clone());
    }
    let refused = || Error::Denied("a secret may not change where a request goes".into());
    let url = url::Url::parse(&filled).map_err(|_| refused())?;
    let same_place = matches!((Origin::of(&url), Origin::of(checked)), (Ok(a), Ok(b)) if a == b);
    if !same_place || !url.username().is_empty() || url.password().is_some() {
        return Err(refused());
    }
    Ok(url)
}

/// Fills secrets into an `Authorization` value; in `Basic` credentials the
/// reference sits inside base64, so it is decoded, filled in and re-encoded
/// (the new token is noted as sensitive: it is a secret in a form of its own).
fn substitute_basic_auth(secrets: &Secrets, value: &str, sensitive: &mut Vec<String>) -> Result<String, Error> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(token) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))
        && let Ok(decoded) = b64.decode(token.trim())
        && let Ok(text) = String::from_utf8(decoded)
        && text.contains("{{secret:")
    {
        let filled = secrets.substitute(&text).map_err(Error::InvalidRequest)?;
        let token = b64.encode(filled);
        sensitive.push(token.clone());
        return Ok(format!("Basic {token}"));
    }
    let filled = secrets.substitute(value).map_err(Error::InvalidRequest)?;
    if filled != value {
        sensitive.push(filled.clone());
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::authoring::fixtures::mock::MockTransport;
    use crate::egress::EgressPolicy;
    use crate::wasm::guest_log::GuestLog;

    const SECRET: &str = "pa ss&w\"rd";

    fn backend() -> BackendShared {
        let secrets = Secrets::new([("pw".to_string(), SECRET.to_string())]);
        BackendShared {
            name: "b".into(),
            policy: EgressPolicy::new(&["https://api.example.com".to_string()]).unwrap(),
            log: GuestLog::new("b", secrets.clone()),
            secrets,
            transport: Arc::new(MockTransport::new(Vec::new())),
            rate: None,
            channel_log: None,
            metrics: crate::metrics::metrics().for_backend("b"),
        }
    }

    fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            url: url.into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: Vec::new(),
            timeout_ms: None,
        }
    }

    fn refused(r: Request) -> String {
        match prepare(&backend(), &Limits::default(), r) {
            Err(Error::InvalidRequest(m) | Error::Denied(m)) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn forwarding_and_proxy_headers_and_odd_methods_are_refused() {
        let url = "https://api.example.com/send";
        for header in ["Via", "X-Real-IP", "Forwarded", "X-Forwarded-Proto", "Proxy-Anything", "Host", "Expect"] {
            assert!(refused(request("GET", url, &[(header, "x")])).contains("may not be set"), "{header}");
        }
        for method in ["CONNECT", "TRACE", "PROPFIND"] {
            assert!(refused(request(method, url, &[])).contains("is not allowed"), "{method}");
        }
        assert!(prepare(&backend(), &Limits::default(), request("patch", url, &[("X-Custom", "1")])).is_ok());
    }

    #[test]
    fn errors_quote_the_template_never_the_secret() {
        let cases = [
            request("GET", "https://api.example.com:99999/?pw={{secret:pw}}", &[]),
            request("GET", "https://user:{{secret:pw}}@api.example.com/", &[]),
            request("GET", "https://{{secret:pw}}.example.com/", &[]),
            request("GET", "https://api.example.com/", &[("X-Token", "{{secret:pw}}\r\nX-Evil: 1")]),
            request("GET", "https://api.example.com/", &[("Authorization", "Bearer {{secret:nope}}")]),
        ];
        for r in cases {
            let reason = refused(r);
            assert!(!reason.contains("pa ss") && !reason.contains("pa+ss") && !reason.contains("pa%20ss"), "{reason}");
        }
        let ok =
            prepare(&backend(), &Limits::default(), request("GET", "https://api.example.com/?pw={{secret:pw}}", &[]))
                .unwrap();
        assert!(ok.url.as_str().contains("pa+ss%26w%22rd"), "filled for the wire: {}", ok.url);
        assert!(ok.template.url.contains("{{secret:pw}}"), "the template keeps the reference");
        assert!(!format!("{ok:?}").contains("pa+ss"), "Debug shows the template only");
    }
}
