//! What the store holds and hands out: messages in both directions, their
//! typed statuses, recipients, queue leases and backend versions.

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
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("the store is shut down")]
    Closed,
}

/// A message a backend parsed from a provider request.
#[derive(Debug, Clone, Default)]
pub struct NewInbound {
    pub identity: String,
    pub text: String,
    pub external_id: Option<String>,
    pub received_at: Option<Millis>,
    pub fields: Vec<(String, String)>,
    /// Set when the apps decided about the message before it was stored
    /// (`App::decide_at_once`): the replies to queue with it. It is then
    /// stored as handled, its replies in the same transaction, and never
    /// routed: one store operation instead of two.
    pub decided: Option<Vec<String>>,
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

/// Where a message is in its life. Inbound: `received` → `handled` (or
/// `app-error`). Outbound: `queued` → `sending` → `sent` / `delivered` /
/// `failed` / `partially-failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageStatus {
    Received,
    Handled,
    AppError,
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    PartiallyFailed,
}

impl MessageStatus {
    const ALL: [MessageStatus; 9] = [
        MessageStatus::Received,
        MessageStatus::Handled,
        MessageStatus::AppError,
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Failed,
        MessageStatus::PartiallyFailed,
    ];

    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Received => "received",
            MessageStatus::Handled => "handled",
            MessageStatus::AppError => "app-error",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::PartiallyFailed => "partially-failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
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

/// The reply `text` to inbound message `id` from `identity` on `backend`.
pub fn reply_to(id: MessageId, backend: &str, identity: &str, text: String) -> NewOutbound {
    NewOutbound {
        backend: backend.to_string(),
        text,
        identities: vec![identity.to_string()],
        in_response_to: Some(id),
        context: serde_json::Map::new(),
    }
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
    pub status: MessageStatus,
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

/// Filter for listing messages: newest first, or oldest first after a cursor.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub direction: Option<Direction>,
    pub backend: Option<String>,
    pub status: Option<MessageStatus>,
    /// Created at or after (ms since the epoch).
    pub since: Option<Millis>,
    /// Created before.
    pub until: Option<Millis>,
    /// Only ids below this one (the next page, newest first).
    pub before: Option<MessageId>,
    /// Only ids above this one, oldest first (following what is new).
    pub after: Option<MessageId>,
    pub limit: usize,
}

/// One exchange in the channel log: a provider's request to a backend
/// (`inbound`) or a backend's request to its provider (`provider`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Exchange {
    pub backend: String,
    pub kind: String,
    pub method: String,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
    /// `None` when no answer came (refused, timed out, connection failed).
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    pub duration_us: u64,
    /// What the backend logged during the call.
    pub log: Vec<String>,
    /// What came of it, in words.
    pub outcome: String,
    pub message_ids: Vec<MessageId>,
    pub created_at: Millis,
}

/// A recorded exchange with its id.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedExchange {
    pub id: i64,
    #[serde(flatten)]
    pub exchange: Exchange,
}

/// Filter for reading the channel log: newest first, or oldest first after a cursor.
#[derive(Debug, Clone, Default)]
pub struct ExchangeFilter {
    pub backend: Option<String>,
    pub message_id: Option<MessageId>,
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub limit: usize,
}

/// How many messages wait in one status, and since when the oldest.
#[derive(Debug, Clone)]
pub struct Pending {
    pub status: MessageStatus,
    pub count: u64,
    pub oldest_created_at: Option<Millis>,
}

/// What queueing a message under an idempotency key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued now, with this id.
    New(MessageId),
    /// The key was used before for the same request: that message's id.
    Replayed(MessageId),
    /// The key was used before for a different request.
    KeyReused,
}

/// Which due messages one claim may lease.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: Millis,
    /// The lease's end: a message still leased then returns to the queue.
    pub lease_until: Millis,
    /// Messages in all.
    pub limit: usize,
    /// Messages of any one backend.
    pub per_backend: usize,
    /// Backends to leave alone (their senders are busy).
    pub skip: Vec<String>,
}

impl ClaimRequest {
    /// Up to `limit` due messages, whatever their backend.
    pub fn any(now: Millis, lease_until: Millis, limit: usize) -> Self {
        ClaimRequest { now, lease_until, limit, per_backend: limit, skip: Vec::new() }
    }
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
    /// When it was queued (the retry budget counts from here).
    pub created_at: Millis,
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
    /// The provider asked us to slow down: this attempt does not count.
    pub throttled: bool,
}

/// A stored inbound message, complete: what the apps are given.
#[derive(Debug, Clone, Serialize)]
pub struct InboundMessage {
    pub id: MessageId,
    pub backend: String,
    pub identity: String,
    pub text: String,
    pub external_id: Option<String>,
    pub fields: Vec<(String, String)>,
    pub received_at: Option<Millis>,
}

/// When a message a provider sends again is the same message: providers
/// retry callbacks they think failed.
#[derive(Debug, Clone, Copy)]
pub struct DedupWindows {
    /// Same backend and provider message id within this long (0: off).
    pub provider_id_ms: Millis,
    /// No provider id: same backend, sender and text within this long (0: off).
    pub same_text_ms: Millis,
}

impl DedupWindows {
    /// Nothing is ever a duplicate.
    pub const OFF: DedupWindows = DedupWindows { provider_id_ms: 0, same_text_ms: 0 };
}

/// What an inbound request changed.
#[derive(Debug, Clone, Default)]
pub struct InboundRecorded {
    /// The messages stored, in the order the backend returned them.
    pub messages: Vec<InboundMessage>,
    /// Messages not stored because they were already (a repeated callback).
    pub duplicates: usize,
    pub reports_matched: usize,
    pub reports_unmatched: usize,
    /// Stored messages that were stored with their outcome (`NewInbound::decided`).
    pub settled: Vec<MessageId>,
    /// Replies queued with them.
    pub replies_queued: usize,
}

/// What the apps made of one stored inbound message.
#[derive(Debug, Clone)]
pub struct InboundOutcome {
    pub id: MessageId,
    /// Queued with the outcome, in the same transaction.
    pub replies: Vec<NewOutbound>,
    /// Why an app failed: the message is then recorded as an app error.
    pub error: Option<String>,
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
