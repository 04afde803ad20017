//! Resource limits for backend calls, global defaults overridable per backend.

use serde::{Deserialize, Serialize};

/// Largest linear memory any backend may be given: the size of one slot in
/// the instance pool, so a limit above it could never be honoured.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

/// What one backend invocation may use. Defaults suit a Python component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory per instance.
    pub memory_bytes: usize,
    /// CPU time the guest may spend running per call (epoch deadline).
    pub cpu_ms: u64,
    /// Wall-clock time per call, host calls included.
    pub wall_ms: u64,
    /// Host HTTP requests per call.
    pub http_calls: u32,
    /// Timeout of one host HTTP request.
    pub http_timeout_ms: u64,
    /// Largest outbound request body the guest may send.
    pub http_request_bytes: usize,
    /// Largest provider response body handed back to the guest.
    pub http_response_bytes: usize,
    /// Bytes copied from guest to host per host call.
    pub hostcall_bytes: usize,
    /// Messages plus reports one `parse-incoming` may return.
    pub max_messages: usize,
    /// Longest message text accepted from a backend, in bytes.
    pub max_text_bytes: usize,
    /// Instances of this backend running at once.
    pub concurrency: usize,
    /// How long a call waits for a free instance slot before a 503.
    pub queue_ms: u64,
    /// Consecutive failed calls (traps, timeouts) that pause the backend.
    pub breaker_failures: u32,
    /// How long a paused backend stays paused (a redeploy resumes it at once).
    pub breaker_cooldown_ms: u64,
    /// Provider requests per second, on average (0: no limit).
    pub rate_per_second: u32,
    /// Provider requests that may go out at once within the rate.
    pub rate_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_ms: 1_000,
            wall_ms: 30_000,
            http_calls: 16,
            http_timeout_ms: 10_000,
            http_request_bytes: 1 << 20,
            http_response_bytes: 1 << 20,
            hostcall_bytes: 4 << 20,
            max_messages: 1_000,
            max_text_bytes: 64 * 1024,
            concurrency: 32,
            queue_ms: 2_000,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            rate_per_second: 0,
            rate_burst: 1,
        }
    }
}

impl Limits {
    /// These limits with `overrides` (a TOML table of the same keys) applied.
    pub fn with_overrides(&self, overrides: Option<&toml::Table>) -> anyhow::Result<Limits> {
        let Some(overrides) = overrides else {
            return Ok(self.clone());
        };
        let mut merged = toml::Table::try_from(self)?;
        for (k, v) in overrides {
            if !merged.contains_key(k) {
                anyhow::bail!("unknown limit '{k}'");
            }
            merged.insert(k.clone(), v.clone());
        }
        let limits: Limits = merged.try_into().map_err(|e| anyhow::anyhow!("invalid limits: {e}"))?;
        limits.validate()?;
        Ok(limits)
    }

    /// Rejects zero values that would make a backend unusable.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.memory_bytes < (1 << 20) || self.memory_bytes > MAX_MEMORY_BYTES {
            anyhow::bail!("limit memory_bytes must be between 1 MiB and {} MiB", MAX_MEMORY_BYTES >> 20);
        }
        for (name, v) in [("cpu_ms", self.cpu_ms), ("wall_ms", self.wall_ms), ("http_timeout_ms", self.http_timeout_ms)]
        {
            if v == 0 {
                anyhow::bail!("limit {name} must be above 0");
            }
        }
        if self.breaker_failures == 0 {
            anyhow::bail!("limit breaker_failures must be above 0");
        }
        if self.concurrency == 0 {
            anyhow::bail!("limit concurrency must be above 0");
        }
        Ok(())
    }
}
