//! Host side of `smsgw:backend/http-client`: the only way a backend reaches the
//! network. Each request passes [`request_policy`](super::request_policy)
//! and goes out through the backend's [`Transport`](super::transport::Transport).

use super::bindings::http_client::{Error, Host, Request, Response};
use super::host_state::HostState;
use super::request_policy;
use super::transport::PreparedRequest;

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
        request_policy::prepare(&self.backend, &self.limits, req)
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
