//! Apps see every inbound message in order until one handles it, as in RapidSMS.

mod echo;
mod ping;
mod webhook;

pub use echo::{Echo, HELP as ECHO_HELP};
pub use ping::Ping;
pub use webhook::Webhook;

use crate::store::MessageId;

/// An inbound message as apps see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InboundMessage {
    pub id: MessageId,
    pub backend: String,
    pub identity: String,
    pub text: String,
    pub external_id: Option<String>,
    pub fields: Vec<(String, String)>,
    pub received_at: Option<i64>,
}

/// What an app made of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// Not for this app: the next one gets it.
    No,
    /// Handled, with replies to the sender (possibly none).
    Yes(Vec<String>),
}

/// One step of inbound processing.
#[async_trait::async_trait]
pub trait App: Send + Sync {
    /// Name used in logs and configuration.
    fn name(&self) -> &'static str;

    /// Looks at a message; errors stop processing and are recorded on it.
    async fn handle(&self, message: &InboundMessage) -> anyhow::Result<Handled>;
}

/// Builds the configured app chain.
pub fn from_config(config: &crate::config::AppsConfig) -> anyhow::Result<Vec<Box<dyn App>>> {
    config
        .order
        .iter()
        .map(|name| -> anyhow::Result<Box<dyn App>> {
            Ok(match name.as_str() {
                "echo" => Box::new(Echo),
                "ping" => Box::new(Ping),
                "webhook" => {
                    let cfg = config.webhook.as_ref().ok_or_else(|| anyhow::anyhow!("[apps.webhook] missing"))?;
                    Box::new(Webhook::new(cfg)?)
                }
                other => anyhow::bail!("unknown app '{other}'"),
            })
        })
        .collect()
}
