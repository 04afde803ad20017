//! Inbound dispatch: stores what a backend parsed, then hands each stored
//! message to the apps; replies are queued in the same transaction that marks
//! the message handled (many messages' outcomes per transaction:
//! [`outcomes`]). When the apps can decide from the text alone
//! ([`App::decide_at_once`]), the message is stored with its outcome and
//! replies instead: one store operation, not two. Also what the benchmarks'
//! native baseline calls, so both paths store and route alike.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use outcomes::Outcomes;

use crate::apps::{App, Handled};
use crate::metrics::metrics;
use crate::store::{
    DedupWindows, InboundMessage, InboundOutcome, InboundRecorded, MessageId, MessageStore, NewInbound, NewOutbound,
    NewReport, StoreError, reply_to,
};

mod outcomes;

/// Runs the app chain over stored messages.
pub struct Dispatch {
    store: Arc<dyn MessageStore>,
    apps: Vec<Box<dyn App>>,
    default_reply: Option<String>,
    /// Messages being routed in this process: recovery leaves them alone.
    routing: Mutex<HashSet<MessageId>>,
    /// When a repeated provider callback is the same message.
    dedup: DedupWindows,
    /// Records the apps' outcomes, many per transaction.
    outcomes: Outcomes,
    /// Woken when replies were queued with their message.
    outbound: Arc<Notify>,
}

impl Dispatch {
    /// Dispatch over `apps` (call within the runtime: it starts the task
    /// recording outcomes); `outbound` is woken when replies are queued.
    pub fn new(
        store: Arc<dyn MessageStore>,
        apps: Vec<Box<dyn App>>,
        default_reply: Option<String>,
        outbound: Arc<Notify>,
        dedup: DedupWindows,
    ) -> Self {
        let outcomes = Outcomes::start(store.clone(), outbound.clone());
        Dispatch { store, apps, default_reply, routing: Mutex::new(HashSet::new()), dedup, outcomes, outbound }
    }

    /// Commits what a backend parsed from one provider request (messages the
    /// apps decide at once with their outcome and replies), then routes each
    /// other stored message in the background. Returns once it is durable.
    pub async fn accept(
        self: &Arc<Self>,
        backend: &str,
        messages: Vec<NewInbound>,
        reports: Vec<NewReport>,
    ) -> Result<InboundRecorded, StoreError> {
        let report_count = reports.len();
        let messages = messages.into_iter().map(|m| NewInbound { decided: self.decide_at_once(&m), ..m }).collect();
        let recorded = self.store.record_inbound(backend, messages, reports, self.dedup).await?;
        if recorded.replies_queued > 0 {
            self.outbound.notify_waiters();
        }
        metrics().inbound_stored(backend, recorded.messages.len(), report_count, recorded.duplicates);
        if recorded.duplicates > 0 {
            tracing::info!(backend, "{} repeated message(s) acknowledged, not stored again", recorded.duplicates);
        }
        if recorded.reports_unmatched > 0 {
            tracing::info!(backend, "{} status report(s) matched no message", recorded.reports_unmatched);
        }
        for message in &recorded.messages {
            if !recorded.settled.contains(&message.id) && self.claim(message.id) {
                let this = self.clone();
                let message = message.clone();
                tokio::spawn(async move { this.process(message).await });
            }
        }
        Ok(recorded)
    }

    /// What the apps make of `message` when each app in the chain up to the
    /// one that handles it can decide from the message alone
    /// ([`App::decide_at_once`]): the replies. `None` when an app has to see
    /// the stored message: it is routed after storing, as every message was.
    fn decide_at_once(&self, message: &NewInbound) -> Option<Vec<String>> {
        for app in &self.apps {
            match app.decide_at_once(&message.identity, &message.text)? {
                Handled::No => continue,
                Handled::Yes(replies) => return Some(replies),
            }
        }
        Some(self.default_reply.iter().cloned().collect())
    }

    /// Marks `id` as being routed here; false when it already is.
    fn claim(&self, id: MessageId) -> bool {
        self.routing.lock().unwrap_or_else(|e| e.into_inner()).insert(id)
    }

    /// Runs the apps on one stored message and records the outcome (the
    /// caller has [`Dispatch::claim`]ed it).
    async fn process(&self, message: InboundMessage) {
        let id = message.id;
        self.route(message).await;
        self.routing.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    async fn route(&self, message: InboundMessage) {
        let (replies, error) = self.run_apps(&message).await;
        let replies: Vec<NewOutbound> =
            replies.into_iter().map(|text| reply_to(message.id, &message.backend, &message.identity, text)).collect();
        // Retried while the store is unavailable (a full disk, say): the apps
        // ran, and the outcome with its replies commits once, atomically.
        self.outcomes.record(InboundOutcome { id: message.id, replies, error }).await;
    }

    async fn run_apps(&self, message: &InboundMessage) -> (Vec<String>, Option<String>) {
        for app in &self.apps {
            match app.handle(message).await {
                Ok(Handled::No) => continue,
                Ok(Handled::Yes(replies)) => {
                    tracing::debug!(message_id = message.id, app = app.name(), "handled");
                    return (replies, None);
                }
                Err(e) => {
                    tracing::warn!(message_id = message.id, app = app.name(), "app failed: {e:#}");
                    return (Vec::new(), Some(format!("{}: {e:#}", app.name())));
                }
            }
        }
        (self.default_reply.iter().cloned().collect(), None)
    }

    /// Every `every`, routes messages left unhandled (the store refused the
    /// outcome for too long, or a previous run crashed): no restart needed.
    pub fn spawn_recovery(self: &Arc<Self>, every: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match this.recover().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!("routed {n} inbound message(s) left unhandled"),
                    Err(e) => tracing::warn!("could not look for unhandled messages: {e}"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    /// Routes messages left unhandled, except those being routed now.
    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<usize> {
        let mut total = 0;
        let mut previous_first = None;
        loop {
            let pending = self.store.unprocessed_inbound(256).await?;
            let first = pending.first().map(|m| m.id);
            // Empty, or no progress (the store refuses to record): stop rather than spin.
            if first.is_none() || first == previous_first {
                return Ok(total);
            }
            previous_first = first;
            for m in pending {
                if self.claim(m.id) {
                    total += 1;
                    self.process(m).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
