//! Write an smsgw provider backend in plain Rust.
//!
//! Implement [`Backend`] for a unit struct and call [`export_backend!`] once:
//!
//! ```ignore
//! use smsgw_guest::*;
//!
//! struct Echo;
//!
//! impl Backend for Echo {
//!     fn parse_incoming(ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
//!         let q = Params::from_query(&req);
//!         let message = IncomingMessage::new(q.required("from")?, q.required("text")?);
//!         Ok(Incoming::messages(vec![message]))
//!     }
//!     fn send(ctx: BackendContext, msg: OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
//!         Err(SendError::Permanent("this backend cannot send".into()))
//!     }
//! }
//!
//! export_backend!(Echo);
//! ```
//!
//! The component is built with `cargo build --target wasm32-wasip2 --release`.

pub mod config;
pub mod http;
pub mod json;
pub mod log;
pub mod params;

/// Raw wit-bindgen output for the `smsgw:backend/backend` world.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "backend",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_backend_inner",
        default_bindings_module: "smsgw_guest::bindings",
    });
}

pub use bindings::exports::smsgw::backend::adapter::Guest as Backend;
pub use bindings::smsgw::backend::types::{
    BackendContext, DeliveryStatus, FailedIdentity, HttpRequest, HttpResponse, Incoming, IncomingMessage,
    MessageContext, OutgoingMessage, Pairs, ParseError, PartialFailure, SendError, SentIdentity, StatusReport,
    Throttled,
};
pub use config::Config;
pub use params::{Params, RawParams};
pub use serde_json;

/// Exports a type implementing [`Backend`] as this component's adapter.
#[macro_export]
macro_rules! export_backend {
    ($backend:ident) => {
        $crate::bindings::__export_backend_inner!($backend with_types_in $crate::bindings);
    };
}

/// The two routes most providers need below a backend's mount: messages at
/// `/`, delivery reports or status callbacks at `/status/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Message,
    Status,
}

impl Route {
    /// The route `path` names (with or without a trailing slash), or a 404.
    pub fn of(path: &str) -> Result<Route, ParseError> {
        match path.trim_end_matches('/') {
            "" => Ok(Route::Message),
            "/status" => Ok(Route::Status),
            other => Err(ParseError::NotFound(format!("no route '{other}'; use / or /status/"))),
        }
    }
}

impl IncomingMessage {
    /// A message with no external id, timestamp or extra fields.
    pub fn new(identity: impl Into<String>, text: impl Into<String>) -> Self {
        IncomingMessage {
            identity: identity.into(),
            text: text.into(),
            external_id: None,
            received_at: None,
            fields: Vec::new(),
        }
    }
}

impl Incoming {
    /// Messages only, with the host's default reply (200 `OK`).
    pub fn messages(messages: Vec<IncomingMessage>) -> Self {
        Incoming { messages, reports: Vec::new(), response: None }
    }

    /// Status reports only, with the host's default reply.
    pub fn reports(reports: Vec<StatusReport>) -> Self {
        Incoming { messages: Vec::new(), reports, response: None }
    }

    /// Replaces the reply given to the provider.
    pub fn with_response(mut self, response: HttpResponse) -> Self {
        self.response = Some(response);
        self
    }
}

impl HttpResponse {
    /// A response with a body and a `content-type`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse { status, headers: vec![("content-type".into(), content_type.into())], body: body.into() }
    }

    /// A response with no body at all (Kannel turns any body into an SMS).
    pub fn empty(status: u16) -> Self {
        HttpResponse { status, headers: Vec::new(), body: Vec::new() }
    }
}

impl HttpRequest {
    /// The first value of a header; `name` must be lower-case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl SentIdentity {
    /// Every identity sent, without provider ids.
    pub fn all(identities: &[String]) -> Vec<SentIdentity> {
        identities.iter().map(|identity| SentIdentity { identity: identity.clone(), external_id: None }).collect()
    }
}

/// A readable one-line description of a parse error.
pub fn describe_parse_error(e: &ParseError) -> String {
    match e {
        ParseError::InvalidRequest(r) => format!("invalid request: {r}"),
        ParseError::Unauthorized(r) => format!("unauthorized: {r}"),
        ParseError::Forbidden(r) => format!("forbidden: {r}"),
        ParseError::NotFound(r) => format!("not found: {r}"),
        ParseError::MethodNotAllowed(r) => format!("method not allowed: {r}"),
        ParseError::Config(r) => format!("configuration: {r}"),
        ParseError::Other(r) => r.clone(),
    }
}
