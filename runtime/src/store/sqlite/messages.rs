//! Inbound messages, status reports and lookups.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::queue::{enqueue_on, refresh_status};
use super::recent::RecentTexts;
use super::rows::*;
use crate::store::*;

/// Never moves a recipient backwards (a late "sent" must not undo "delivered").
fn rank(status: RecipientStatus) -> u8 {
    match status {
        RecipientStatus::Queued => 0,
        RecipientStatus::Sent => 1,
        RecipientStatus::Delivered | RecipientStatus::Failed => 2,
    }
}

/// A stored inbound message with this provider id, recent enough.
pub(super) const SAME_PROVIDER_ID: &str =
    "SELECT 1 FROM messages WHERE direction = 'in' AND backend = ?1 AND external_id = ?2 AND created_at >= ?3 LIMIT 1";

/// Unsettled messages by status: how many, and the oldest one's creation
/// (the query repeats the condition of `messages_unsettled`, which serves it).
pub(super) const PENDING_BY_STATUS: &str = "SELECT status, COUNT(*), MIN(created_at) FROM messages
     WHERE (status = 'received' OR status = 'queued' OR status = 'sending') GROUP BY status";

/// True when `m` was stored before within the dedup windows: by the
/// provider's id, or (with none) by sender and text.
fn already_stored(
    conn: &Connection,
    recent: &mut RecentTexts,
    backend: &str,
    m: &NewInbound,
    dedup: DedupWindows,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let found = match &m.external_id {
        Some(external_id) if dedup.provider_id_ms > 0 => {
            conn.prepare_cached(SAME_PROVIDER_ID)?.exists(params![backend, external_id, now - dedup.provider_id_ms])?
        }
        None if dedup.same_text_ms > 0 => {
            recent.seen(conn, (backend, &m.identity, &m.text), dedup.same_text_ms, now)?
        }
        _ => false,
    };
    Ok(found)
}

/// Marks one inbound message handled (or failed in an app) and queues its
/// replies; a message already handled queues nothing.
fn complete_one(conn: &Connection, outcome: &InboundOutcome) -> Result<Vec<MessageId>, StoreError> {
    let status = if outcome.error.is_some() { MessageStatus::AppError } else { MessageStatus::Handled };
    let changed = conn
        .prepare_cached(
            "UPDATE messages SET status = ?2, last_error = ?3, updated_at = ?4
             WHERE id = ?1 AND direction = 'in' AND status = 'received'",
        )?
        .execute(params![outcome.id, status.as_str(), outcome.error, now_ms()])?;
    if changed == 0 {
        return Ok(Vec::new());
    }
    outcome.replies.iter().map(|r| enqueue_on(conn, r)).collect()
}

/// (message id, identity, status) of the recipients of `backend` whose
/// `column` equals `key`, restricted to `identity` when the report names one.
fn report_targets(
    conn: &Connection,
    column: &str,
    key: &dyn rusqlite::ToSql,
    backend: &str,
    identity: Option<&str>,
) -> Result<Vec<(MessageId, String, String)>, StoreError> {
    let sql = format!(
        "SELECT r.message_id, r.identity, r.status FROM recipients r JOIN messages m ON m.id = r.message_id
         WHERE {column} = ?1 AND m.backend = ?2 AND (?3 IS NULL OR r.identity = ?3)"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![key, backend, identity], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn apply_report(conn: &Connection, backend: &str, r: &NewReport) -> Result<bool, StoreError> {
    let now = now_ms();
    // Find the recipients the report is about: by gateway id, or by provider id.
    let targets = if let Some(mid) = r.message_id.as_deref().and_then(|s| s.trim().parse::<MessageId>().ok()) {
        report_targets(conn, "r.message_id", &mid, backend, r.identity.as_deref())?
    } else if let Some(ext) = &r.external_id {
        report_targets(conn, "r.external_id", ext, backend, r.identity.as_deref())?
    } else {
        Vec::new()
    };
    let matched = !targets.is_empty();
    conn.prepare_cached(
        "INSERT INTO reports (backend, message_id, external_id, identity, status, detail, matched, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        backend,
        r.message_id,
        r.external_id,
        r.identity,
        r.status.as_str(),
        r.detail,
        matched,
        now
    ])?;
    let mut touched = Vec::new();
    for (mid, identity, current) in targets {
        let current = RecipientStatus::parse(&current).unwrap_or(RecipientStatus::Queued);
        // A report for a still-queued recipient means the provider has it: it
        // can arrive before the send attempt is recorded (Kannel's fake SMSC
        // reports within milliseconds), or after an attempt that timed out on
        // our side. Either way it must count, and the recipient is not resent.
        if rank(r.status) < rank(current) {
            continue;
        }
        if rank(r.status) == rank(current) && current != RecipientStatus::Sent {
            continue;
        }
        let error = if r.status == RecipientStatus::Failed { r.detail.clone() } else { None };
        conn.prepare_cached(
            "UPDATE recipients SET status = ?3, error = COALESCE(?4, error), updated_at = ?5
             WHERE message_id = ?1 AND identity = ?2",
        )?
        .execute(params![mid, identity, r.status.as_str(), error, now])?;
        touched.push(mid);
    }
    touched.dedup();
    for mid in touched {
        refresh_status(conn, mid)?;
    }
    Ok(matched)
}

#[async_trait::async_trait]
impl MessageStore for SqliteStore {
    async fn record_inbound(
        &self,
        backend: &str,
        messages: Vec<NewInbound>,
        reports: Vec<NewReport>,
        dedup: DedupWindows,
    ) -> Result<InboundRecorded, StoreError> {
        let backend = backend.to_string();
        let recent = self.recent.clone();
        self.run(move |conn| {
            // Only the writer thread takes it: never contended.
            let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
            let mut recorded = InboundRecorded::default();
            for m in &messages {
                if already_stored(conn, &mut recent, &backend, m, dedup)? {
                    recorded.duplicates += 1;
                    continue;
                }
                let id = insert_message(
                    conn,
                    NewRow {
                        direction: Direction::In,
                        backend: &backend,
                        identity: Some(&m.identity),
                        text: &m.text,
                        external_id: m.external_id.as_deref(),
                        fields: &m.fields,
                        in_response_to: None,
                        context: &serde_json::Map::new(),
                        // Decided already: stored handled, so never in the pending index.
                        status: if m.decided.is_some() { MessageStatus::Handled } else { MessageStatus::Received },
                        next_attempt_at: None,
                        received_at: m.received_at,
                    },
                )?;
                if m.external_id.is_none() {
                    recent.remember((&backend, &m.identity, &m.text), id, now_ms());
                }
                if let Some(replies) = &m.decided {
                    for text in replies {
                        enqueue_on(conn, &reply_to(id, &backend, &m.identity, text.clone()))?;
                    }
                    recorded.replies_queued += replies.len();
                    recorded.settled.push(id);
                }
                recorded.messages.push(InboundMessage {
                    id,
                    backend: backend.clone(),
                    identity: m.identity.clone(),
                    text: m.text.clone(),
                    external_id: m.external_id.clone(),
                    fields: m.fields.clone(),
                    received_at: m.received_at,
                });
            }
            for r in &reports {
                if apply_report(conn, &backend, r)? {
                    recorded.reports_matched += 1;
                } else {
                    recorded.reports_unmatched += 1;
                }
            }
            Ok(recorded)
        })
        .await
    }

    async fn unprocessed_inbound(&self, limit: usize) -> Result<Vec<InboundMessage>, StoreError> {
        self.run(move |conn| {
            // The unsettled index serves this too (an index of its own cost
            // every inbound message two more B-tree writes); SQLite uses a
            // partial index when the query implies its condition, as
            // `status = 'received'` implies the index's OR.
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages INDEXED BY messages_unsettled
                 WHERE status = 'received' AND direction = 'in'
                 ORDER BY created_at, id LIMIT ?1"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([limit as i64], read_inbound)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn complete_inbound(&self, outcomes: Vec<InboundOutcome>) -> Result<Vec<Vec<MessageId>>, StoreError> {
        self.run(move |conn| outcomes.iter().map(|outcome| complete_one(conn, outcome)).collect()).await
    }

    async fn get(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        self.run(move |conn| {
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1");
            let Some(mut m) = conn.prepare_cached(&sql)?.query_row([id], read_message).optional()? else {
                return Ok(None);
            };
            if m.direction == Direction::Out {
                m.recipients = recipients_of(conn, id)?;
            }
            Ok(Some(m))
        })
        .await
    }

    async fn list(&self, filter: MessageFilter) -> Result<Vec<Message>, StoreError> {
        self.run(move |conn| {
            let order = if filter.after.is_some() { "ASC" } else { "DESC" };
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE (?1 IS NULL OR direction = ?1)
                 AND (?2 IS NULL OR backend = ?2) AND (?3 IS NULL OR status = ?3)
                 AND (?4 IS NULL OR created_at >= ?4) AND (?5 IS NULL OR created_at < ?5)
                 AND (?6 IS NULL OR id < ?6) AND (?7 IS NULL OR id > ?7)
                 ORDER BY id {order} LIMIT ?8"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![
                    filter.direction.map(|d| d.as_str()),
                    filter.backend,
                    filter.status.map(|s| s.as_str()),
                    filter.since,
                    filter.until,
                    filter.before,
                    filter.after,
                    filter.limit as i64
                ],
                read_message,
            )?;
            let mut messages: Vec<Message> = rows.collect::<Result<_, _>>()?;
            for m in &mut messages {
                if m.direction == Direction::Out {
                    m.recipients = recipients_of(conn, m.id)?;
                }
            }
            Ok(messages)
        })
        .await
    }

    async fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(PENDING_BY_STATUS)?;
            let rows = stmt.query_map([], |r| {
                let status: String = r.get(0)?;
                Ok((status, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?))
            })?;
            let mut pending = Vec::new();
            for row in rows {
                let (status, count, oldest_created_at) = row?;
                if let Some(status) = MessageStatus::parse(&status) {
                    pending.push(Pending { status, count: count as u64, oldest_created_at });
                }
            }
            Ok(pending)
        })
        .await
    }
}
