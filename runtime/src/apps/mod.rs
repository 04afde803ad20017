//! Apps see every inbound message in order until one handles it, as in RapidSMS.

mod echo;
mod ping;
mod webhook;

pub use echo::{Echo, HELP as ECHO_HELP};
pub use ping::Ping;
pub use webhook::Webhook;

use serde::Deserialize;

/// An inbound message as apps see it: the stored message, with its gateway id.
pub use crate::store::InboundMessage;

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

    /// The decision from the sender and text alone, for apps that need
    /// nothing more (no I/O, no gateway id, no way to fail): a message the
    /// chain decides this way is stored with its outcome and replies in one
    /// transaction instead of stored, routed and updated. `None` (the
    /// default): the app must see the stored message ([`App::handle`]).
    fn decide_at_once(&self, _identity: &str, _text: &str) -> Option<Handled> {
        None
    }
}

/// Apps run on every inbound message, in order, until one handles it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppsConfig {
    /// Order of the apps; any of [`APP_NAMES`].
    pub order: Vec<String>,
    /// Reply sent when no app handled a message; none by default.
    pub default_reply: Option<String>,
    pub webhook: Option<WebhookConfig>,
}

impl Default for AppsConfig {
    fn default() -> Self {
        AppsConfig { order: vec!["echo".into(), "ping".into()], default_reply: None, webhook: None }
    }
}

/// The user's application, reached by POSTing each inbound message as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default = "default_webhook_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_webhook_timeout_ms() -> u64 {
    10_000
}

/// Every app a configuration may name.
pub const APP_NAMES: &[&str] = &["echo", "ping", "webhook"];

/// The app called `name`: the one place that knows which names exist.
fn build(name: &str, config: &AppsConfig) -> anyhow::Result<Box<dyn App>> {
    Ok(match name {
        "echo" => Box::new(Echo),
        "ping" => Box::new(Ping),
        "webhook" => {
            let cfg = config
                .webhook
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("app 'webhook' is listed but [apps.webhook] is missing"))?;
            Box::new(Webhook::new(cfg)?)
        }
        other => anyhow::bail!("unknown app '{other}' (known: {})", APP_NAMES.join(", ")),
    })
}

impl AppsConfig {
    /// Builds the configured app chain.
    pub fn build(&self) -> anyhow::Result<Vec<Box<dyn App>>> {
        self.order.iter().map(|name| build(name, self)).collect()
    }

    /// Rejects unknown app names and missing app settings.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.build().map(drop)
    }
}
