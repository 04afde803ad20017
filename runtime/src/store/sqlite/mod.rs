//! The embedded SQLite store (WAL; every answer waits for the log's fsync).
//!
//! One writer thread owns the connection and runs queued operations in
//! batches ([`writer`]): one transaction and one fsync for many operations
//! (group commit). The channel log lives in a database of its own with its
//! own writer ([`channel_log`]), so that its entries, larger than the
//! messages they describe, are neither in the messages' commits nor synced
//! with them. Each concern implements its trait in its own file.

mod channel_log;
mod messages;
mod queue;
mod recent;
mod rows;
mod schema;
mod versions;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::StoreError;
use rusqlite::Connection;
use writer::{Durability, Writer};

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// SQLite-backed store.
pub struct SqliteStore {
    /// Messages, the queue, backend versions: every commit synced.
    writer: Writer,
    /// The channel log's own database.
    log: Writer,
    /// The sender+text de-dup window (used on the writer thread only).
    recent: Arc<Mutex<recent::RecentTexts>>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// The database's write-ahead log, opened for syncing (SQLite keeps the file
/// while its connection is open), its directory entry made durable once.
fn open_wal(db: &Path) -> anyhow::Result<std::fs::File> {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    let wal = std::fs::File::open(&name)
        .map_err(|e| anyhow::anyhow!("cannot open the write-ahead log {}: {e}", Path::new(&name).display()))?;
    if let Some(dir) = db.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all())?;
    }
    Ok(wal)
}

/// Turns off SQLite's memory statistics, which take a global mutex on every
/// allocation SQLite makes (3 % of the writer thread's time under load).
/// They must be set before SQLite initialises, so this runs before the first
/// connection opens; should another part of the process have opened one
/// already, SQLite refuses and keeps them, which changes nothing else.
fn tune_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int. sqlite3_config must
        // not race SQLite's initialisation on another thread: in the gateway
        // the store opens the process's first connection, after this; later
        // calls SQLite refuses (SQLITE_MISUSE) and the Once makes this one.
        let rc = unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0) };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!("SQLite was initialised already; its memory statistics stay on");
        }
        if shared_page_cache() {
            tracing::warn!(
                "SQLite was built with ENABLE_MEMORY_MANAGEMENT: the channel log's writes will evict the \
                 messages' pages from the one page cache they share (build from the workspace, whose \
                 .cargo/config.toml leaves it out)"
            );
        }
    });
}

/// True when all connections of the process share one page cache and LRU
/// list (SQLite built with `ENABLE_MEMORY_MANAGEMENT`, as rusqlite's bundled
/// build does unless `.cargo/config.toml` undefines it): each writer's hot
/// pages must stay in a cache of its own (`cache_tests`).
pub(super) fn shared_page_cache() -> bool {
    // SAFETY: a NUL-terminated option name; the call only reads SQLite's
    // compile-time option list.
    unsafe { rusqlite::ffi::sqlite3_compileoption_used(c"ENABLE_MEMORY_MANAGEMENT".as_ptr()) != 0 }
}

impl SqliteStore {
    /// Opens (creating if needed) `smsgw.db` and `channel-log.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        tune_sqlite();
        std::fs::create_dir_all(data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", data_dir.display()))?;
        let path = data_dir.join("smsgw.db");
        let conn = connect(&path)?;
        schema::apply(&conn)?;
        let log = channel_log::open(&data_dir.join("channel-log.db"), &conn)?;
        let durability = match open_wal(&path) {
            Ok(wal) => Durability::Pipelined(wal),
            Err(e) => {
                tracing::warn!("{e}; syncing on every commit instead");
                conn.pragma_update(None, "synchronous", "FULL")?;
                Durability::OnCommit
            }
        };
        let writer = Writer::start("smsgw-store", conn, durability)?;
        let log = Writer::start("smsgw-store-log", log, Durability::Lazy)?;
        Ok(SqliteStore { writer, log, recent: Arc::new(Mutex::new(recent::RecentTexts::new())) })
    }

    /// Runs `op` on the messages' writer thread inside a savepoint of the current batch.
    async fn run<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.writer.run(op).await
    }
}

/// A connection as both writers use it: WAL; commits write the log without
/// waiting for the disk (the messages' writer syncs it itself before anyone
/// is answered, see `writer`).
fn connect(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every operation runs in a savepoint, whose journal of the pages it
    // changes went to a temporary file: a write system call per page on
    // the writer thread, for a journal that lives only as long as the
    // transaction (at most `writer::MAX_BATCH` operations).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // rusqlite keeps 16 by default, fewer than the store's distinct
    // statements: the queue's hot path was re-parsing SQL on every call.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod outcome_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod writer_tests;
