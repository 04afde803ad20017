//! The outbound queue's sender: claim due messages in batches, call each
//! one's backend `send` with every identity still queued, record what
//! happened, and retry retryable failures with exponential backoff and jitter.
//!
//! Claims run ahead of the sends and finished attempts are recorded while
//! other sends go on, so the store's commit latency is paid per batch, not
//! twice per message.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, Semaphore};

use crate::backends::{CallStats, Registry};
use crate::config::OutboundConfig;
use crate::store::{AttemptResult, ClaimedSend, Millis, Store, now_ms};
use crate::wasm::bindings::types::{MessageContext, OutgoingMessage, SendError};
use crate::wasm::sandbox::{CallError, CallOutput};

/// How long the dispatcher sleeps at most before looking at the queue again.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// How long a claimed message stays leased (returned to the queue on restart).
const LEASE: Duration = Duration::from_secs(600);

/// Messages claimed ahead per send slot: enough to keep every slot busy while
/// the next claim commits, few enough that a restart re-queues little.
const CLAIM_AHEAD_PER_WORKER: usize = 16;

/// Messages leased by one claim at most.
const MAX_CLAIM_BATCH: usize = 64;

/// Sends queued messages.
pub struct Outbound {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    config: OutboundConfig,
    wake: Arc<Notify>,
    /// One permit per concurrent `send` call (`outbound.workers`).
    sending: Arc<Semaphore>,
    /// `bench_native_send`: native Kannel code instead of the component, after
    /// spinning this long (`bench_native_send_spin_us`).
    native: Option<Duration>,
}

impl Outbound {
    /// A queue over `store`; `wake` is notified when messages are queued.
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>, config: OutboundConfig, wake: Arc<Notify>) -> Self {
        let sending = Arc::new(Semaphore::new(config.workers));
        Outbound { store, registry, config, wake, sending, native: None }
    }

    /// Sends with [`crate::native_kannel`] instead of each backend's component,
    /// through the same queue (the outbound benchmark's baseline); each send
    /// first burns `spin` of CPU (zero for the plain baseline).
    pub fn send_natively_for_benchmarks(&mut self, spin: Duration) {
        self.native = Some(spin);
    }

    /// Starts sending; with `workers = 0` messages are only queued.
    pub fn spawn_workers(self: &Arc<Self>) {
        if self.config.workers == 0 {
            tracing::info!("outbound.workers = 0: messages are queued but not sent");
            return;
        }
        tokio::spawn(self.clone().dispatch());
    }

    /// Claims due messages while there is room ahead of the senders and
    /// starts an attempt for each.
    async fn dispatch(self: Arc<Self>) {
        let places = self.config.workers * CLAIM_AHEAD_PER_WORKER;
        let ahead = Arc::new(Semaphore::new(places));
        let claim_min = (places / 4) as u32;
        loop {
            // Register interest before looking, so a notify in between is not lost.
            let woken = self.wake.notified();
            // While sends are backed up, claim in chunks rather than one
            // message per freed place; when idle all places are free anyway.
            let Ok(mut room) = ahead.clone().acquire_many_owned(claim_min).await else { return };
            let more = ahead.available_permits().min(MAX_CLAIM_BATCH - 1) as u32;
            if let Ok(extra) = ahead.clone().try_acquire_many_owned(more) {
                room.merge(extra);
            }
            let now = now_ms();
            match self.store.claim_due(now, now + LEASE.as_millis() as i64, room.num_permits()).await {
                Ok(jobs) if !jobs.is_empty() => {
                    for job in jobs {
                        // Each attempt holds its place until its outcome is recorded.
                        let place = room.split(1);
                        let this = self.clone();
                        tokio::spawn(async move {
                            this.attempt_isolated(job).await;
                            drop(place);
                        });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::error!("outbound queue unavailable: {e}"),
            }
            drop(room);
            let wait = match self.store.next_due().await {
                Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(1, IDLE_POLL.as_millis() as i64) as u64),
                _ => IDLE_POLL,
            };
            let _ = tokio::time::timeout(wait, woken).await;
        }
    }

    /// Runs one attempt in its own task, so a panic in host code fails that
    /// attempt (retried later) instead of killing the sender.
    async fn attempt_isolated(self: &Arc<Self>, job: ClaimedSend) {
        let this = self.clone();
        let id = job.id;
        let retry = job.identities.clone();
        let attempts = job.attempts;
        if let Err(e) = tokio::spawn(async move { this.attempt(job).await }).await {
            tracing::error!(message = id, "send attempt panicked: {e}");
            let result = AttemptResult {
                retry,
                retry_at: self.retry_at(attempts, None),
                error: Some("internal error during the send attempt".into()),
                ..Default::default()
            };
            let _ = self.store.finish_attempt(id, result).await;
        }
    }

    /// One attempt at one message.
    async fn attempt(&self, job: ClaimedSend) {
        if job.identities.is_empty() {
            let _ = self.store.finish_attempt(job.id, AttemptResult::default()).await;
            return;
        }
        let Some(backend) = self.registry.get(&job.backend) else {
            let reason = format!("backend '{}' is not mounted", job.backend);
            if let Err(e) = self.store.fail_message(job.id, reason).await {
                tracing::error!(message = job.id, "could not record failure: {e}");
            }
            return;
        };
        if let Some(until) = backend.breaker.open_until() {
            if let Err(e) = self.store.postpone(job.id, until).await {
                tracing::error!(message = job.id, "could not postpone: {e}");
            }
            return;
        }
        let message = OutgoingMessage {
            id: job.id.to_string(),
            text: job.text.clone(),
            identities: job.identities.clone(),
            context: MessageContext {
                in_response_to: job.in_response_to.map(|id| id.to_string()),
                external_id: job.reply_to_external_id.clone(),
                fields: context_pairs(&job.context),
            },
        };
        // The send slot is held for the call only, not while its outcome commits.
        let output = {
            let Ok(_slot) = self.sending.acquire().await else { return };
            if let Some(spin) = self.native {
                let started = std::time::Instant::now();
                crate::native_kannel::burn_cpu(spin);
                let result = Ok(crate::native_kannel::send(&backend.sandbox, &message).await);
                CallOutput { result, log: Vec::new(), elapsed: started.elapsed() }
            } else {
                backend.sandbox.send(message).await
            }
        };
        crate::server::note_outcome(&backend, &output.result);
        let stats = &backend.stats;
        CallStats::bump(if matches!(output.result, Ok(Ok(_))) { &stats.send_ok } else { &stats.send_failed });
        let secrets = backend.sandbox.secrets();
        let mut result = self.interpret(&job, output.result);
        result.error = result.error.map(|e| secrets.redact(&e));
        result.failed = result.failed.into_iter().map(|(i, r)| (i, secrets.redact(&r))).collect();
        tracing::info!(
            message = job.id,
            backend = job.backend.as_str(),
            sent = result.sent.len(),
            failed = result.failed.len(),
            retry = result.retry.len(),
            "send attempt {} took {:?}",
            job.attempts + 1,
            output.elapsed
        );
        if let Err(e) = self.store.finish_attempt(job.id, result).await {
            tracing::error!(message = job.id, "could not record send attempt: {e}");
        }
    }

    /// Turns a backend's answer into per-identity outcomes.
    fn interpret(
        &self,
        job: &ClaimedSend,
        outcome: Result<Result<Vec<crate::wasm::bindings::types::SentIdentity>, SendError>, CallError>,
    ) -> AttemptResult {
        let all = || job.identities.clone();
        let mut result = AttemptResult::default();
        let retry_all = |mut result: AttemptResult, error: String, after: Option<Millis>| {
            result.retry = all();
            result.retry_at = self.retry_at(job.attempts, after);
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
                result.retry_at = if result.retry.is_empty() { None } else { self.retry_at(job.attempts, None) };
                result.error = Some(errors.join("; "));
                result
            }
        }
    }

    /// When to try again after `attempts` earlier attempts, or `None` to give up.
    fn retry_at(&self, attempts: u32, after_ms: Option<Millis>) -> Option<Millis> {
        if attempts + 1 >= self.config.max_attempts {
            return None;
        }
        let delay = match after_ms {
            Some(ms) => ms.max(0) as u64,
            None => backoff(attempts, self.config.retry_base_ms, self.config.retry_max_ms),
        };
        Some(now_ms() + delay as i64)
    }
}

/// Exponential backoff with "equal jitter": half fixed, half random, so
/// retries of many messages spread out instead of arriving together.
pub fn backoff(attempts: u32, base_ms: u64, max_ms: u64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempts.min(30)).min(max_ms);
    let half = exp / 2;
    half + rand::rng().random_range(0..=half.max(1)).min(exp - half)
}

/// The API caller's context as name/value pairs (non-strings as JSON).
fn context_pairs(context: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    context
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k.clone(), s.clone()),
            other => (k.clone(), other.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::backoff;

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
