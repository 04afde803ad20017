//! The outbound queue's sender: claim due messages in batches, call each
//! one's backend `send` with every identity still queued, record what
//! happened, and retry retryable failures with exponential backoff and jitter.
//!
//! Each backend has a lane: its own `outbound.workers` send slots and its own
//! room for claimed messages, and claims take turns across backends, so a
//! slow provider delays its own messages and nobody else's. Claims run ahead
//! of the sends and finished attempts are recorded while other sends go on,
//! so the store's commit latency is paid per batch, not twice per message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};

use crate::backend::{Registry, contract};
use crate::config::OutboundConfig;
use crate::metrics::metrics;
use crate::store::{AttemptResult, ClaimRequest, ClaimedSend, MessageId, QueueStore, now_ms};

mod attempt;
mod sender;

pub use attempt::{RetryPolicy, backoff};
pub use sender::{ComponentSender, Sender};

/// How long the dispatcher sleeps at most before looking at the queue again.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// How long a claimed message stays leased (returned to the queue on restart).
const LEASE: Duration = Duration::from_secs(600);

/// Messages claimed ahead per send slot of a backend: enough to keep every
/// slot busy while the next claim commits, few enough that a restart
/// re-queues little.
const CLAIM_AHEAD_PER_WORKER: usize = 16;

/// Messages of one backend leased by one claim at most; a backend is claimed
/// for again once this many of its places are free.
const CLAIM_CHUNK: usize = 16;

/// Messages leased by one claim at most.
const MAX_CLAIM_BATCH: usize = 64;

/// How often leases are checked for ones that expired unfinished.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The word for an attempt's outcome in the metrics.
fn outcome_name(result: &AttemptResult, call_failed: bool) -> &'static str {
    match (result.sent.is_empty(), result.failed.is_empty(), result.retry.is_empty()) {
        _ if call_failed => "failed",
        _ if result.throttled => "throttled",
        (false, true, true) => "sent",
        (false, _, _) => "partial",
        (true, false, true) => "permanent",
        _ => "retryable",
    }
}

/// One backend's share of the queue: its own send slots and the messages
/// claimed for it. A slow provider fills its own lane only.
struct Lane {
    sending: Semaphore,
    claimed: AtomicUsize,
}

/// Sends queued messages.
pub struct Outbound {
    store: Arc<dyn QueueStore>,
    registry: Arc<Registry>,
    workers: usize,
    retry: RetryPolicy,
    wake: Arc<Notify>,
    /// Notified when an attempt finishes and its lane has room again.
    freed: Notify,
    /// Set when the gateway stops: claim nothing more, send nothing more.
    stopping: watch::Sender<bool>,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    sender: Arc<dyn Sender>,
}

impl Outbound {
    /// A queue over `store` sending through `sender`, `outbound.workers` sends
    /// at a time per backend; `wake` is notified when messages are queued.
    pub fn new(
        store: Arc<dyn QueueStore>,
        registry: Arc<Registry>,
        config: OutboundConfig,
        wake: Arc<Notify>,
        sender: Arc<dyn Sender>,
    ) -> Self {
        Outbound {
            store,
            registry,
            workers: config.workers,
            retry: RetryPolicy::new(config),
            wake,
            freed: Notify::new(),
            stopping: watch::channel(false).0,
            lanes: Mutex::new(HashMap::new()),
            sender,
        }
    }

    /// Starts sending; with `workers = 0` messages are only queued.
    pub fn spawn_workers(self: &Arc<Self>) {
        if self.workers == 0 {
            tracing::info!("outbound.workers = 0: messages are queued but not sent");
            return;
        }
        tokio::spawn(self.clone().dispatch());
    }

    fn lane(&self, backend: &str) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .entry(backend.to_string())
            .or_insert_with(|| Arc::new(Lane { sending: Semaphore::new(self.workers), claimed: AtomicUsize::new(0) }))
            .clone()
    }

    /// Backends with no room for another chunk of claims.
    fn full_lanes(&self) -> Vec<String> {
        let room = self.workers * CLAIM_AHEAD_PER_WORKER;
        let lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .iter()
            .filter(|(_, lane)| lane.claimed.load(Ordering::Relaxed) + CLAIM_CHUNK > room)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Claims due messages of every backend whose lane has room, backends
    /// taking turns, and starts an attempt for each.
    async fn dispatch(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        let mut last_sweep = std::time::Instant::now();
        loop {
            if *stopping.borrow() {
                return;
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = std::time::Instant::now();
                self.release_expired_leases().await;
            }
            // Register interest before looking, so a notify in between is not lost.
            let woken = self.wake.notified();
            let freed = self.freed.notified();
            let full = self.full_lanes();
            let now = now_ms();
            let claim = ClaimRequest {
                now,
                lease_until: now + LEASE.as_millis() as i64,
                limit: MAX_CLAIM_BATCH,
                per_backend: CLAIM_CHUNK,
                skip: full.clone(),
            };
            match self.store.claim_due(claim).await {
                Ok(jobs) if !jobs.is_empty() => {
                    for job in jobs {
                        let lane = self.lane(&job.backend);
                        lane.claimed.fetch_add(1, Ordering::Relaxed);
                        let this = self.clone();
                        tokio::spawn(async move {
                            this.attempt_isolated(&lane, job).await;
                            lane.claimed.fetch_sub(1, Ordering::Relaxed);
                            this.freed.notify_waiters();
                        });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::error!("outbound queue unavailable: {e}"),
            }
            let wait = match self.store.next_due(&full).await {
                Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(1, IDLE_POLL.as_millis() as i64) as u64),
                _ => IDLE_POLL,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = woken => {}
                _ = freed => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// Runs one attempt in its own task, so a panic in host code fails that
    /// attempt (retried later) instead of killing the sender.
    async fn attempt_isolated(self: &Arc<Self>, lane: &Arc<Lane>, job: ClaimedSend) {
        let (this, lane2) = (self.clone(), lane.clone());
        let id = job.id;
        let retry = job.identities.clone();
        let retry_at = self.retry.retry_at(&job, None);
        if let Err(e) = tokio::spawn(async move { this.attempt(&lane2, job).await }).await {
            tracing::error!(message_id = id, "send attempt panicked: {e}");
            let result = AttemptResult {
                retry,
                retry_at,
                error: Some("internal error during the send attempt".into()),
                ..Default::default()
            };
            let _ = self.store.finish_attempt(id, result).await;
        }
    }

    /// One attempt at one message.
    async fn attempt(&self, lane: &Lane, job: ClaimedSend) {
        if job.identities.is_empty() {
            let _ = self.store.finish_attempt(job.id, AttemptResult::default()).await;
            return;
        }
        let Some(backend) = self.registry.get(&job.backend) else {
            let reason = format!("backend '{}' is not mounted", job.backend);
            if let Err(e) = self.store.fail_message(job.id, reason).await {
                tracing::error!(message_id = job.id, "could not record failure: {e}");
            }
            return;
        };
        if let Some(until) = backend.paused_until() {
            if let Err(e) = self.store.postpone(job.id, until).await {
                tracing::error!(message_id = job.id, "could not postpone: {e}");
            }
            return;
        }
        let message = contract::outgoing_message(&job);
        // The slot is held until the outcome is committed: a crash can then
        // repeat only the sends truly in flight, at most `workers` per backend.
        let mut stopping = self.stopping.subscribe();
        let slot = tokio::select! {
            slot = lane.sending.acquire() => slot,
            _ = async { drop(stopping.wait_for(|stop| *stop).await) } => {
                // Stopping before it was sent: back to the queue, not an attempt.
                if let Err(e) = self.store.postpone(job.id, now_ms()).await {
                    tracing::error!(message_id = job.id, "could not return to the queue: {e}");
                }
                return;
            }
        };
        let Ok(_slot) = slot else { return };
        let output = self.sender.send(&backend, message).await;
        let call_failed = output.result.is_err();
        let result = self.retry.interpret(&job, output.result);
        metrics().send_attempt(&job.backend, outcome_name(&result, call_failed));
        tracing::info!(
            message_id = job.id,
            backend = job.backend.as_str(),
            sent = result.sent.len(),
            failed = result.failed.len(),
            retry = result.retry.len(),
            "send attempt {} took {:?}",
            job.attempts + 1,
            output.elapsed
        );
        self.record(job.id, result).await;
    }

    /// Commits an attempt's outcome, retrying while the store is unavailable
    /// (a full disk, say) for up to half a lease: the message was sent, and a
    /// lost record would send it again.
    async fn record(&self, id: MessageId, result: AttemptResult) {
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            match self.store.finish_attempt(id, result.clone()).await {
                Ok(()) => return,
                Err(e) if started.elapsed() > LEASE / 2 => {
                    tracing::error!(message_id = id, "could not record send attempt, giving up: {e}");
                    return;
                }
                Err(e) => {
                    if delay == Duration::from_millis(50) {
                        tracing::error!(message_id = id, "could not record send attempt, retrying: {e}");
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Returns to the queue what was leased and never finished (an attempt
    /// whose task died): no restart needed.
    async fn release_expired_leases(&self) {
        match self.store.release_expired_leases(now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!("{n} outbound message(s) with expired leases are queued again"),
            Err(e) => tracing::warn!("cannot look for expired leases: {e}"),
        }
    }

    /// Stops claiming and sending: messages claimed but not yet sent go back
    /// to the queue, sends in flight finish and are recorded. Returns how many
    /// attempts were still unfinished after `within`.
    pub async fn stop(&self, within: Duration) -> usize {
        let _ = self.stopping.send(true);
        let deadline = std::time::Instant::now() + within;
        loop {
            let freed = self.freed.notified();
            let left = self.unfinished();
            if left == 0 || std::time::Instant::now() >= deadline {
                return left;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), freed).await;
        }
    }

    /// Attempts claimed and not yet recorded.
    fn unfinished(&self) -> usize {
        let lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes.values().map(|lane| lane.claimed.load(Ordering::Relaxed)).sum()
    }
}
