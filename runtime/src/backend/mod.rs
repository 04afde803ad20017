//! A backend is one provider adapter mounted under a name. [`MountedBackend`]
//! is one version of it serving traffic: every call to it goes through here,
//! so the circuit breaker, the counters, the checks on what the component
//! returns and the redaction of its errors are applied the same way for
//! inbound requests, outbound sends and anything added later.

pub mod breaker;
pub mod builtin;
pub mod checks;
pub mod contract;
pub mod registry;
pub mod settings;
pub mod stats;

pub use registry::Registry;

use std::time::Duration;

use wasmtime::component::Component;

use self::breaker::Breaker;
use self::checks::Refusal;
use self::contract::ParsedRequest;
use self::stats::CallStats;
use crate::config::BackendConfig;
use crate::store::Millis;
use crate::wasm::bindings::types::{HttpRequest, OutgoingMessage, ParseError, SendError, SentIdentity};
use crate::wasm::{CallError, CallOutput, Sandbox};

/// A backend version serving traffic.
pub struct MountedBackend {
    pub name: String,
    /// Where the component came from (`builtin:http`, a path, `upload`).
    pub source: String,
    pub sha256: String,
    pub size: usize,
    /// Uploaded version number; `None` for backends from the config file.
    pub version: Option<i64>,
    /// How long compiling (or loading from the cache) took.
    pub load_time: Duration,
    pub config: BackendConfig,
    sandbox: Sandbox,
    /// Kept to build sandboxes with another transport (dry runs).
    component: Component,
    stats: CallStats,
    breaker: Breaker,
}

/// Why an inbound request produced nothing to store. Each maps to one answer
/// to the provider; the details are in the gateway log.
#[derive(Debug)]
pub enum InboundFailure {
    /// The circuit breaker paused the backend until then.
    Paused(Millis),
    /// No instance slot came free in time.
    Busy,
    /// The backend refused the request (a 4xx with its reason).
    Rejected { status: u16, reason: String },
    /// The backend says its configuration is wrong.
    Misconfigured,
    /// The backend failed: an error, a trap, a timeout or an exhausted limit.
    Failed,
    /// The backend returned something outside its limits or not valid HTTP.
    InvalidResult,
}

impl MountedBackend {
    /// A freshly loaded version, closed breaker and zero counters.
    pub(crate) fn new(
        config: BackendConfig,
        sandbox: Sandbox,
        component: Component,
        compiled: (String, usize, Duration),
    ) -> Self {
        let (sha256, size, load_time) = compiled;
        let breaker = Breaker::new(sandbox.limits().breaker_failures, sandbox.limits().breaker_cooldown_ms);
        MountedBackend {
            name: config.name.clone(),
            source: config.component.clone(),
            sha256,
            size,
            version: None,
            load_time,
            config,
            sandbox,
            component,
            stats: CallStats::default(),
            breaker,
        }
    }

    /// The sandbox calls run in (limits, secrets, transport).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The compiled component, for sandboxes with another transport.
    pub fn component(&self) -> &Component {
        &self.component
    }

    /// Call counters for the admin API.
    pub fn stats(&self) -> &CallStats {
        &self.stats
    }

    /// When the circuit breaker's pause ends, if the backend is paused now.
    pub fn paused_until(&self) -> Option<Millis> {
        self.breaker.open_until()
    }

    /// Runs `parse-incoming` on a provider request and checks what comes
    /// back; also returns what the backend logged.
    pub async fn parse_incoming(&self, request: &HttpRequest) -> (Result<ParsedRequest, InboundFailure>, Vec<String>) {
        if let Some(until) = self.paused_until() {
            return (Err(InboundFailure::Paused(until)), Vec::new());
        }
        let mut output = self.sandbox.parse_incoming(request).await;
        let log = std::mem::take(&mut output.log);
        (self.check_parsed(output), log)
    }

    fn check_parsed(
        &self,
        output: CallOutput<Result<crate::wasm::bindings::types::Incoming, ParseError>>,
    ) -> Result<ParsedRequest, InboundFailure> {
        self.note_outcome(&output.result);
        self.stats.inbound(matches!(output.result, Ok(Ok(_))));
        let mut incoming = match output.result {
            Ok(Ok(incoming)) => incoming,
            Ok(Err(e)) => return Err(self.parse_failure(e)),
            Err(CallError::Busy(_)) => return Err(InboundFailure::Busy),
            Err(_) => return Err(InboundFailure::Failed),
        };
        match checks::check_incoming(&incoming, self.sandbox.limits()) {
            Ok(()) => {}
            Err(Refusal::Broken(reason)) => {
                self.sandbox.guest_log().emit(tracing::Level::WARN, "backend returned an invalid result: ", &reason);
                return Err(InboundFailure::InvalidResult);
            }
            Err(Refusal::TooLarge(reason)) => return Err(InboundFailure::Rejected { status: 413, reason }),
            Err(Refusal::Unprocessable(reason)) => return Err(InboundFailure::Rejected { status: 422, reason }),
        }
        if let Some(response) = &mut incoming.response {
            response.headers.retain(|(name, _)| !checks::is_framing_header(name));
        }
        Ok(ParsedRequest::from(incoming))
    }

    fn parse_failure(&self, e: ParseError) -> InboundFailure {
        let log = self.sandbox.guest_log();
        match e {
            ParseError::Config(r) => {
                log.emit(tracing::Level::ERROR, "backend configuration error: ", &r);
                InboundFailure::Misconfigured
            }
            ParseError::Other(r) => {
                log.emit(tracing::Level::WARN, "backend error: ", &r);
                InboundFailure::Failed
            }
            rejected => {
                let status = contract::parse_error_status(&rejected);
                let reason = self.sandbox.secrets().redact(contract::parse_error_parts(&rejected).1);
                InboundFailure::Rejected { status, reason }
            }
        }
    }

    /// Runs `send`; every reason in the outcome has the backend's secrets redacted.
    pub async fn send(&self, message: OutgoingMessage) -> CallOutput<Result<Vec<SentIdentity>, SendError>> {
        let mut output = self.sandbox.send(message).await;
        self.note_outcome(&output.result);
        self.stats.send(matches!(output.result, Ok(Ok(_))));
        let secrets = self.sandbox.secrets();
        if let Ok(Err(e)) = output.result {
            output.result = Ok(Err(contract::map_send_error_reasons(e, |r| secrets.redact(r))));
        }
        output
    }

    /// Feeds a call's outcome to the circuit breaker. Only the component's own
    /// failures count: a busy pool or a refused request does not.
    fn note_outcome<T>(&self, result: &Result<T, CallError>) {
        let failed = matches!(result, Err(e) if !e.is_busy());
        if self.breaker.record(failed) {
            tracing::warn!(backend = self.name.as_str(), "backend paused after repeated failures");
        }
    }
}
