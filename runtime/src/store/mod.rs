//! Durable state: messages in both directions, per-recipient delivery state and
//! the outbound queue.
//!
//! The [`Store`] trait is what the rest of the gateway uses; [`sqlite`] is the
//! embedded default. A PostgreSQL store implements the same trait.

pub mod sqlite;

use serde::Serialize;
use thiserror::Error;

/// Gateway message ids.
pub type MessageId = i64;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A store failure; the request that caused it changes nothing.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("the store is shut down")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// A message a backend parsed from a provider request.
#[derive(Debug, Clone)]
pub struct NewInbound {
    pub identity: String,
    pub text: String,
    pub external_id: Option<String>,
    pub received_at: Option<Millis>,
    pub fields: Vec<(String, String)>,
}

/// Delivery state of one recipient of an outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientStatus {
    Queued,
    Sent,
    Delivered,
    Failed,
}

impl RecipientStatus {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Queued => "queued",
            RecipientStatus::Sent => "sent",
            RecipientStatus::Delivered => "delivered",
            RecipientStatus::Failed => "failed",
        }
    }

    /// Parses the database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => RecipientStatus::Queued,
            "sent" => RecipientStatus::Sent,
            "delivered" => RecipientStatus::Delivered,
            "failed" => RecipientStatus::Failed,
            _ => return None,
        })
    }
}

/// A provider's report about an outgoing message.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub message_id: Option<String>,
    pub external_id: Option<String>,
    pub identity: Option<String>,
    pub status: RecipientStatus,
    pub detail: Option<String>,
}

/// What the router or the API asks to send.
#[derive(Debug, Clone, Default)]
pub struct NewOutbound {
    pub backend: String,
    pub text: String,
    pub identities: Vec<String>,
    pub in_response_to: Option<MessageId>,
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// One recipient's state, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    pub identity: String,
    pub status: RecipientStatus,
    pub external_id: Option<String>,
    pub error: Option<String>,
    pub updated_at: Millis,
}

/// A stored message in either direction.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub direction: Direction,
    pub backend: String,
    /// The sender, for inbound messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    pub text: String,
    pub external_id: Option<String>,
    pub fields: Vec<(String, String)>,
    pub in_response_to: Option<MessageId>,
    pub context: serde_json::Map<String, serde_json::Value>,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Option<Millis>,
    pub last_error: Option<String>,
    pub received_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Recipients, for outbound messages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<Recipient>,
}

/// Message direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Filter for listing messages, newest first.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub direction: Option<Direction>,
    pub backend: Option<String>,
    pub limit: usize,
}

/// An outbound message leased for one attempt.
#[derive(Debug, Clone)]
pub struct ClaimedSend {
    pub id: MessageId,
    pub backend: String,
    pub text: String,
    /// Only recipients still queued: sent ones are never sent again.
    pub identities: Vec<String>,
    pub in_response_to: Option<MessageId>,
    /// External id of the message this replies to.
    pub reply_to_external_id: Option<String>,
    pub context: serde_json::Map<String, serde_json::Value>,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What one send attempt achieved.
#[derive(Debug, Clone, Default)]
pub struct AttemptResult {
    /// Identities the provider accepted, with its ids.
    pub sent: Vec<(String, Option<String>)>,
    /// Identities that will never be sent, with the reason.
    pub failed: Vec<(String, String)>,
    /// Identities to try again at `retry_at`; with no `retry_at` they fail.
    pub retry: Vec<String>,
    pub retry_at: Option<Millis>,
    /// The error to show for this attempt, if any.
    pub error: Option<String>,
}

/// Counts of what an inbound request changed.
#[derive(Debug, Clone, Default)]
pub struct InboundRecorded {
    pub message_ids: Vec<MessageId>,
    pub reports_matched: usize,
    pub reports_unmatched: usize,
}

/// One uploaded version of a backend: a component plus its settings.
#[derive(Debug, Clone, Serialize)]
pub struct BackendVersion {
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub size: i64,
    /// The upload's settings (allowed hosts, config, secrets, limits) as JSON.
    #[serde(skip)]
    pub settings: String,
    pub wit_version: String,
    pub uploaded_at: Millis,
    pub active: bool,
}

/// The gateway's durable state. Every method is one transaction: it either
/// happens completely or not at all.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Stores parsed inbound messages and applies status reports, atomically.
    async fn record_inbound(
        &self,
        backend: &str,
        messages: Vec<NewInbound>,
        reports: Vec<NewReport>,
    ) -> Result<InboundRecorded, StoreError>;

    /// Inbound messages the apps have not finished with, oldest first.
    async fn unprocessed_inbound(&self, limit: usize) -> Result<Vec<Message>, StoreError>;

    /// Marks an inbound message handled and queues its replies, atomically.
    async fn complete_inbound(
        &self,
        id: MessageId,
        replies: Vec<NewOutbound>,
        error: Option<String>,
    ) -> Result<Vec<MessageId>, StoreError>;

    /// Queues an outgoing message for every identity.
    async fn enqueue(&self, message: NewOutbound) -> Result<MessageId, StoreError>;

    /// Leases up to `limit` of the oldest due outbound messages until
    /// `lease_until`, in one transaction (one commit for a whole batch).
    async fn claim_due(&self, now: Millis, lease_until: Millis, limit: usize) -> Result<Vec<ClaimedSend>, StoreError>;

    /// Records the outcome of an attempt on a claimed message.
    async fn finish_attempt(&self, id: MessageId, result: AttemptResult) -> Result<(), StoreError>;

    /// Fails every queued recipient of `id` (e.g. its backend was removed).
    async fn fail_message(&self, id: MessageId, reason: String) -> Result<(), StoreError>;

    /// Puts a claimed message back in the queue until `until`, without
    /// counting an attempt (its backend is paused).
    async fn postpone(&self, id: MessageId, until: Millis) -> Result<(), StoreError>;

    /// When the next queued message becomes due, if any.
    async fn next_due(&self) -> Result<Option<Millis>, StoreError>;

    /// Returns leased messages to the queue (after a crash or restart).
    async fn release_leases(&self) -> Result<usize, StoreError>;

    /// One message with its recipients.
    async fn get(&self, id: MessageId) -> Result<Option<Message>, StoreError>;

    /// Recent messages, newest first.
    async fn list(&self, filter: MessageFilter) -> Result<Vec<Message>, StoreError>;

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
