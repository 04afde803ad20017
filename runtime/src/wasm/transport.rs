//! How checked requests reach a provider: the real network, or (for fixtures,
//! dry runs and benchmarks) anything else implementing [`Transport`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::bindings::http_client::{Error, Response};
use crate::egress::{PolicyDenied, PublicResolver};

/// A request as the guest wrote it, secret references unfilled: what dry runs
/// show and the only form of the request an error may quote.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A request that passed every check, secrets filled in, ready for the wire.
#[derive(Clone)]
pub struct PreparedRequest {
    /// The same request before its secrets were filled in.
    pub template: RequestTemplate,
    pub method: reqwest::Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    /// Filled-in values carrying secret data in a form of their own (a Basic
    /// credential's base64), redacted from whatever comes back.
    pub sensitive: Vec<String>,
}

/// Shows the template only: the filled-in request holds secrets.
impl std::fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRequest").field("template", &self.template).finish_non_exhaustive()
    }
}

/// Boxed future returned by [`Transport::send`].
pub type TransportFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + 'a>>;

/// Carries checked requests to a provider.
pub trait Transport: Send + Sync {
    /// Performs one request.
    fn send(&self, request: PreparedRequest) -> TransportFuture<'_>;
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
            .dns_resolver(std::sync::Arc::new(PublicResolver))
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
                // The URL in reqwest's errors is the filled-in one: never quote it.
                let e = e.without_url();
                if let Some(denied) = find_cause::<PolicyDenied>(&e) {
                    Error::Denied(denied.to_string())
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
                    Err(e) => return Err(Error::Transport(error_chain(&e.without_url()))),
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

/// The first error of type `T` in `e`'s chain of causes.
fn find_cause<'a, T: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}
