//! What a guest writes into the gateway's log: its log lines, stdout and
//! stderr, and the reasons it gives for failing. Each line is tagged with the
//! backend, has secrets redacted and control characters escaped (a guest
//! cannot forge whole gateway log lines), is capped in length, and a backend
//! gets a budget of lines per second; what goes over it is dropped and counted.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tracing::Level;

use crate::secrets::Secrets;

/// Longest guest text kept per line; the rest is cut.
const MAX_LINE: usize = 2048;
/// Lines a backend may log per second, sustained.
const LINES_PER_SECOND: f64 = 100.0;
/// Lines a backend may log in a burst.
const BURST: f64 = 500.0;

/// One backend's guest log: its name, what to redact, and its budget.
pub struct GuestLog {
    backend: String,
    secrets: Secrets,
    budget: Mutex<(f64, Instant)>,
    dropped: AtomicU64,
    /// Dropped lines not yet reported in the log.
    unreported: AtomicU64,
}

impl GuestLog {
    /// The log of `backend`, redacting `secrets`.
    pub fn new(backend: &str, secrets: Secrets) -> Self {
        GuestLog {
            backend: backend.to_string(),
            secrets,
            budget: Mutex::new((BURST, Instant::now())),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
        }
    }

    /// Lines dropped for going over the budget since this version was loaded.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// `text` with secrets redacted and its length capped (kept multi-line:
    /// what fixture runs and dry runs show the author).
    pub fn redact(&self, text: &str) -> String {
        let mut line = self.secrets.redact(text);
        cap(&mut line);
        line
    }

    /// Logs `what` followed by the guest's `text` at `level`, unless the
    /// backend is over its budget; returns the redacted text either way.
    pub fn emit(&self, level: Level, what: &str, text: &str) -> String {
        let redacted = self.redact(text);
        if !self.admit() {
            return redacted;
        }
        let unreported = self.unreported.swap(0, Ordering::Relaxed);
        let backend = self.backend.as_str();
        if unreported > 0 {
            tracing::warn!(backend, "{unreported} guest log line(s) dropped: over {LINES_PER_SECOND} lines/s");
        }
        let line = escape(&redacted);
        match level {
            Level::TRACE => tracing::trace!(target: "smsgw::guest", backend, "{what}{line}"),
            Level::DEBUG => tracing::debug!(target: "smsgw::guest", backend, "{what}{line}"),
            Level::INFO => tracing::info!(target: "smsgw::guest", backend, "{what}{line}"),
            Level::WARN => tracing::warn!(target: "smsgw::guest", backend, "{what}{line}"),
            Level::ERROR => tracing::error!(target: "smsgw::guest", backend, "{what}{line}"),
        }
        redacted
    }

    /// Takes one line from the budget (a token bucket).
    fn admit(&self) -> bool {
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *budget;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * LINES_PER_SECOND).min(BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.unreported.fetch_add(1, Ordering::Relaxed);
            crate::metrics::metrics().call_failure(&self.backend, "log-budget");
            false
        }
    }
}

/// Guest text made into one log line: CR, LF and every other control
/// character escaped, so the text cannot start a line of its own.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}') => {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

fn cap(line: &mut String) {
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_cannot_start_a_line() {
        let forged = "ok\n2026-12-02T00:00:00Z  INFO smsgw: admin token is x\r\u{1b}[31mred\u{2028}";
        let line = escape(forged);
        assert!(!line.contains(['\n', '\r', '\u{1b}', '\u{2028}']), "{line}");
        assert!(line.contains("\\n2026"), "{line}");
    }

    #[test]
    fn over_budget_lines_are_dropped_and_counted() {
        let log = GuestLog::new("b", Secrets::new([("pw".to_string(), "hunter22".to_string())]));
        assert_eq!(log.emit(Level::INFO, "", "pw is hunter22"), "pw is [redacted]");
        for _ in 0..(BURST as usize + 100) {
            log.emit(Level::TRACE, "", "x");
        }
        assert!(log.dropped() >= 99, "dropped {}", log.dropped());
        assert!(log.redact(&"y".repeat(10_000)).len() <= MAX_LINE + 3);
    }
}
