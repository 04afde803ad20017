//! Mapping rows to the store's types, shared by the message and queue halves.

use rusqlite::{Connection, Row, params};

use crate::store::*;

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// The columns of a new `messages` row.
pub(super) struct NewRow<'a> {
    pub(super) direction: Direction,
    pub(super) backend: &'a str,
    pub(super) identity: Option<&'a str>,
    pub(super) text: &'a str,
    pub(super) external_id: Option<&'a str>,
    pub(super) fields: &'a [(String, String)],
    pub(super) in_response_to: Option<MessageId>,
    pub(super) context: &'a serde_json::Map<String, serde_json::Value>,
    pub(super) status: MessageStatus,
    pub(super) next_attempt_at: Option<Millis>,
    pub(super) received_at: Option<Millis>,
}

/// How every message is stored.
pub(super) const INSERT_MESSAGE: &str =
    "INSERT INTO messages (direction, backend, identity, text, external_id, fields, in_response_to,
         context, status, next_attempt_at, received_at, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)";

pub(super) fn insert_message(conn: &Connection, row: NewRow<'_>) -> Result<MessageId, StoreError> {
    let now = now_ms();
    conn.prepare_cached(INSERT_MESSAGE)?.execute(params![
        row.direction.as_str(),
        row.backend,
        row.identity,
        row.text,
        row.external_id,
        to_json(&row.fields),
        row.in_response_to,
        to_json(row.context),
        row.status.as_str(),
        row.next_attempt_at,
        row.received_at,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

pub(super) const MESSAGE_COLUMNS: &str =
    "id, direction, backend, identity, text, external_id, fields, in_response_to, context,
     status, attempts, next_attempt_at, last_error, received_at, created_at, updated_at";

/// A stored message status; an unknown spelling is a conversion error, not a guess.
fn read_status(row: &Row<'_>, index: usize) -> rusqlite::Result<MessageStatus> {
    let text: String = row.get(index)?;
    MessageStatus::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, format!("status '{text}'").into())
    })
}

pub(super) fn read_message(row: &Row<'_>) -> rusqlite::Result<Message> {
    let direction: String = row.get(1)?;
    let fields: String = row.get(6)?;
    let context: String = row.get(8)?;
    Ok(Message {
        id: row.get(0)?,
        direction: if direction == "in" { Direction::In } else { Direction::Out },
        backend: row.get(2)?,
        identity: row.get(3)?,
        text: row.get(4)?,
        external_id: row.get(5)?,
        fields: serde_json::from_str(&fields).unwrap_or_default(),
        in_response_to: row.get(7)?,
        context: serde_json::from_str(&context).unwrap_or_default(),
        status: read_status(row, 9)?,
        attempts: row.get(10)?,
        next_attempt_at: row.get(11)?,
        last_error: row.get(12)?,
        received_at: row.get(13)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
        recipients: Vec::new(),
    })
}

pub(super) fn recipients_of(conn: &Connection, id: MessageId) -> Result<Vec<Recipient>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT identity, status, external_id, error, updated_at FROM recipients WHERE message_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map([id], |r| {
        let status: String = r.get(1)?;
        Ok(Recipient {
            identity: r.get(0)?,
            status: RecipientStatus::parse(&status).unwrap_or(RecipientStatus::Queued),
            external_id: r.get(2)?,
            error: r.get(3)?,
            updated_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An inbound row as the apps see it.
pub(super) fn read_inbound(row: &Row<'_>) -> rusqlite::Result<InboundMessage> {
    let m = read_message(row)?;
    Ok(InboundMessage {
        id: m.id,
        backend: m.backend,
        identity: m.identity.unwrap_or_default(),
        text: m.text,
        external_id: m.external_id,
        fields: m.fields,
        received_at: m.received_at,
    })
}
