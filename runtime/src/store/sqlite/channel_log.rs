//! The channel log's entries: one JSON document per exchange, and which
//! messages each one touched, in `channel-log.db` beside `smsgw.db`.
//!
//! A database of its own, with its own writer thread: an entry is larger
//! than the message it describes, and in the messages' database every entry
//! was written into the log of the very commits whose fsync the providers
//! wait for. Here its commits are not synced (`Durability::Lazy`): a crash
//! of the gateway loses no entry, a power cut may lose the last moments' of
//! them, which an operator's diagnostic record can afford and no message
//! depends on.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::*;

const SCHEMA: &str = r#"
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
"#;

/// Opens the channel log's database at `path`, moving into it the entries
/// that an older gateway kept in the messages' database (`main`).
pub(super) fn open(path: &Path, main: &Connection) -> anyhow::Result<Connection> {
    let conn = super::connect(path)?;
    conn.execute_batch(SCHEMA)?;
    move_from(main, path)?;
    Ok(conn)
}

/// Copies the entries and links of an older layout out of `main`, ids kept
/// (API cursors stay valid), then drops them there. Two transactions, as WAL
/// makes no commit atomic across databases: should the gateway stop between
/// them, the next start copies again and `OR IGNORE` skips what arrived.
fn move_from(main: &Connection, path: &Path) -> rusqlite::Result<()> {
    let old: Option<String> = main
        .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'channel_log'", [], |r| r.get(0))
        .optional()?;
    if old.is_none() {
        return Ok(());
    }
    main.execute("ATTACH DATABASE ?1 AS log", [path.to_string_lossy()])?;
    let moved = main.execute_batch(
        "BEGIN IMMEDIATE;
         INSERT OR IGNORE INTO log.channel_log (id, backend, entry, bytes, created_at)
             SELECT id, backend, entry, bytes, created_at FROM main.channel_log;
         INSERT OR IGNORE INTO log.channel_log_messages (message_id, entry_id)
             SELECT message_id, entry_id FROM main.channel_log_messages
             WHERE entry_id IN (SELECT id FROM main.channel_log);
         COMMIT;",
    );
    let detached = main.execute_batch("DETACH DATABASE log");
    moved.and(detached)?;
    main.execute_batch(
        "BEGIN IMMEDIATE;
         DROP TABLE IF EXISTS main.channel_log_messages;
         DROP TABLE main.channel_log;
         COMMIT;",
    )
}

#[async_trait::async_trait]
impl ChannelLogStore for SqliteStore {
    async fn record_exchanges(&self, exchanges: Vec<Exchange>) -> Result<(), StoreError> {
        // Serialised here, not on the writer thread, which every commit waits for.
        let entries = exchanges
            .into_iter()
            .map(|e| {
                let entry = serde_json::to_string(&e).map_err(|err| StoreError::Database(err.to_string()))?;
                Ok((e, entry))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.log
            .run(move |conn| {
                let mut insert = conn.prepare_cached(
                    "INSERT INTO channel_log (backend, entry, bytes, created_at) VALUES (?1, ?2, ?3, ?4)",
                )?;
                let mut link = conn.prepare_cached(
                    "INSERT OR IGNORE INTO channel_log_messages (message_id, entry_id) VALUES (?1, ?2)",
                )?;
                for (e, entry) in &entries {
                    insert.execute(params![e.backend, entry, entry.len() as i64, e.created_at])?;
                    let id = conn.last_insert_rowid();
                    for message in &e.message_ids {
                        link.execute(params![message, id])?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn exchanges(&self, filter: ExchangeFilter) -> Result<Vec<LoggedExchange>, StoreError> {
        self.log
            .run(move |conn| {
                let order = if filter.after.is_some() { "ASC" } else { "DESC" };
                let sql = format!(
                    "SELECT id, entry FROM channel_log WHERE (?1 IS NULL OR backend = ?1)
                 AND (?2 IS NULL OR id IN (SELECT entry_id FROM channel_log_messages WHERE message_id = ?2))
                 AND (?3 IS NULL OR id < ?3) AND (?4 IS NULL OR id > ?4)
                 ORDER BY id {order} LIMIT ?5"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(
                    params![filter.backend, filter.message_id, filter.before, filter.after, filter.limit as i64],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
                )?;
                let mut entries = Vec::new();
                for row in rows {
                    let (id, entry) = row?;
                    if let Ok(exchange) = serde_json::from_str(&entry) {
                        entries.push(LoggedExchange { id, exchange });
                    }
                }
                Ok(entries)
            })
            .await
    }

    async fn prune_exchanges(&self, before: Millis, max_bytes: u64) -> Result<usize, StoreError> {
        self.log
            .run(move |conn| {
                let mut removed =
                    conn.prepare_cached("DELETE FROM channel_log WHERE created_at < ?1")?.execute([before])?;
                // The newest entries that fit in `max_bytes` stay.
                let cut: Option<i64> = conn
                    .prepare_cached(
                        "SELECT id FROM (SELECT id, SUM(bytes) OVER (ORDER BY id DESC) AS total FROM channel_log)
                     WHERE total > ?1 ORDER BY id DESC LIMIT 1",
                    )?
                    .query_row([max_bytes.min(i64::MAX as u64) as i64], |r| r.get(0))
                    .ok();
                if let Some(cut) = cut {
                    removed += conn.prepare_cached("DELETE FROM channel_log WHERE id <= ?1")?.execute([cut])?;
                }
                // Links go with their entries (ON DELETE CASCADE).
                Ok(removed)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::super::SqliteStore;
    use super::super::tests::exchange;
    use crate::store::{ChannelLogStore, ExchangeFilter};

    fn entry(body: &str, message: i64) -> String {
        serde_json::to_string(&exchange("k", 1, body, vec![message])).unwrap()
    }

    /// The channel log as a gateway before 2026-12 kept it, in `smsgw.db`
    /// (its link table still in the older, rowid form).
    fn old_layout(db: &std::path::Path) {
        let conn = Connection::open(db).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS channel_log (id INTEGER PRIMARY KEY AUTOINCREMENT, backend TEXT NOT NULL,
                 entry TEXT NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS channel_log_messages (message_id INTEGER NOT NULL,
                 entry_id INTEGER NOT NULL REFERENCES channel_log(id) ON DELETE CASCADE,
                 PRIMARY KEY (message_id, entry_id));",
        )
        .unwrap();
        for (id, body, message) in [(1, "one", 7), (2, "two", 8)] {
            conn.execute(
                "INSERT OR IGNORE INTO channel_log VALUES (?1, 'k', ?2, 10, 1)",
                rusqlite::params![id, entry(body, message)],
            )
            .unwrap();
            conn.execute("INSERT OR IGNORE INTO channel_log_messages VALUES (?1, ?2)", [message, id]).unwrap();
        }
    }

    async fn ids(store: &SqliteStore, message_id: Option<i64>) -> Vec<i64> {
        let filter = ExchangeFilter { backend: Some("k".into()), message_id, limit: 10, ..Default::default() };
        store.exchanges(filter).await.unwrap().into_iter().map(|e| e.id).collect()
    }

    /// An older data dir keeps its entries, ids and links, now in their own
    /// database; a move cut short between its copy and its drop is finished
    /// at the next start without duplicates; new entries get new ids.
    #[tokio::test]
    async fn entries_move_out_of_the_messages_database() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("smsgw.db");
        old_layout(&main);
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(ids(&store, None).await, [2, 1]);
        assert_eq!(ids(&store, Some(8)).await, [2]);
        drop(store);
        let left: i64 = Connection::open(&main)
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE 'channel_log%'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "the old tables are gone from smsgw.db");

        // As if the last start had stopped after copying: the old tables are back.
        old_layout(&main);
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(ids(&store, None).await, [2, 1]);
        store.record_exchanges(vec![serde_json::from_str(&entry("three", 9)).unwrap()]).await.unwrap();
        assert_eq!(ids(&store, None).await, [3, 2, 1]);
        assert_eq!(ids(&store, Some(9)).await, [3]);
    }
}
