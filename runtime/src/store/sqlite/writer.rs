//! Group commit: the writer thread takes what is queued, runs it in one
//! transaction with a savepoint per operation (a failing one rolls back
//! alone), commits once, and only then answers each caller.

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

/// The writer loop: take what is queued, run it in one transaction, commit, answer.
pub(super) fn run(conn: Connection, rx: mpsc::Receiver<Job>) {
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
        metrics().store_commit(committing.elapsed());
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for done in completions {
            done(commit.as_ref().map(|_| ()).map_err(|e| StoreError::Database(e.to_string())));
        }
    }
}

/// Runs a parameterless statement through the statement cache (the
/// savepoints around every operation would otherwise be parsed each time).
pub(super) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
