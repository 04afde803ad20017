//! The database schema, created on first open.

use rusqlite::Connection;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    backend         TEXT NOT NULL,
    identity        TEXT,
    text            TEXT NOT NULL,
    external_id     TEXT,
    fields          TEXT NOT NULL DEFAULT '[]',
    in_response_to  INTEGER REFERENCES messages(id),
    context         TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    received_at     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_due ON messages(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
-- Unprocessed inbound messages are found through messages_unsettled.
DROP INDEX IF EXISTS messages_unprocessed;
CREATE INDEX IF NOT EXISTS messages_by_backend ON messages(backend, id);
CREATE INDEX IF NOT EXISTS messages_queued ON messages(backend, next_attempt_at, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS messages_inbound_by_external_id ON messages(backend, external_id, created_at)
    WHERE direction = 'in' AND external_id IS NOT NULL;
-- Messages not settled yet. Its condition is spelled with OR: as an IN list
-- of three, SQLite built a temporary B-tree to test it on every insert and
-- status update (an IN list of constants longer than two is a table).
DROP INDEX IF EXISTS messages_pending;
CREATE INDEX IF NOT EXISTS messages_unsettled ON messages(status, created_at)
    WHERE status = 'received' OR status = 'queued' OR status = 'sending';
-- Same sender and same text within the de-dup window: kept in the writer's
-- memory (see recent.rs); both indexes it had are gone.
DROP INDEX IF EXISTS messages_inbound_by_sender;
DROP INDEX IF EXISTS messages_inbound_by_sender_text;
CREATE TABLE IF NOT EXISTS recipients (
    message_id  INTEGER NOT NULL REFERENCES messages(id),
    identity    TEXT NOT NULL,
    status      TEXT NOT NULL,
    external_id TEXT,
    error       TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (message_id, identity)
);
CREATE INDEX IF NOT EXISTS recipients_by_external_id ON recipients(external_id) WHERE external_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS backend_versions (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    settings    TEXT NOT NULL,
    wit_version TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL,
    active      INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    message_id   INTEGER NOT NULL REFERENCES messages(id),
    created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys(created_at);
CREATE TABLE IF NOT EXISTS reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    backend     TEXT NOT NULL,
    message_id  TEXT,
    external_id TEXT,
    identity    TEXT,
    status      TEXT NOT NULL,
    detail      TEXT,
    matched     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
"#;

/// Creates whatever is missing. (The channel log's tables, here until
/// 2026-12, are in their own database now: `channel_log::open` moves them.)
pub(super) fn apply(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}
