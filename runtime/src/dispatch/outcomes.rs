//! Recording what the apps made of each message, many at a time: every
//! routed message needs its status (and its replies) committed, and under
//! load hundreds are routed between two commits. One store operation for all
//! the outcomes ready at once, instead of one each, is one hand-off to the
//! store's writer, one savepoint and one wake-up for all of them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::store::{InboundOutcome, MessageStore, StoreError};

/// Outcomes recorded per store operation at most.
const BATCH: usize = 256;
/// How often an outcome is tried before it is left for recovery (the message
/// stays `received` in the store, and the periodic recovery routes it again).
const ATTEMPTS: u32 = 60;
/// Pauses before each retry of one outcome: doubling from the first to the last.
const FIRST_DELAY: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_secs(2);

/// An outcome waiting to be recorded, and whom to tell once it is (or was
/// given up on).
struct Waiting {
    outcome: InboundOutcome,
    attempts: u32,
    done: oneshot::Sender<()>,
}

/// Where routed messages' outcomes go to be recorded.
pub(super) struct Outcomes {
    tx: mpsc::UnboundedSender<Waiting>,
}

impl Outcomes {
    /// Starts the task that records outcomes in `store`; `outbound` is woken
    /// when replies were queued.
    pub(super) fn start(store: Arc<dyn MessageStore>, outbound: Arc<Notify>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(record_loop(store, outbound, tx.downgrade(), rx));
        Outcomes { tx }
    }

    /// Records `outcome`; returns once it is committed, or left for recovery.
    pub(super) async fn record(&self, outcome: InboundOutcome) {
        let (done, recorded) = oneshot::channel();
        // Gone only when the runtime shuts down: the message stays for recovery.
        if self.tx.send(Waiting { outcome, attempts: 0, done }).is_ok() {
            let _ = recorded.await;
        }
    }
}

/// Records every outcome waiting, together, as long as anyone can send one.
/// Those that failed come back after their own pause (`retries`), so a
/// failing one never holds up the others.
async fn record_loop(
    store: Arc<dyn MessageStore>,
    outbound: Arc<Notify>,
    retries: mpsc::WeakUnboundedSender<Waiting>,
    mut rx: mpsc::UnboundedReceiver<Waiting>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        for waiting in record(&store, &outbound, std::mem::take(&mut batch)).await {
            let retries = retries.clone();
            let pause = FIRST_DELAY.saturating_mul(1 << (waiting.attempts - 1).min(16)).min(MAX_DELAY);
            tokio::spawn(async move {
                tokio::time::sleep(pause).await;
                // Without a sender the dispatcher is gone: recovery routes it again.
                if let Some(retries) = retries.upgrade() {
                    let _ = retries.send(waiting);
                }
            });
        }
    }
}

/// Records `batch`; answers those recorded or given up on, returns the rest.
async fn record(store: &Arc<dyn MessageStore>, outbound: &Notify, batch: Vec<Waiting>) -> Vec<Waiting> {
    let outcomes = batch.iter().map(|w| w.outcome.clone()).collect();
    let results = match store.complete_inbound(outcomes).await {
        Ok(queued) => queued.into_iter().map(|ids| Ok(!ids.is_empty())).collect(),
        // Any one of them may be the cause: each alone, so the rest go through.
        Err(_) if batch.len() > 1 => one_by_one(store, &batch).await,
        Err(e) => vec![Err(e)],
    };
    let mut retry = Vec::new();
    let mut queued_any = false;
    for (mut waiting, result) in batch.into_iter().zip(results) {
        match result {
            Ok(queued) => {
                queued_any |= queued;
                let _ = waiting.done.send(());
            }
            Err(e) => {
                let message_id = waiting.outcome.id;
                waiting.attempts += 1;
                if waiting.attempts >= ATTEMPTS {
                    tracing::error!(message_id, "could not record app outcome, leaving it for recovery: {e}");
                    let _ = waiting.done.send(());
                } else {
                    if waiting.attempts == 1 {
                        tracing::error!(message_id, "could not record app outcome, retrying: {e}");
                    }
                    retry.push(waiting);
                }
            }
        }
    }
    if queued_any {
        outbound.notify_waiters();
    }
    retry
}

/// Records each outcome of `batch` in its own store operation, all at once
/// (the store still commits them together, each atomic on its own); per
/// outcome, whether it queued replies.
async fn one_by_one(store: &Arc<dyn MessageStore>, batch: &[Waiting]) -> Vec<Result<bool, StoreError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, waiting) in batch.iter().enumerate() {
        let (store, outcome) = (store.clone(), waiting.outcome.clone());
        tasks.spawn(async move { (index, store.complete_inbound(vec![outcome]).await) });
    }
    let mut results: Vec<Result<bool, StoreError>> = vec![Err(StoreError::Closed); batch.len()];
    while let Some(Ok((index, result))) = tasks.join_next().await {
        results[index] = result.map(|queued| queued.iter().any(|ids| !ids.is_empty()));
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{DedupWindows, MessageId, NewInbound, NewOutbound};

    /// An outcome the store refuses for good (its reply names no message)
    /// among others recorded with it: the others are recorded, and it stays
    /// unprocessed, retried, for recovery to route again.
    #[tokio::test]
    async fn a_refused_outcome_does_not_hold_back_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let messages = (0..20)
            .map(|n| NewInbound {
                identity: format!("+{n}"),
                text: "echo hi".into(),
                external_id: None,
                received_at: None,
                fields: vec![],
                decided: None,
            })
            .collect();
        let stored = store.record_inbound("http", messages, vec![], DedupWindows::OFF).await.unwrap();
        let ids: Vec<MessageId> = stored.messages.iter().map(|m| m.id).collect();
        let outcomes = Arc::new(Outcomes::start(store.clone(), Arc::new(Notify::new())));

        let reply = |to: MessageId| NewOutbound {
            backend: "http".into(),
            text: "hi".into(),
            identities: vec!["+1".into()],
            in_response_to: Some(to),
            ..Default::default()
        };
        let poison = ids[7];
        let mut healthy = tokio::task::JoinSet::new();
        for &id in &ids {
            let outcomes = outcomes.clone();
            let to = if id == poison { MessageId::MAX } else { id };
            let outcome = InboundOutcome { id, replies: vec![reply(to)], error: None };
            if id == poison {
                tokio::spawn(async move { outcomes.record(outcome).await });
            } else {
                healthy.spawn(async move { outcomes.record(outcome).await });
            }
        }
        healthy.join_all().await;

        let unprocessed: Vec<MessageId> = store.unprocessed_inbound(50).await.unwrap().iter().map(|m| m.id).collect();
        assert_eq!(unprocessed, vec![poison]);
        for &id in ids.iter().filter(|&&id| id != poison) {
            assert_eq!(store.get(id).await.unwrap().unwrap().status.as_str(), "handled");
        }
    }
}
