//! Inbound processing: each stored message goes through the apps; replies are
//! queued in the same transaction that marks the message handled.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::apps::{App, Handled, InboundMessage};
use crate::store::{Message, NewOutbound, Store};

/// Runs the app chain.
pub struct Router {
    store: Arc<dyn Store>,
    apps: Vec<Box<dyn App>>,
    default_reply: Option<String>,
    outbound: Arc<Notify>,
}

impl Router {
    /// A router over `apps`; `outbound` is woken when replies are queued.
    pub fn new(
        store: Arc<dyn Store>,
        apps: Vec<Box<dyn App>>,
        default_reply: Option<String>,
        outbound: Arc<Notify>,
    ) -> Self {
        Router { store, apps, default_reply, outbound }
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
                self.process(to_inbound(m)).await;
            }
        }
    }
}

fn to_inbound(m: Message) -> InboundMessage {
    InboundMessage {
        id: m.id,
        backend: m.backend,
        identity: m.identity.unwrap_or_default(),
        text: m.text,
        external_id: m.external_id,
        fields: m.fields,
        received_at: m.received_at,
    }
}
