//! Calling the provider through the host's policed HTTP client.

use crate::bindings::smsgw::backend::http_client::fetch;
pub use crate::bindings::smsgw::backend::http_client::{Error, Request, Response};
use crate::{Params, SendError};

impl Request {
    /// A request with no headers or body.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request { method: method.into(), url: url.into(), headers: Vec::new(), body: Vec::new(), timeout_ms: None }
    }

    /// A GET with `params` appended to `url`'s query.
    pub fn get(url: &str, params: &Params) -> Self {
        let encoded = params.encode();
        let url = match (encoded.is_empty(), url.contains('?')) {
            (true, _) => url.to_string(),
            (false, true) => format!("{url}&{encoded}"),
            (false, false) => format!("{url}?{encoded}"),
        };
        Self::new("GET", url)
    }

    /// A POST of `params` as an urlencoded form.
    pub fn post_form(url: &str, params: &Params) -> Self {
        Self::new("POST", url).header("content-type", "application/x-www-form-urlencoded").body(params.encode())
    }

    /// A POST of a JSON document.
    pub fn post_json(url: &str, json: &serde_json::Value) -> Self {
        Self::new("POST", url).header("content-type", "application/json").body(json.to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// HTTP Basic credentials. Pass `{{secret:NAME}}` as the password to have the
    /// host fill in the secret without the backend seeing it.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let token = base64_encode(format!("{user}:{password}").as_bytes());
        self.header("authorization", &format!("Basic {token}"))
    }

    /// Sends the request.
    pub fn send(self) -> Result<Response, Error> {
        fetch(&self)
    }
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header; `name` must be lower-case (the host
    /// lower-cases response header names).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// `Retry-After` in milliseconds when given in seconds, for
    /// [`crate::Throttled::retry_after_ms`]; an HTTP-date is ignored.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.header("retry-after")?.trim().parse::<u64>().ok().map(|secs| secs.saturating_mul(1000))
    }
}

/// A readable one-line description of a host HTTP error.
pub fn describe(e: &Error) -> String {
    match e {
        Error::Denied(r) => format!("denied by the gateway: {r}"),
        Error::Timeout => "timed out".to_string(),
        Error::TooLarge(n) => format!("response larger than {n} bytes"),
        Error::InvalidRequest(r) => format!("invalid request: {r}"),
        Error::Transport(r) => format!("transport error: {r}"),
        Error::LimitExceeded(r) => format!("limit exceeded: {r}"),
        Error::Other(r) => r.clone(),
    }
}

impl From<Error> for SendError {
    /// Denials and malformed requests will not fix themselves; the rest may.
    fn from(e: Error) -> Self {
        match e {
            Error::Denied(_) | Error::InvalidRequest(_) => SendError::Config(describe(&e)),
            _ => SendError::Retryable(describe(&e)),
        }
    }
}

/// Standard base64 with padding (no dependency needed for Basic auth).
pub fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64_encode;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")];
        for (input, expected) in cases {
            assert_eq!(base64_encode(input.as_bytes()), expected);
        }
    }
}
