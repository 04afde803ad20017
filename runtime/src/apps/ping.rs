//! `ping` → `pong`: a liveness check from a phone.

use super::{App, Handled, InboundMessage};

/// Answers exactly `ping` (case-insensitive, surrounding space ignored).
pub struct Ping;

#[async_trait::async_trait]
impl App for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    async fn handle(&self, message: &InboundMessage) -> anyhow::Result<Handled> {
        Ok(decide(&message.text))
    }

    fn decide_at_once(&self, _identity: &str, text: &str) -> Option<Handled> {
        Some(decide(text))
    }
}

fn decide(text: &str) -> Handled {
    if text.trim().eq_ignore_ascii_case("ping") { Handled::Yes(vec!["pong".to_string()]) } else { Handled::No }
}
