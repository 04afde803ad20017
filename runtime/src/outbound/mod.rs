//! The outbound queue's sender: claim due messages in batches, call each
//! one's backend `send` with every identity still queued, record what
//! happened, and retry retryable failures with exponential backoff and jitter.
//!
//! Claims run ahead of the sends and finished attempts are recorded while
//! other sends go on, so the store's commit latency is paid per batch, not
//! twice per message.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::backend::{Registry, contract};
use crate::config::OutboundConfig;
use crate::store::{AttemptResult, ClaimedSend, QueueStore, now_ms};

mod attempt;
mod sender;

pub use attempt::{RetryPolicy, backoff};
pub use sender::{ComponentSender, Sender};

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
    store: Arc<dyn QueueStore>,
    registry: Arc<Registry>,
    workers: usize,
    retry: RetryPolicy,
    wake: Arc<Notify>,
    /// One permit per concurrent `send` call (`outbound.workers`).
    sending: Arc<Semaphore>,
    sender: Arc<dyn Sender>,
}

impl Outbound {
    /// A queue over `store` sending through `sender`; `wake` is notified when
    /// messages are queued.
    pub fn new(
        store: Arc<dyn QueueStore>,
        registry: Arc<Registry>,
        config: OutboundConfig,
        wake: Arc<Notify>,
        sender: Arc<dyn Sender>,
    ) -> Self {
        let sending = Arc::new(Semaphore::new(config.workers));
        Outbound { store, registry, workers: config.workers, retry: RetryPolicy::new(config), wake, sending, sender }
    }

    /// Starts sending; with `workers = 0` messages are only queued.
    pub fn spawn_workers(self: &Arc<Self>) {
        if self.workers == 0 {
            tracing::info!("outbound.workers = 0: messages are queued but not sent");
            return;
        }
        tokio::spawn(self.clone().dispatch());
    }

    /// Claims due messages while there is room ahead of the senders and
    /// starts an attempt for each.
    async fn dispatch(self: Arc<Self>) {
        let places = self.workers * CLAIM_AHEAD_PER_WORKER;
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
                retry_at: self.retry.retry_at(attempts, None),
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
        if let Some(until) = backend.paused_until() {
            if let Err(e) = self.store.postpone(job.id, until).await {
                tracing::error!(message = job.id, "could not postpone: {e}");
            }
            return;
        }
        let message = contract::outgoing_message(&job);
        // The send slot is held for the call only, not while its outcome commits.
        let output = {
            let Ok(_slot) = self.sending.acquire().await else { return };
            self.sender.send(&backend, message).await
        };
        let result = self.retry.interpret(&job, output.result);
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
}
