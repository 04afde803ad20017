//! Group commit, pipelined: the writer thread runs operations as they
//! arrive, each in a savepoint of one open transaction (a failing one rolls
//! back alone), and commits; the syncer thread makes the write-ahead log
//! durable (one `fdatasync` for every batch committed since its last one) and
//! only then answers each caller. While an fsync is in flight the writer keeps
//! running what arrives in the next transaction and commits it when the syncer
//! is free: the gateway stays CPU-bound instead of waiting for one fsync per
//! batch, each fsync costs one commit, and nothing is acknowledged before it
//! is on disk (the guarantee of `synchronous=FULL`).

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

/// What the writer thread is sent.
pub(super) enum Work {
    /// An operation to run in the current batch.
    Op(Job),
    /// The syncer finished an fsync and can take the next batch.
    Synced,
    /// The store is gone: commit what is open and stop.
    Shutdown,
}

/// Where a committed batch's answers go: straight to the callers (SQLite
/// synced on commit), or through the syncer.
pub(super) enum Durability {
    /// `synchronous=FULL`: the commit itself synced.
    OnCommit,
    /// `synchronous=NORMAL` plus our own sync of this write-ahead log before answering.
    Pipelined(File),
    /// `synchronous=NORMAL` alone: answered at commit, on disk by the next
    /// checkpoint. A crash of the gateway loses nothing committed, a power
    /// cut the last moments: for records no one is promised (the channel log).
    Lazy,
}

/// Makes everything committed so far durable, answers its callers, then
/// tells the writer it can take the next batch.
fn sync_loop(wal: File, rx: mpsc::Receiver<Committed>, writer: mpsc::Sender<Work>) {
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
        // The writer may be gone already (shutting down): nothing to tell.
        let _ = writer.send(Work::Synced);
    }
}

/// Starts the syncer on `wal`; returns where committed batches go, and a
/// handle of the log to sync with should the syncer be gone.
fn start_syncer(wal: File, writer: mpsc::Sender<Work>) -> std::io::Result<(mpsc::Sender<Committed>, File)> {
    let own = wal.try_clone()?;
    let (tx, rx) = mpsc::channel::<Committed>();
    std::thread::Builder::new().name("smsgw-store-sync".into()).spawn(move || sync_loop(wal, rx, writer))?;
    Ok((tx, own))
}

/// The writer loop. Operations run as they arrive, each in a savepoint of the
/// open transaction; the transaction commits as soon as the syncer can take
/// it (or it is full). While an fsync is in flight, arriving operations join
/// the open transaction instead of each committing on their own: one commit,
/// one set of log pages written, per fsync, which is the pace the answers go
/// out at anyway. `wake` is this loop's own channel, for the syncer.
pub(super) fn run(conn: Connection, rx: mpsc::Receiver<Work>, wake: mpsc::Sender<Work>, durability: Durability) {
    // `timed`: this loop's commits are the store's durable commits, timed in the metrics.
    let (synced, timed) = match durability {
        Durability::OnCommit => (None, true),
        Durability::Lazy => (None, false),
        Durability::Pipelined(wal) => match start_syncer(wal, wake) {
            Ok(syncer) => (Some(syncer), false),
            Err(e) => {
                // Without the syncer nothing would be durable: sync on commit instead.
                tracing::error!("cannot start the store's sync thread ({e}); syncing on every commit");
                let _ = conn.pragma_update(None, "synchronous", "FULL");
                (None, true)
            }
        },
    };
    // The answers of the operations run in the open transaction, if one is open.
    let mut open: Option<Vec<Completion>> = None;
    // A committed batch is at the syncer, which will say when it is done.
    let mut syncing = false;
    loop {
        let full = open.as_ref().is_some_and(|batch| batch.len() >= MAX_BATCH);
        let may_commit = open.is_some() && (!syncing || full);
        let work = if full {
            None
        } else if may_commit {
            // Take what is already queued first; commit when nothing is.
            rx.try_recv().ok()
        } else {
            Some(rx.recv().unwrap_or(Work::Shutdown))
        };
        match work {
            None => {
                if let Some(batch) = open.take() {
                    syncing = commit(&conn, batch, &synced, timed);
                }
            }
            Some(Work::Synced) => syncing = false,
            Some(Work::Op(job)) => run_op(&conn, &mut open, job),
            Some(Work::Shutdown) => {
                if let Some(batch) = open.take() {
                    commit(&conn, batch, &synced, timed);
                }
                return;
            }
        }
    }
}

/// Runs `job` in a savepoint of the open transaction, beginning one if needed.
fn run_op(conn: &Connection, open: &mut Option<Vec<Completion>>, job: Job) {
    if open.is_none() {
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Run nothing; tell the caller the batch could not start.
            let (_, done) = job(None);
            done(Err(StoreError::Database(e.to_string())));
            return;
        }
        *open = Some(Vec::new());
    }
    let savepoint = run_cached(conn, "SAVEPOINT op");
    let (ok, done) = job(Some(conn));
    if savepoint.is_ok() {
        let end = if ok {
            run_cached(conn, "RELEASE op")
        } else {
            run_cached(conn, "ROLLBACK TO op").and_then(|_| run_cached(conn, "RELEASE op"))
        };
        if let Err(e) = end {
            tracing::error!("store savepoint failed: {e}");
        }
    }
    if let Some(batch) = open {
        batch.push(done);
    }
}

/// Commits `batch` and hands its answers to the syncer (or answers them
/// directly when the commit itself synced, or failed). True when the syncer
/// took it, and so will say when it is done.
fn commit(
    conn: &Connection,
    completions: Vec<Completion>,
    synced: &Option<(mpsc::Sender<Committed>, File)>,
    timed: bool,
) -> bool {
    let committing = std::time::Instant::now();
    let commit = conn.execute_batch("COMMIT").map_err(|e| StoreError::Database(e.to_string()));
    if timed {
        metrics().store_commit(committing.elapsed());
    }
    match (commit, synced) {
        (Ok(()), Some((syncer, wal))) => match syncer.send(completions) {
            Ok(()) => true,
            Err(mpsc::SendError(completions)) => {
                // The syncer is gone (only a panicking caller could do that): sync here.
                let synced = wal.sync_data().map_err(|e| StoreError::Database(e.to_string()));
                for done in completions {
                    done(synced.clone());
                }
                false
            }
        },
        (Ok(()), None) => {
            completions.into_iter().for_each(|done| done(Ok(())));
            false
        }
        (Err(e), _) => {
            let _ = conn.execute_batch("ROLLBACK");
            for done in completions {
                done(Err(e.clone()));
            }
            false
        }
    }
}

/// A writer thread, seen from the async side: where its operations are sent.
pub(super) struct Writer {
    jobs: mpsc::Sender<Work>,
}

impl Writer {
    /// Starts a writer thread named `name` that owns `conn`.
    pub(super) fn start(name: &str, conn: Connection, durability: Durability) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Work>();
        let wake = jobs.clone();
        std::thread::Builder::new().name(name.into()).spawn(move || run(conn, rx, wake, durability))?;
        Ok(Writer { jobs })
    }

    /// Runs `op` on the writer thread inside a savepoint of the current
    /// batch; answers once the batch is committed (and as durable as the
    /// writer's [`Durability`] makes it).
    pub(super) async fn run<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
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

impl Drop for Writer {
    /// The syncer holds the writer's channel open, so the writer is told to stop.
    fn drop(&mut self) {
        let _ = self.jobs.send(Work::Shutdown);
    }
}

/// Runs a parameterless statement through the statement cache (the
/// savepoints around every operation would otherwise be parsed each time).
pub(super) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
