//! Host side of `smsgw:backend/log`: guest lines go into the gateway's log,
//! tagged with the backend's name, with secrets redacted and length capped.

use super::bindings::log::{Host, Level};
use super::host_state::HostState;

/// Longest guest log line kept; the rest is cut so a guest cannot flood the log.
const MAX_LINE: usize = 2048;

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > self.limits.http_calls.saturating_mul(8).max(64) {
            return Ok(()); // over budget: drop silently rather than trap the call
        }
        let mut line = self.backend.secrets.redact(&message);
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        let backend = self.backend.name.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "smsgw::guest", backend, "{line}"),
            Level::Debug => tracing::debug!(target: "smsgw::guest", backend, "{line}"),
            Level::Info => tracing::info!(target: "smsgw::guest", backend, "{line}"),
            Level::Warn => tracing::warn!(target: "smsgw::guest", backend, "{line}"),
            Level::Error => tracing::error!(target: "smsgw::guest", backend, "{line}"),
        }
        self.captured_log.push(format!("{level:?}: {line}"));
        Ok(())
    }
}

/// `smsgw:backend/types` has only types; its generated host trait is empty.
impl super::bindings::types::Host for HostState {}
