//! Group commit, pipelined: the writer thread takes what is queued, runs it
//! in one transaction with a savepoint per operation (a failing one rolls
//! back alone) and commits; the syncer thread makes the write-ahead log
//! durable (one `fdatasync` for every batch committed since its last one) and
//! only then answers each caller. The writer never waits for the disk, so the
//! next batch runs while the previous one is being synced: the gateway stays
//! CPU-bound instead of waiting for one fsync per batch, and nothing is
//! acknowledged before it is on disk (the guarantee of `synchronous=FULL`).

use std::fs::File;
use std::sync::mpsc;

use rusqlite::Connection;

use crate::metrics::metrics;
use crate::store::StoreError;

/// Operations run per transaction at most.
const MAX_BATCH: usize = 512;

/// Called with the batch's commit result once it is known.
pub(super) type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Runs an operation on the connection, or, given `None` (its batch could
/// not begin), only hands back its completion.
pub(super) type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Completion) + Send>;

/// A committed batch waiting for the log to reach the disk.
type Committed = Vec<Completion>;

/// Where a committed batch's answers go: straight to the callers (SQLite
/// synced on commit), or through the syncer.
pub(super) enum Durability {
    /// `synchronous=FULL`: the commit itself synced.
    OnCommit,
    /// `synchronous=NORMAL` plus our own sync of this write-ahead log before answering.
    Pipelined(File),
}

/// Makes everything committed so far durable, then answers its callers.
fn sync_loop(wal: File, rx: mpsc::Receiver<Committed>) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        let syncing = std::time::Instant::now();
        // fsync covers every write to the file so far, whichever descriptor made it.
        let synced = wal.sync_data().map_err(|e| StoreError::Database(format!("cannot sync the write-ahead log: {e}")));
        metrics().store_commit(syncing.elapsed());
        for done in batches.into_iter().flatten() {
            done(synced.clone());
        }
    }
}

/// Starts the syncer on `wal`; returns where committed batches go, and a
/// handle of the log to sync with should the syncer be gone.
fn start_syncer(wal: File) -> std::io::Result<(mpsc::Sender<Committed>, File)> {
    let own = wal.try_clone()?;
    let (tx, rx) = mpsc::channel::<Committed>();
    std::thread::Builder::new().name("smsgw-store-sync".into()).spawn(move || sync_loop(wal, rx))?;
    Ok((tx, own))
}

/// The writer loop: take what is queued, run it in one transaction, commit,
/// then answer (after the syncer's fsync when pipelined).
pub(super) fn run(conn: Connection, rx: mpsc::Receiver<Job>, durability: Durability) {
    let synced = match durability {
        Durability::OnCommit => None,
        Durability::Pipelined(wal) => match start_syncer(wal) {
            Ok(syncer) => Some(syncer),
            Err(e) => {
                // Without the syncer nothing would be durable: sync on commit instead.
                tracing::error!("cannot start the store's sync thread ({e}); syncing on every commit");
                let _ = conn.pragma_update(None, "synchronous", "FULL");
                None
            }
        },
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completions = Vec::with_capacity(batch.len());
        let begin = conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = begin {
            let msg = e.to_string();
            for job in batch {
                // Run nothing; tell each caller the batch could not start.
                let (_, done) = job(None);
                done(Err(StoreError::Database(msg.clone())));
            }
            continue;
        }
        for job in batch {
            let savepoint = run_cached(&conn, "SAVEPOINT op");
            let (ok, done) = job(Some(&conn));
            if savepoint.is_ok() {
                let end = if ok {
                    run_cached(&conn, "RELEASE op")
                } else {
                    run_cached(&conn, "ROLLBACK TO op").and_then(|_| run_cached(&conn, "RELEASE op"))
                };
                if let Err(e) = end {
                    tracing::error!("store savepoint failed: {e}");
                }
            }
            completions.push(done);
        }
        let committing = std::time::Instant::now();
        let commit = conn.execute_batch("COMMIT").map_err(|e| StoreError::Database(e.to_string()));
        if synced.is_none() {
            metrics().store_commit(committing.elapsed());
        }
        match (commit, &synced) {
            (Ok(()), Some((syncer, wal))) => {
                if let Err(mpsc::SendError(completions)) = syncer.send(completions) {
                    // The syncer is gone (only a panicking caller could do that): sync here.
                    let synced = wal.sync_data().map_err(|e| StoreError::Database(e.to_string()));
                    for done in completions {
                        done(synced.clone());
                    }
                }
            }
            (Ok(()), None) => completions.into_iter().for_each(|done| done(Ok(()))),
            (Err(e), _) => {
                let _ = conn.execute_batch("ROLLBACK");
                for done in completions {
                    done(Err(e.clone()));
                }
            }
        }
    }
}

/// Runs a parameterless statement through the statement cache (the
/// savepoints around every operation would otherwise be parsed each time).
pub(super) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
