//! What one send attempt achieved, per identity, and when to try again:
//! the queue's retry policy applied to a backend's answer.

use rand::Rng;

use crate::config::OutboundConfig;
use crate::store::{AttemptResult, ClaimedSend, Millis, now_ms};
use crate::wasm::CallError;
use crate::wasm::bindings::types::{SendError, SentIdentity};

/// The retry policy of the outbound queue.
pub struct RetryPolicy {
    config: OutboundConfig,
}

impl RetryPolicy {
    /// The policy configured in `[outbound]`.
    pub fn new(config: OutboundConfig) -> Self {
        RetryPolicy { config }
    }

    /// Turns a backend's answer into per-identity outcomes.
    pub fn interpret(
        &self,
        job: &ClaimedSend,
        outcome: Result<Result<Vec<SentIdentity>, SendError>, CallError>,
    ) -> AttemptResult {
        let all = || job.identities.clone();
        let mut result = AttemptResult::default();
        let retry_all = |mut result: AttemptResult, error: String, after: Option<Millis>| {
            result.retry = all();
            result.retry_at = self.retry_at(job, after);
            result.error = Some(error);
            result
        };
        match outcome {
            Err(e) => retry_all(result, e.to_string(), None),
            Ok(Ok(sent)) => {
                for identity in &job.identities {
                    let external_id = sent.iter().find(|s| &s.identity == identity).and_then(|s| s.external_id.clone());
                    result.sent.push((identity.clone(), external_id));
                }
                result
            }
            Ok(Err(SendError::Permanent(reason))) => {
                result.failed = all().into_iter().map(|i| (i, reason.clone())).collect();
                result.error = Some(reason);
                result
            }
            Ok(Err(SendError::Config(reason))) => {
                let reason = format!("backend configuration: {reason}");
                result.failed = all().into_iter().map(|i| (i, reason.clone())).collect();
                result.error = Some(reason);
                result
            }
            Ok(Err(SendError::Retryable(reason) | SendError::Other(reason))) => retry_all(result, reason, None),
            Ok(Err(SendError::Throttled(t))) => {
                // The provider asked us to slow down: not a failed attempt.
                result.throttled = true;
                let after = t.retry_after_ms.map(|ms| ms.min(i64::MAX as u64) as i64);
                retry_all(result, format!("throttled: {}", t.reason), after)
            }
            Ok(Err(SendError::FailedIdentities(partial))) => {
                let mut errors = Vec::new();
                for identity in &job.identities {
                    if let Some(f) = partial.failed.iter().find(|f| &f.identity == identity) {
                        errors.push(format!("{}: {}", f.identity, f.reason));
                        if f.retryable {
                            result.retry.push(identity.clone());
                        } else {
                            result.failed.push((identity.clone(), f.reason.clone()));
                        }
                    } else {
                        // Not reported as failed: the provider took it (RapidSMS semantics).
                        let external_id =
                            partial.sent.iter().find(|s| &s.identity == identity).and_then(|s| s.external_id.clone());
                        result.sent.push((identity.clone(), external_id));
                    }
                }
                result.retry_at = if result.retry.is_empty() { None } else { self.retry_at(job, None) };
                result.error = Some(errors.join("; "));
                result
            }
        }
    }

    /// When to try `job` again (a provider's `after_ms` wins, up to
    /// `retry_max_ms`), or `None` to give up: after `retry_for_ms` since it was
    /// queued, or when `max_attempts` is set and used up. The last try is made
    /// at the deadline itself rather than skipped.
    pub fn retry_at(&self, job: &ClaimedSend, after_ms: Option<Millis>) -> Option<Millis> {
        let counted = after_ms.is_none();
        if counted && self.config.max_attempts.is_some_and(|max| job.attempts + 1 >= max) {
            return None;
        }
        let now = now_ms();
        let deadline = job.created_at.saturating_add(self.config.retry_for_ms.min(i64::MAX as u64) as i64);
        if now >= deadline {
            return None;
        }
        let delay = match after_ms {
            Some(ms) => (ms.max(0) as u64).min(self.config.retry_max_ms),
            None => backoff(job.attempts, self.config.retry_base_ms, self.config.retry_max_ms),
        };
        Some(now.saturating_add(delay.min(i64::MAX as u64) as i64).min(deadline))
    }
}

/// Exponential backoff with "equal jitter": half fixed, half random, so
/// retries of many messages spread out instead of arriving together.
pub fn backoff(attempts: u32, base_ms: u64, max_ms: u64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempts.min(30)).min(max_ms);
    let half = exp / 2;
    half + rand::rng().random_range(0..=half.max(1)).min(exp - half)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(attempts: u32, age_ms: i64) -> ClaimedSend {
        ClaimedSend {
            id: 1,
            backend: "b".into(),
            text: String::new(),
            identities: vec!["1".into()],
            in_response_to: None,
            reply_to_external_id: None,
            context: Default::default(),
            attempts,
            created_at: now_ms() - age_ms,
        }
    }

    #[test]
    fn a_huge_retry_after_is_clamped_not_wrapped() {
        let policy = RetryPolicy::new(OutboundConfig { retry_max_ms: 60_000, ..OutboundConfig::default() });
        for after in [i64::MAX, i64::MAX - 1, 1 << 62] {
            let at = policy.retry_at(&job(0, 0), Some(after)).unwrap();
            let delay = at - now_ms();
            assert!((59_000..=60_000).contains(&delay), "Retry-After {after} gave a delay of {delay} ms");
        }
        let soon = policy.retry_at(&job(0, 0), Some(-5)).unwrap();
        assert!(soon - now_ms() <= 5, "a negative Retry-After means now");
    }

    #[test]
    fn the_budget_is_time_and_throttling_is_not_an_attempt() {
        let config = OutboundConfig { retry_for_ms: 3_600_000, max_attempts: Some(5), ..OutboundConfig::default() };
        let policy = RetryPolicy::new(config);
        assert!(policy.retry_at(&job(2, 60_000), None).is_some(), "within the hour");
        assert!(policy.retry_at(&job(2, 3_600_001), None).is_none(), "the hour is up");
        assert!(policy.retry_at(&job(4, 0), None).is_none(), "max_attempts, when set, still caps");
        assert!(policy.retry_at(&job(4, 0), Some(1000)).is_some(), "a throttled answer is not an attempt");
        let hour = RetryPolicy::new(OutboundConfig { retry_for_ms: 3_600_000, ..OutboundConfig::default() });
        let last = hour.retry_at(&job(20, 3_599_000), None).unwrap();
        assert!(last <= now_ms() + 1000, "the last try is at the deadline, not past it");
        let uncapped = RetryPolicy::new(OutboundConfig::default());
        assert!(uncapped.retry_at(&job(500, 60_000), None).is_some(), "no attempt cap by default");
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for attempts in 0..40 {
            let d = backoff(attempts, 1000, 60_000);
            let exp = (1000u64 << attempts.min(30)).min(60_000);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempts}: {d} not in [{}, {exp}]", exp / 2);
        }
        let samples: std::collections::HashSet<_> = (0..50).map(|_| backoff(5, 1000, 60_000)).collect();
        assert!(samples.len() > 1, "no jitter");
    }
}
