//! Host side of `smsgw:backend/http-client`: the only way a backend reaches the
//! network. Each request passes [`request_policy`](super::request_policy)
//! and goes out through the backend's [`Transport`](super::transport::Transport).
//! What comes back is redacted: a provider that echoes the request (or an
//! error that quotes it) cannot hand the guest a filled-in secret.

use super::bindings::http_client::{Error, Host, Request, Response};
use super::host_state::HostState;
use super::request_policy;
use super::transport::{PreparedRequest, RequestTemplate};
use crate::metrics::metrics;
use crate::store::{Exchange, now_ms};

impl Host for HostState {
    async fn fetch(&mut self, req: Request) -> wasmtime::Result<Result<Response, Error>> {
        let result = match self.prepare(req) {
            Ok(prepared) => {
                if let Some(rate) = &self.backend.rate {
                    rate.acquire().await;
                }
                let sensitive = prepared.sensitive.clone();
                let template = self.backend.channel_log.as_ref().map(|_| prepared.template.clone());
                let transport = self.backend.transport.clone();
                let started = std::time::Instant::now();
                let result = transport.send(prepared).await;
                let took = started.elapsed();
                metrics().provider_request(&self.backend.name, took);
                let result = self.redact(result, &sensitive);
                if let Some(template) = template {
                    self.record(template, &result, took);
                }
                result
            }
            Err(e) => self.redact(Err(e), &[]),
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
        request_policy::prepare(&self.backend, &self.limits, req)
    }

    /// Records the exchange as the guest wrote and saw it.
    fn record(&self, template: RequestTemplate, result: &Result<Response, Error>, took: std::time::Duration) {
        let Some(log) = &self.backend.channel_log else { return };
        let (status, response_headers, response_body, outcome) = match result {
            Ok(r) => (Some(r.status), r.headers.clone(), log.body(&r.body), format!("answered {}", r.status)),
            Err(e) => (None, Vec::new(), String::new(), super::guest_log::escape(&format!("{e:?}"))),
        };
        log.record(Exchange {
            backend: self.backend.name.clone(),
            kind: "provider".into(),
            method: template.method,
            url: template.url,
            request_headers: template.headers,
            request_body: log.body(&template.body),
            status,
            response_headers,
            response_body,
            duration_us: took.as_micros() as u64,
            log: Vec::new(),
            outcome,
            message_ids: self.message.into_iter().collect(),
            created_at: now_ms(),
        });
    }

    /// What the guest may see of an exchange: every secret, in every form the
    /// host wrote it in, replaced.
    fn redact(&self, result: Result<Response, Error>, sensitive: &[String]) -> Result<Response, Error> {
        let secrets = &self.backend.secrets;
        if secrets.is_empty() && sensitive.is_empty() {
            return result;
        }
        let text = |s: String| secrets.redact_with(&s, sensitive);
        match result {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: r.headers.into_iter().map(|(n, v)| (n, text(v))).collect(),
                body: secrets.redact_bytes(&r.body, sensitive),
            }),
            Err(Error::Denied(m)) => Err(Error::Denied(text(m))),
            Err(Error::InvalidRequest(m)) => Err(Error::InvalidRequest(text(m))),
            Err(Error::Transport(m)) => Err(Error::Transport(text(m))),
            Err(Error::LimitExceeded(m)) => Err(Error::LimitExceeded(text(m))),
            Err(Error::Other(m)) => Err(Error::Other(text(m))),
            Err(e @ (Error::Timeout | Error::TooLarge(_))) => Err(e),
        }
    }

    /// Denials are worth an operator's attention; other failures are the provider's.
    /// Either way the text is the guest's, so it goes through the guest log.
    fn note_http_error(&self, e: &Error) {
        match e {
            Error::Denied(_) => metrics().egress_denial(&self.backend.name),
            Error::LimitExceeded(_) | Error::TooLarge(_) => metrics().call_failure(&self.backend.name, "http-limit"),
            _ => {}
        }
        let level = if matches!(e, Error::Denied(_)) { tracing::Level::WARN } else { tracing::Level::DEBUG };
        let what =
            if matches!(e, Error::Denied(_)) { "outbound request denied: " } else { "outbound request failed: " };
        self.backend.log.emit(level, what, &format!("{e:?}"));
    }
}
