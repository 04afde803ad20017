//! Hands each inbound message to the user's own application over HTTP.
//!
//! The gateway POSTs the message as JSON; a 2xx answer means handled, and any
//! replies in it (`{"replies": ["text", {"text": "..."}]}`) are sent to the
//! sender. Anything else is an error recorded on the message.

use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use super::WebhookConfig;
use super::{App, Handled, InboundMessage};

/// Posts messages to a configured URL.
pub struct Webhook {
    url: String,
    client: reqwest::Client,
}

/// Largest webhook answer read.
const MAX_ANSWER: usize = 256 * 1024;

#[derive(Deserialize)]
#[serde(untagged)]
enum Reply {
    Text(String),
    Object { text: String },
}

#[derive(Deserialize, Default)]
struct Answer {
    #[serde(default)]
    replies: Vec<Reply>,
}

impl Webhook {
    /// A webhook app for `config`.
    pub fn new(config: &WebhookConfig) -> anyhow::Result<Self> {
        url::Url::parse(&config.url).with_context(|| format!("invalid webhook url '{}'", config.url))?;
        let client = reqwest::Client::builder().timeout(Duration::from_millis(config.timeout_ms)).build()?;
        Ok(Webhook { url: config.url.clone(), client })
    }
}

#[async_trait::async_trait]
impl App for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn handle(&self, message: &InboundMessage) -> anyhow::Result<Handled> {
        let response = self.client.post(&self.url).json(message).send().await.context("webhook request failed")?;
        let status = response.status();
        let body = response.bytes().await.context("webhook answer unreadable")?;
        if !status.is_success() {
            anyhow::bail!("webhook answered {status}");
        }
        if body.len() > MAX_ANSWER {
            anyhow::bail!("webhook answer larger than {MAX_ANSWER} bytes");
        }
        let answer: Answer = if body.iter().all(u8::is_ascii_whitespace) {
            Answer::default()
        } else {
            serde_json::from_slice(&body).context("webhook answer is not the expected JSON")?
        };
        let replies = answer
            .replies
            .into_iter()
            .map(|r| match r {
                Reply::Text(t) | Reply::Object { text: t } => t,
            })
            .collect();
        Ok(Handled::Yes(replies))
    }
}
