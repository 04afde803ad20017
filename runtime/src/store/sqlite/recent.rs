//! The sender+text de-dup window, in the writer thread's memory. An index on
//! (backend, sender, text) put every inbound message at a random place in a
//! B-tree: a leaf page of its own dirtied in every commit and often read back
//! from the OS, which cost 18 % of the pace bench's throughput. One writer
//! thread sees every insert of the embedded store, so it can remember the
//! window itself:
//!
//! - a hit is only a hint, confirmed by the row's id: an insert that was
//!   rolled back (or a hash collision) can never hide a message;
//! - the window is loaded from the database the first time it is asked for
//!   (after a restart, say), from the newest rows back;
//! - at most [`MAX_ENTRIES`] messages are remembered: beyond that the oldest
//!   are forgotten early, so a repeat can be stored twice but never lost.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use rusqlite::{Connection, params};

use crate::store::{MessageId, Millis, StoreError};

/// Messages remembered at most (about 50 bytes each).
pub(super) const MAX_ENTRIES: usize = 1_000_000;

/// Recent inbound messages without a provider id, by backend, sender and text.
pub(super) struct RecentTexts {
    hasher: RandomState,
    /// Key → the newest message with it, and when it was stored.
    newest: HashMap<u64, (MessageId, Millis)>,
    /// Keys in the order they were remembered, for forgetting.
    order: VecDeque<(Millis, u64)>,
    /// How far back the window reaches (the largest asked for); 0: never loaded.
    horizon_ms: Millis,
}

impl RecentTexts {
    pub(super) fn new() -> Self {
        RecentTexts { hasher: RandomState::new(), newest: HashMap::new(), order: VecDeque::new(), horizon_ms: 0 }
    }

    fn key(&self, backend: &str, identity: &str, text: &str) -> u64 {
        self.hasher.hash_one((backend, identity, text))
    }

    /// True when a message from `identity` with `text` was stored for
    /// `backend` within `window_ms` of `now`.
    pub(super) fn seen(
        &mut self,
        conn: &Connection,
        (backend, identity, text): (&str, &str, &str),
        window_ms: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        if window_ms > self.horizon_ms {
            self.load(conn, window_ms, now)?;
        }
        let key = self.key(backend, identity, text);
        let Some(&(id, stored_at)) = self.newest.get(&key) else { return Ok(false) };
        if stored_at < now - window_ms {
            return Ok(false);
        }
        let confirmed = conn
            .prepare_cached(
                "SELECT 1 FROM messages WHERE id = ?1 AND direction = 'in' AND backend = ?2 AND identity = ?3
                 AND text = ?4 AND external_id IS NULL",
            )?
            .exists(params![id, backend, identity, text])?;
        if !confirmed {
            self.newest.remove(&key);
        }
        Ok(confirmed)
    }

    /// Remembers message `id`, stored at `now`; forgets what the window no
    /// longer reaches.
    pub(super) fn remember(&mut self, (backend, identity, text): (&str, &str, &str), id: MessageId, now: Millis) {
        if self.horizon_ms == 0 {
            return; // never asked: the de-dup window is off
        }
        let key = self.key(backend, identity, text);
        self.newest.insert(key, (id, now));
        self.order.push_back((now, key));
        while let Some(&(at, key)) = self.order.front() {
            if at >= now - self.horizon_ms && self.order.len() <= MAX_ENTRIES {
                break;
            }
            self.order.pop_front();
            if self.newest.get(&key).is_some_and(|&(_, stored_at)| stored_at == at) {
                self.newest.remove(&key);
            }
        }
    }

    /// Rebuilds the window from the database: the newest rows back to
    /// `window_ms` before `now` (ids grow with time), uncommitted ones of the
    /// open transaction included, as the writer sees them.
    fn load(&mut self, conn: &Connection, window_ms: Millis, now: Millis) -> Result<(), StoreError> {
        self.newest.clear();
        self.order.clear();
        self.horizon_ms = window_ms;
        let mut stmt = conn.prepare(
            "SELECT id, backend, identity, text, created_at, direction = 'in' AND external_id IS NULL
             FROM messages ORDER BY id DESC",
        )?;
        let mut rows = stmt.query([])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let created_at: Millis = row.get(4)?;
            if created_at < now - window_ms || found.len() >= MAX_ENTRIES {
                break;
            }
            let (Some(identity), true) = (row.get::<_, Option<String>>(2)?, row.get::<_, bool>(5)?) else {
                continue;
            };
            found.push((
                row.get::<_, MessageId>(0)?,
                row.get::<_, String>(1)?,
                identity,
                row.get::<_, String>(3)?,
                created_at,
            ));
        }
        for (id, backend, identity, text, created_at) in found.into_iter().rev() {
            let key = self.key(&backend, &identity, &text);
            self.newest.insert(key, (id, created_at));
            self.order.push_back((created_at, key));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{DedupWindows, MessageStore, NewInbound, now_ms};

    fn hi(identity: &str) -> NewInbound {
        NewInbound {
            identity: identity.into(),
            text: "hi".into(),
            external_id: None,
            received_at: None,
            fields: vec![],
            decided: None,
        }
    }

    const WINDOWS: DedupWindows = DedupWindows { provider_id_ms: 0, same_text_ms: 60_000 };

    /// The window lives in memory, so a restart must load it back: a
    /// provider repeating a message across the restart is still caught.
    #[tokio::test]
    async fn a_repeat_is_caught_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.record_inbound("k", vec![hi("+1")], vec![], WINDOWS).await.unwrap().messages.len(), 1);
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        let again = store.record_inbound("k", vec![hi("+1"), hi("+2")], vec![], WINDOWS).await.unwrap();
        assert_eq!((again.messages.len(), again.duplicates), (1, 1));
        assert_eq!(again.messages[0].identity, "+2");
        let elsewhere = store.record_inbound("v", vec![hi("+1")], vec![], WINDOWS).await.unwrap();
        assert_eq!(elsewhere.duplicates, 0, "the window is per backend");
    }

    /// What memory says is only a hint: a remembered message that is not in
    /// the database (its insert rolled back, or another text with the same
    /// hash) must not make a new one a duplicate, which would acknowledge it
    /// without storing it. And what the window no longer reaches is no repeat.
    #[test]
    fn memory_is_confirmed_by_the_database_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap()); // creates the schema
        let conn = Connection::open(dir.path().join("smsgw.db")).unwrap();
        let mut recent = RecentTexts::new();
        let now = now_ms();
        let key = ("k", "+1", "hi");
        assert!(!recent.seen(&conn, key, 10_000, now).unwrap());
        recent.remember(key, 424_242, now);
        assert!(!recent.seen(&conn, key, 10_000, now).unwrap(), "a message that is not stored is no repeat");

        conn.execute(
            "INSERT INTO messages (id, direction, backend, identity, text, status, created_at, updated_at)
             VALUES (7, 'in', 'k', '+1', 'hi', 'received', ?1, ?1)",
            [now - 20_000],
        )
        .unwrap();
        recent.remember(key, 7, now - 20_000);
        assert!(!recent.seen(&conn, key, 10_000, now).unwrap(), "older than the window");
        assert!(recent.seen(&conn, key, 30_000, now).unwrap(), "a wider window reaches it (loaded again)");
        assert!(!recent.seen(&conn, ("k", "+1", "other"), 30_000, now).unwrap());
    }
}
