//! Host side of `smsgw:backend/http-client`: the only way a backend reaches the
//! network. Every request is checked against the backend's limits and egress
//! policy, gets its `{{secret:NAME}}` references filled in, and goes out through
//! a [`Transport`]: the real network, or a mock for fixtures and dry runs.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::bindings::http_client::{Error, Host, Request, Response};
use super::sandbox::{BackendShared, HostState};
use crate::limits::Limits;
use crate::secrets::Escape;

/// A request that passed every check, ready for the wire.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub method: reqwest::Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

/// Boxed future returned by [`Transport::send`].
pub type TransportFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + 'a>>;

/// Carries checked requests to a provider.
pub trait Transport: Send + Sync {
    /// Performs one request.
    fn send(&self, request: PreparedRequest) -> TransportFuture<'_>;
}

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

impl Host for HostState {
    async fn fetch(&mut self, req: Request) -> wasmtime::Result<Result<Response, Error>> {
        let result = match self.prepare(req) {
            Ok(prepared) => {
                let transport = self.backend.transport.clone();
                let waited = std::time::Instant::now();
                let result = transport.send(prepared).await;
                // Waiting on the provider is not the guest's CPU time.
                self.host_time += waited.elapsed();
                result
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            self.note_http_error(e);
        }
        Ok(result)
    }
}

impl HostState {
    /// Applies limits, secrets and the egress policy to a guest request.
    fn prepare(&mut self, req: Request) -> Result<PreparedRequest, Error> {
        self.http_calls += 1;
        if self.http_calls > self.limits.http_calls {
            return Err(Error::LimitExceeded(format!("at most {} HTTP requests per call", self.limits.http_calls)));
        }
        prepare(&self.backend, &self.limits, req)
    }

    fn note_http_error(&self, e: &Error) {
        let backend = self.backend.name.as_str();
        let detail = self.backend.secrets.redact(&format!("{e:?}"));
        match e {
            Error::Denied(_) => tracing::warn!(backend, "outbound request denied: {detail}"),
            _ => tracing::debug!(backend, "outbound request failed: {detail}"),
        }
    }
}

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
fn substitute_basic_auth(secrets: &crate::secrets::Secrets, value: &str) -> Result<String, Error> {
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

/// The real network, through one shared reqwest client (connection reuse).
pub struct NetworkTransport {
    client: reqwest::Client,
}

impl NetworkTransport {
    /// A client that never follows redirects: each hop would need its own policy check.
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(crate::egress::PublicResolver))
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("smsgw/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(NetworkTransport { client })
    }
}

impl Transport for NetworkTransport {
    fn send(&self, req: PreparedRequest) -> TransportFuture<'_> {
        Box::pin(async move {
            let mut builder = self.client.request(req.method, req.url).timeout(req.timeout);
            for (name, value) in &req.headers {
                builder = builder.header(name, value);
            }
            let mut response = builder.body(req.body).send().await.map_err(|e| {
                let chain = error_chain(&e);
                if chain.contains(crate::egress::DENIED_BY_POLICY) {
                    Error::Denied(chain)
                } else if e.is_timeout() {
                    Error::Timeout
                } else if e.is_builder() {
                    Error::InvalidRequest(error_chain(&e))
                } else {
                    Error::Transport(error_chain(&e))
                }
            })?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            if response.content_length().is_some_and(|n| n > req.max_response_bytes as u64) {
                return Err(Error::TooLarge(req.max_response_bytes as u64));
            }
            let mut body = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > req.max_response_bytes {
                            return Err(Error::TooLarge(req.max_response_bytes as u64));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) if e.is_timeout() => return Err(Error::Timeout),
                    Err(e) => return Err(Error::Transport(error_chain(&e))),
                }
            }
            Ok(Response { status, headers, body })
        })
    }
}

/// "error: cause: cause" — reqwest's top-level message alone hides the reason.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
