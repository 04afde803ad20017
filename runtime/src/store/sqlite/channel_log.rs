//! The channel log's entries: one JSON document per exchange, and which
//! messages each one touched.

use rusqlite::params;

use super::SqliteStore;
use crate::store::*;

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
        self.run(move |conn| {
            let mut insert = conn.prepare_cached(
                "INSERT INTO channel_log (backend, entry, bytes, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut link = conn
                .prepare_cached("INSERT OR IGNORE INTO channel_log_messages (message_id, entry_id) VALUES (?1, ?2)")?;
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
        self.run(move |conn| {
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
        self.run(move |conn| {
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
