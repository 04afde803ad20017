//! Durable state: messages in both directions, per-recipient delivery state,
//! the outbound queue and the versions of uploaded backends.
//!
//! The rest of the gateway sees only the traits here, one per concern, so a
//! part asks for no more than it uses and a second implementation (a shared
//! database for several nodes) plugs in beside [`sqlite`], the embedded
//! default. Every method is one transaction: it happens completely or not at all.

pub mod sqlite;
mod types;

pub use types::*;

/// Inbound messages and the lookups the API makes.
#[async_trait::async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores parsed inbound messages (except those already stored within
    /// `dedup`'s windows) and applies status reports, atomically; returns the
    /// messages as stored.
    async fn record_inbound(
        &self,
        backend: &str,
        messages: Vec<NewInbound>,
        reports: Vec<NewReport>,
        dedup: DedupWindows,
    ) -> Result<InboundRecorded, StoreError>;

    /// Inbound messages the apps have not finished with, oldest first.
    async fn unprocessed_inbound(&self, limit: usize) -> Result<Vec<InboundMessage>, StoreError>;

    /// Records the apps' outcomes of inbound messages, atomically: each
    /// message marked handled with its replies queued. One transaction for
    /// many messages (those routed meanwhile); callers isolate a failing one
    /// by recording them one by one. Returns, per outcome in order, the ids of
    /// the replies queued: none when the message was already handled (never
    /// queued twice).
    async fn complete_inbound(&self, outcomes: Vec<InboundOutcome>) -> Result<Vec<Vec<MessageId>>, StoreError>;

    /// One message with its recipients.
    async fn get(&self, id: MessageId) -> Result<Option<Message>, StoreError>;

    /// Recent messages, newest first.
    async fn list(&self, filter: MessageFilter) -> Result<Vec<Message>, StoreError>;

    /// Messages not done with (`received`, `queued`, `sending`), per status.
    async fn pending(&self) -> Result<Vec<Pending>, StoreError>;
}

/// The outbound queue: leases, attempts and their outcomes.
#[async_trait::async_trait]
pub trait QueueStore: Send + Sync {
    /// Queues an outgoing message for every identity.
    async fn enqueue(&self, message: NewOutbound) -> Result<MessageId, StoreError>;

    /// Queues `message` unless `key` was used within `window_ms`: then the
    /// first message's id when `request_hash` matches, or a refusal.
    async fn enqueue_idempotent(
        &self,
        message: NewOutbound,
        key: &str,
        request_hash: &str,
        window_ms: Millis,
    ) -> Result<Enqueued, StoreError>;

    /// Leases due outbound messages as `claim` says, oldest first within each
    /// backend and backends taking turns, in one transaction (one commit for a
    /// whole batch).
    async fn claim_due(&self, claim: ClaimRequest) -> Result<Vec<ClaimedSend>, StoreError>;

    /// Records the outcome of an attempt on a claimed message.
    async fn finish_attempt(&self, id: MessageId, result: AttemptResult) -> Result<(), StoreError>;

    /// Fails every queued recipient of `id` (e.g. its backend was removed).
    async fn fail_message(&self, id: MessageId, reason: String) -> Result<(), StoreError>;

    /// Puts a claimed message back in the queue until `until`, without
    /// counting an attempt (its backend is paused).
    async fn postpone(&self, id: MessageId, until: Millis) -> Result<(), StoreError>;

    /// When the next queued message of a backend not in `skip` becomes due, if any.
    async fn next_due(&self, skip: &[String]) -> Result<Option<Millis>, StoreError>;

    /// Returns leased messages to the queue (after a crash or restart).
    async fn release_leases(&self) -> Result<usize, StoreError>;

    /// Returns to the queue the leased messages whose lease ended before `now`.
    async fn release_expired_leases(&self, now: Millis) -> Result<usize, StoreError>;
}

/// Uploaded backends: every version with its settings, and which is active.
#[async_trait::async_trait]
pub trait VersionStore: Send + Sync {
    /// Records a new version of an uploaded backend and makes it the active one.
    async fn add_backend_version(
        &self,
        name: &str,
        sha256: &str,
        size: i64,
        settings: String,
        wit_version: &str,
    ) -> Result<BackendVersion, StoreError>;

    /// Makes `version` the active one; false when it does not exist.
    async fn activate_backend_version(&self, name: &str, version: i64) -> Result<bool, StoreError>;

    /// Every version of `name`, oldest first (empty when it was never uploaded or was deleted).
    async fn backend_versions(&self, name: &str) -> Result<Vec<BackendVersion>, StoreError>;

    /// The active version of every uploaded backend.
    async fn active_backend_versions(&self) -> Result<Vec<BackendVersion>, StoreError>;

    /// Forgets an uploaded backend and fails its queued outbound messages with
    /// `reason`, atomically; returns how many messages were failed.
    async fn delete_backend(&self, name: &str, reason: String) -> Result<usize, StoreError>;
}

/// The channel log's entries.
#[async_trait::async_trait]
pub trait ChannelLogStore: Send + Sync {
    /// Records a batch of exchanges in one transaction.
    async fn record_exchanges(&self, exchanges: Vec<Exchange>) -> Result<(), StoreError>;

    /// Recorded exchanges as `filter` says.
    async fn exchanges(&self, filter: ExchangeFilter) -> Result<Vec<LoggedExchange>, StoreError>;

    /// Removes entries created before `before`, then the oldest while all
    /// of them take more than `max_bytes`; returns how many went.
    async fn prune_exchanges(&self, before: Millis, max_bytes: u64) -> Result<usize, StoreError>;
}

/// The whole store, for the part that assembles the gateway.
pub trait Store: MessageStore + QueueStore + VersionStore + ChannelLogStore {}

impl<T: MessageStore + QueueStore + VersionStore + ChannelLogStore> Store for T {}
