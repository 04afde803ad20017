//! How a claimed message reaches its provider. The gateway always uses
//! [`ComponentSender`] (the backend's own `send`); the trait is the extension
//! point the benchmarks use to measure the same queue with native code.

use crate::backend::MountedBackend;
use crate::wasm::CallOutput;
use crate::wasm::bindings::types::{OutgoingMessage, SendError, SentIdentity};

/// Sends one message through one backend.
#[async_trait::async_trait]
pub trait Sender: Send + Sync {
    /// One attempt; the queue records what it returns.
    async fn send(
        &self,
        backend: &MountedBackend,
        message: OutgoingMessage,
    ) -> CallOutput<Result<Vec<SentIdentity>, SendError>>;
}

/// Calls the backend component's `send` in its sandbox.
pub struct ComponentSender;

#[async_trait::async_trait]
impl Sender for ComponentSender {
    async fn send(
        &self,
        backend: &MountedBackend,
        message: OutgoingMessage,
    ) -> CallOutput<Result<Vec<SentIdentity>, SendError>> {
        backend.send(message).await
    }
}
