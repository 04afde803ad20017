//! The embedded SQLite store (WAL; every answer waits for the log's fsync).
//!
//! One writer thread owns the connection and runs queued operations in
//! batches ([`writer`]): one transaction and one fsync for many operations
//! (group commit). Each concern implements its trait in its own file.

mod channel_log;
mod messages;
mod queue;
mod recent;
mod rows;
mod schema;
mod versions;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;
use writer::{Completion, Durability, Job, Work};

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// SQLite-backed store.
pub struct SqliteStore {
    jobs: mpsc::Sender<Work>,
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
    });
}

impl SqliteStore {
    /// Opens (creating if needed) `smsgw.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        tune_sqlite();
        std::fs::create_dir_all(data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", data_dir.display()))?;
        let path = data_dir.join("smsgw.db");
        let conn =
            Connection::open(&path).map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Commits write the log without waiting for the disk; the writer's
        // syncer makes it durable before anyone is answered (see `writer`).
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
        schema::apply(&conn)?;
        let durability = match open_wal(&path) {
            Ok(wal) => Durability::Pipelined(wal),
            Err(e) => {
                tracing::warn!("{e}; syncing on every commit instead");
                conn.pragma_update(None, "synchronous", "FULL")?;
                Durability::OnCommit
            }
        };
        let (jobs, rx) = mpsc::channel::<Work>();
        let wake = jobs.clone();
        std::thread::Builder::new()
            .name("smsgw-store".into())
            .spawn(move || writer::run(conn, rx, wake, durability))?;
        Ok(SqliteStore { jobs, recent: Arc::new(Mutex::new(recent::RecentTexts::new())) })
    }

    /// Runs `op` on the writer thread inside a savepoint of the current batch.
    async fn run<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // Without a connection the batch failed to begin; the commit error
            // given to the completion is what the caller sees.
            let result = conn.map_or(Err(StoreError::Closed), op);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, completion)
        });
        self.jobs.send(Work::Op(job)).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for SqliteStore {
    /// The syncer holds the writer's channel open, so the writer is told to stop.
    fn drop(&mut self) {
        let _ = self.jobs.send(Work::Shutdown);
    }
}

#[cfg(test)]
mod outcome_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod writer_tests;
