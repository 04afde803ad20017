//! The database schema, created on first open.

use rusqlite::{Connection, OptionalExtension};

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
-- Unprocessed inbound messages are found through messages_pending.
DROP INDEX IF EXISTS messages_unprocessed;
CREATE INDEX IF NOT EXISTS messages_by_backend ON messages(backend, id);
CREATE INDEX IF NOT EXISTS messages_queued ON messages(backend, next_attempt_at, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS messages_inbound_by_external_id ON messages(backend, external_id, created_at)
    WHERE direction = 'in' AND external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_pending ON messages(status, created_at)
    WHERE status IN ('received', 'queued', 'sending');
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
CREATE TABLE IF NOT EXISTS channel_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    backend    TEXT NOT NULL,
    entry      TEXT NOT NULL,
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS channel_log_by_backend ON channel_log(backend, id);
CREATE TABLE IF NOT EXISTS channel_log_messages (
    message_id INTEGER NOT NULL,
    entry_id   INTEGER NOT NULL REFERENCES channel_log(id) ON DELETE CASCADE,
    PRIMARY KEY (message_id, entry_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS channel_log_messages_by_entry ON channel_log_messages(entry_id);
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

/// Creates whatever is missing.
pub(super) fn apply(conn: &Connection) -> rusqlite::Result<()> {
    if !links_have_rowid(conn)? {
        return conn.execute_batch(SCHEMA);
    }
    // `channel_log_messages` was a rowid table beside its primary key's
    // index: two B-tree writes per logged message where one (the key itself)
    // does. Rebuilt once, in one transaction: the old table steps aside (its
    // index goes, the name is the new table's), the schema creates the new
    // one, the links move over.
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         ALTER TABLE channel_log_messages RENAME TO channel_log_messages_rowid;
         DROP INDEX IF EXISTS channel_log_messages_by_entry;
         {SCHEMA}
         INSERT INTO channel_log_messages (message_id, entry_id)
             SELECT message_id, entry_id FROM channel_log_messages_rowid;
         DROP TABLE channel_log_messages_rowid;
         COMMIT;"
    ))
}

/// True when the database has the link table in its old, rowid form.
fn links_have_rowid(conn: &Connection) -> rusqlite::Result<bool> {
    let sql: Option<String> = conn
        .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'channel_log_messages'", [], |r| {
            r.get(0)
        })
        .optional()?;
    // None: a new database, which the schema creates right.
    Ok(sql.is_some_and(|sql| !sql.to_ascii_uppercase().contains("WITHOUT ROWID")))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// A database made before the change keeps its links, now in the new table.
    #[test]
    fn links_move_to_a_table_without_rowid() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("old.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE channel_log (id INTEGER PRIMARY KEY AUTOINCREMENT, backend TEXT NOT NULL,
                 entry TEXT NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL);
             CREATE TABLE channel_log_messages (message_id INTEGER NOT NULL,
                 entry_id INTEGER NOT NULL REFERENCES channel_log(id) ON DELETE CASCADE,
                 PRIMARY KEY (message_id, entry_id));
             CREATE INDEX channel_log_messages_by_entry ON channel_log_messages(entry_id);
             INSERT INTO channel_log (backend, entry, bytes, created_at) VALUES ('k', '{}', 2, 1), ('k', '{}', 2, 2);
             INSERT INTO channel_log_messages VALUES (7, 1), (8, 1), (9, 2);",
        )
        .unwrap();
        super::apply(&conn).unwrap();
        super::apply(&conn).unwrap(); // and once more changes nothing
        let sql: String = conn
            .query_row("SELECT sql FROM sqlite_master WHERE name = 'channel_log_messages'", [], |r| r.get(0))
            .unwrap();
        assert!(sql.contains("WITHOUT ROWID"), "{sql}");
        let links: Vec<(i64, i64)> = conn
            .prepare("SELECT message_id, entry_id FROM channel_log_messages ORDER BY message_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(links, vec![(7, 1), (8, 1), (9, 2)]);
        // The entry index is back, and removing an entry still removes its links.
        conn.execute_batch("PRAGMA foreign_keys = ON; DELETE FROM channel_log WHERE id = 1").unwrap();
        let left: i64 = conn.query_row("SELECT COUNT(*) FROM channel_log_messages", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 1);
        let index: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'channel_log_messages_by_entry'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(index, 1);
    }
}
