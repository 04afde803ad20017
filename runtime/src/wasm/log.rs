//! Host side of `smsgw:backend/log`: guest lines go into the gateway's log
//! through the backend's [`GuestLog`](super::guest_log::GuestLog) (tagged,
//! redacted, escaped, within a budget).

use super::bindings::log::{Host, Level};
use super::host_state::HostState;

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > self.limits.http_calls.saturating_mul(8).max(64) {
            return Ok(()); // over the per-call budget: drop silently rather than trap the call
        }
        let tracing_level = match level {
            Level::Trace => tracing::Level::TRACE,
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        };
        let line = self.backend.log.emit(tracing_level, "", &message);
        self.captured_log.push(format!("{level:?}: {line}"));
        Ok(())
    }
}

/// `smsgw:backend/types` has only types; its generated host trait is empty.
impl super::bindings::types::Host for HostState {}
