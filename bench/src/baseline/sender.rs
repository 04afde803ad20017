//! The outbound baseline: the queue sends with native Kannel code.

use std::time::{Duration, Instant};

use smsgw::backend::MountedBackend;
use smsgw::outbound::Sender;
use smsgw::wasm::CallOutput;
use smsgw::wasm::bindings::types::{OutgoingMessage, SendError, SentIdentity};

use super::native_kannel;

/// Sends through [`native_kannel::send`] with the backend's own limits, policy
/// and transport, after burning `spin` of CPU (zero for the plain baseline).
pub struct NativeKannelSender {
    pub spin: Duration,
}

#[async_trait::async_trait]
impl Sender for NativeKannelSender {
    async fn send(
        &self,
        backend: &MountedBackend,
        message: OutgoingMessage,
    ) -> CallOutput<Result<Vec<SentIdentity>, SendError>> {
        let started = Instant::now();
        native_kannel::burn_cpu(self.spin);
        let result = Ok(native_kannel::send(backend.sandbox(), &message).await);
        CallOutput { result, log: Vec::new(), elapsed: started.elapsed() }
    }
}
