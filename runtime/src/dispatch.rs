//! Inbound dispatch: stores what a backend parsed, then hands each stored
//! message to the apps; replies are queued in the same transaction that marks
//! the message handled. Also what the benchmarks' native baseline calls, so
//! both paths store and route alike.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::apps::{App, Handled};
use crate::store::{InboundMessage, InboundRecorded, MessageStore, NewInbound, NewOutbound, NewReport, StoreError};

/// Runs the app chain over stored messages.
pub struct Dispatch {
    store: Arc<dyn MessageStore>,
    apps: Vec<Box<dyn App>>,
    default_reply: Option<String>,
    outbound: Arc<Notify>,
}

impl Dispatch {
    /// Dispatch over `apps`; `outbound` is woken when replies are queued.
    pub fn new(
        store: Arc<dyn MessageStore>,
        apps: Vec<Box<dyn App>>,
        default_reply: Option<String>,
        outbound: Arc<Notify>,
    ) -> Self {
        Dispatch { store, apps, default_reply, outbound }
    }

    /// Commits what a backend parsed from one provider request, then routes
    /// each stored message in the background. Returns once it is durable.
    pub async fn accept(
        self: &Arc<Self>,
        backend: &str,
        messages: Vec<NewInbound>,
        reports: Vec<NewReport>,
    ) -> Result<InboundRecorded, StoreError> {
        let recorded = self.store.record_inbound(backend, messages, reports).await?;
        if recorded.reports_unmatched > 0 {
            tracing::info!(backend, "{} status report(s) matched no message", recorded.reports_unmatched);
        }
        for message in &recorded.messages {
            let this = self.clone();
            let message = message.clone();
            tokio::spawn(async move { this.process(message).await });
        }
        Ok(recorded)
    }

    /// Runs the apps on one stored message and records the outcome.
    pub async fn process(&self, message: InboundMessage) {
        let (replies, error) = self.run_apps(&message).await;
        let replies: Vec<NewOutbound> = replies
            .into_iter()
            .map(|text| NewOutbound {
                backend: message.backend.clone(),
                text,
                identities: vec![message.identity.clone()],
                in_response_to: Some(message.id),
                context: serde_json::Map::new(),
            })
            .collect();
        match self.store.complete_inbound(message.id, replies, error).await {
            Ok(ids) if !ids.is_empty() => self.outbound.notify_waiters(),
            Ok(_) => {}
            // Still 'received' in the store: picked up again on the next recovery pass.
            Err(e) => tracing::error!(message = message.id, "could not record app outcome: {e}"),
        }
    }

    async fn run_apps(&self, message: &InboundMessage) -> (Vec<String>, Option<String>) {
        for app in &self.apps {
            match app.handle(message).await {
                Ok(Handled::No) => continue,
                Ok(Handled::Yes(replies)) => {
                    tracing::debug!(message = message.id, app = app.name(), "handled");
                    return (replies, None);
                }
                Err(e) => {
                    tracing::warn!(message = message.id, app = app.name(), "app failed: {e:#}");
                    return (Vec::new(), Some(format!("{}: {e:#}", app.name())));
                }
            }
        }
        (self.default_reply.iter().cloned().collect(), None)
    }

    /// Processes messages left unhandled by a previous run (e.g. a crash).
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
            total += pending.len();
            for m in pending {
                self.process(m).await;
            }
        }
    }
}
