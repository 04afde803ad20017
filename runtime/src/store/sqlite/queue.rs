//! The outbound queue: enqueueing, leases, attempts and final states.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::rows::*;
use crate::store::*;

pub(super) fn enqueue_on(conn: &Connection, m: &NewOutbound) -> Result<MessageId, StoreError> {
    let now = now_ms();
    let id = insert_message(
        conn,
        NewRow {
            direction: Direction::Out,
            backend: &m.backend,
            identity: None,
            text: &m.text,
            external_id: None,
            fields: &[],
            in_response_to: m.in_response_to,
            context: &m.context,
            status: MessageStatus::Queued,
            next_attempt_at: Some(now),
            received_at: None,
        },
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO recipients (message_id, identity, status, updated_at) VALUES (?1, ?2, 'queued', ?3)",
    )?;
    for identity in &m.identities {
        stmt.execute(params![id, identity, now])?;
    }
    Ok(id)
}

/// Fails every still-queued recipient of `id` with `reason`.
pub(super) fn fail_queued(conn: &Connection, id: MessageId, reason: &str) -> Result<(), StoreError> {
    let now = now_ms();
    conn.prepare_cached(
        "UPDATE recipients SET status = 'failed', error = ?2, updated_at = ?3 WHERE message_id = ?1 AND status = 'queued'",
    )?
    .execute(params![id, reason, now])?;
    conn.prepare_cached("UPDATE messages SET last_error = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, reason, now])?;
    refresh_status(conn, id)
}

/// Recomputes an outbound message's overall status from its recipients.
pub(super) fn refresh_status(conn: &Connection, id: MessageId) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached("SELECT status FROM recipients WHERE message_id = ?1")?;
    let statuses: Vec<String> = stmt.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let statuses: Vec<RecipientStatus> =
        statuses.iter().map(|s| RecipientStatus::parse(s).unwrap_or(RecipientStatus::Queued)).collect();
    let count = |s: RecipientStatus| statuses.iter().filter(|x| **x == s).count();
    let status = if count(RecipientStatus::Queued) > 0 {
        None // queue state ("queued"/"sending") is managed by the queue itself
    } else if count(RecipientStatus::Failed) == statuses.len() {
        Some(MessageStatus::Failed)
    } else if count(RecipientStatus::Failed) > 0 {
        Some(MessageStatus::PartiallyFailed)
    } else if count(RecipientStatus::Delivered) == statuses.len() {
        Some(MessageStatus::Delivered)
    } else {
        Some(MessageStatus::Sent)
    };
    if let Some(status) = status {
        conn.prepare_cached("UPDATE messages SET status = ?2, next_attempt_at = NULL, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, status.as_str(), now_ms()])?;
    }
    Ok(())
}

/// Backends with queued messages, by a skip-scan of the queue index: one
/// index seek per backend, however long any backend's queue is. Named, as
/// `status = 'queued'` also implies `messages_unsettled`'s condition, and on
/// that index SQLite read every queued message for each `MIN` (the queue
/// drained at half speed).
pub(super) const QUEUED_BACKENDS: &str = "WITH RECURSIVE b(name) AS (
         SELECT (SELECT MIN(backend) FROM messages INDEXED BY messages_queued WHERE status = 'queued')
         UNION ALL
         SELECT (SELECT MIN(backend) FROM messages INDEXED BY messages_queued
                 WHERE status = 'queued' AND backend > b.name)
         FROM b WHERE b.name IS NOT NULL
     ) SELECT name FROM b WHERE name IS NOT NULL";

fn queued_backends(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(QUEUED_BACKENDS)?;
    Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
}

/// One from each lane in turn, `limit` in all: no backend's backlog delays another's.
fn interleave<T>(mut lanes: Vec<std::vec::IntoIter<T>>, limit: usize) -> Vec<T> {
    let mut out = Vec::new();
    while out.len() < limit {
        let before = out.len();
        for lane in &mut lanes {
            if out.len() == limit {
                break;
            }
            out.extend(lane.next());
        }
        if out.len() == before {
            break;
        }
    }
    out
}

#[async_trait::async_trait]
impl QueueStore for SqliteStore {
    async fn enqueue(&self, message: NewOutbound) -> Result<MessageId, StoreError> {
        self.run(move |conn| enqueue_on(conn, &message)).await
    }

    async fn enqueue_idempotent(
        &self,
        message: NewOutbound,
        key: &str,
        request_hash: &str,
        window_ms: Millis,
    ) -> Result<Enqueued, StoreError> {
        let (key, request_hash) = (key.to_string(), request_hash.to_string());
        self.run(move |conn| {
            let now = now_ms();
            // Keys older than the window are forgotten (and may be used again).
            conn.prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?.execute([now - window_ms])?;
            let earlier: Option<(String, MessageId)> = conn
                .prepare_cached("SELECT request_hash, message_id FROM idempotency_keys WHERE key = ?1")?
                .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((hash, id)) = earlier {
                return Ok(if hash == request_hash { Enqueued::Replayed(id) } else { Enqueued::KeyReused });
            }
            let id = enqueue_on(conn, &message)?;
            conn.prepare_cached(
                "INSERT INTO idempotency_keys (key, request_hash, message_id, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![key, request_hash, id, now])?;
            Ok(Enqueued::New(id))
        })
        .await
    }

    async fn claim_due(&self, claim: ClaimRequest) -> Result<Vec<ClaimedSend>, StoreError> {
        self.run(move |conn| {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE status = 'queued' AND backend = ?1
                 AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id LIMIT ?3"
            );
            let mut oldest = conn.prepare_cached(&sql)?;
            let mut lanes = Vec::new();
            for backend in queued_backends(conn)?.into_iter().filter(|b| !claim.skip.contains(b)) {
                let due: Vec<Message> = oldest
                    .query_map(params![backend, claim.now, claim.per_backend as i64], read_message)?
                    .collect::<Result<_, _>>()?;
                lanes.push(due.into_iter());
            }
            drop(oldest);
            let due = interleave(lanes, claim.limit);
            let lease_until = claim.lease_until;
            let mut lease =
                conn.prepare_cached("UPDATE messages SET status = 'sending', next_attempt_at = ?2 WHERE id = ?1")?;
            let mut claimed = Vec::with_capacity(due.len());
            for m in due {
                lease.execute(params![m.id, lease_until])?;
                let identities: Vec<String> = recipients_of(conn, m.id)?
                    .into_iter()
                    .filter(|r| r.status == RecipientStatus::Queued)
                    .map(|r| r.identity)
                    .collect();
                let reply_to_external_id = match m.in_response_to {
                    Some(orig) => conn
                        .prepare_cached("SELECT external_id FROM messages WHERE id = ?1")?
                        .query_row([orig], |r| r.get::<_, Option<String>>(0))
                        .optional()?
                        .flatten(),
                    None => None,
                };
                claimed.push(ClaimedSend {
                    id: m.id,
                    backend: m.backend,
                    text: m.text,
                    identities,
                    in_response_to: m.in_response_to,
                    reply_to_external_id,
                    context: m.context,
                    attempts: m.attempts,
                    created_at: m.created_at,
                });
            }
            Ok(claimed)
        })
        .await
    }

    async fn finish_attempt(&self, id: MessageId, result: AttemptResult) -> Result<(), StoreError> {
        self.run(move |conn| {
            let now = now_ms();
            let mut set = conn.prepare_cached(
                "UPDATE recipients SET status = ?3, external_id = COALESCE(?4, external_id), error = ?5, updated_at = ?6
                 WHERE message_id = ?1 AND identity = ?2 AND status = 'queued'",
            )?;
            // The provider's id is kept even when a fast delivery report already
            // moved the recipient on, so later reports by that id still match.
            let mut remember = conn.prepare_cached(
                "UPDATE recipients SET external_id = ?3 WHERE message_id = ?1 AND identity = ?2 AND external_id IS NULL",
            )?;
            for (identity, external_id) in &result.sent {
                set.execute(params![id, identity, RecipientStatus::Sent.as_str(), external_id, Option::<String>::None, now])?;
                if external_id.is_some() {
                    remember.execute(params![id, identity, external_id])?;
                }
            }
            drop(remember);
            for (identity, reason) in &result.failed {
                set.execute(params![id, identity, RecipientStatus::Failed.as_str(), Option::<String>::None, reason, now])?;
            }
            if result.retry_at.is_none() {
                let reason = result.error.clone().unwrap_or_else(|| "gave up".into());
                for identity in &result.retry {
                    set.execute(params![id, identity, RecipientStatus::Failed.as_str(), Option::<String>::None, reason, now])?;
                }
            }
            drop(set);
            // Anything still queued waits for the next attempt.
            let pending: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM recipients WHERE message_id = ?1 AND status = 'queued'")?
                .query_row([id], |r| r.get(0))?;
            let (status, next) = if pending > 0 {
                (MessageStatus::Queued, Some(result.retry_at.unwrap_or(now)))
            } else {
                (MessageStatus::Sending, None) // refresh_status below sets the final state
            };
            conn.prepare_cached(
                "UPDATE messages SET attempts = attempts + ?6, status = ?2, next_attempt_at = ?3,
                     last_error = COALESCE(?4, last_error), updated_at = ?5 WHERE id = ?1",
            )?
            .execute(params![id, status.as_str(), next, result.error, now, if result.throttled { 0 } else { 1 }])?;
            refresh_status(conn, id)
        })
        .await
    }

    async fn fail_message(&self, id: MessageId, reason: String) -> Result<(), StoreError> {
        self.run(move |conn| fail_queued(conn, id, &reason)).await
    }

    async fn postpone(&self, id: MessageId, until: Millis) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.prepare_cached(
                "UPDATE messages SET status = 'queued', next_attempt_at = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'sending'",
            )?
            .execute(params![id, until, now_ms()])?;
            Ok(())
        })
        .await
    }

    async fn next_due(&self, skip: &[String]) -> Result<Option<Millis>, StoreError> {
        let skip = skip.to_vec();
        self.run(move |conn| {
            let mut earliest = conn
                .prepare_cached("SELECT MIN(next_attempt_at) FROM messages WHERE status = 'queued' AND backend = ?1")?;
            let mut next: Option<Millis> = None;
            for backend in queued_backends(conn)?.into_iter().filter(|b| !skip.contains(b)) {
                let due: Option<Millis> = earliest.query_row([backend], |r| r.get(0))?;
                next = next.into_iter().chain(due).min();
            }
            Ok(next)
        })
        .await
    }

    async fn release_expired_leases(&self, now: Millis) -> Result<usize, StoreError> {
        self.run(move |conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE messages SET status = 'queued', next_attempt_at = ?1
                     WHERE status = 'sending' AND next_attempt_at < ?1",
                )?
                .execute([now])?)
        })
        .await
    }

    async fn release_leases(&self) -> Result<usize, StoreError> {
        self.run(|conn| {
            Ok(conn.execute(
                "UPDATE messages SET status = 'queued', next_attempt_at = ?1 WHERE status = 'sending'",
                [now_ms()],
            )?)
        })
        .await
    }
}
