//! The writer loop driven directly, on databases and logs the store would
//! never open, to reach its failure paths.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::writer::{self, Durability, Job, Work};
use crate::store::StoreError;

/// Starts a pipelined writer on `conn` that syncs `log`; returns its channel.
fn spawn_writer(conn: rusqlite::Connection, log: std::fs::File) -> mpsc::Sender<Work> {
    let (jobs, rx) = mpsc::channel::<Work>();
    let wake = jobs.clone();
    std::thread::spawn(move || writer::run(conn, rx, wake, Durability::Pipelined(log)));
    jobs
}

/// Runs `sql` as one operation and waits (bounded) for its answer.
fn execute(jobs: &mpsc::Sender<Work>, sql: &'static str) -> Result<(), StoreError> {
    let (answer, answered) = mpsc::channel();
    let job: Job = Box::new(move |conn| {
        let ran = conn.map(|c| c.execute(sql, []).is_ok()).unwrap_or(false);
        (ran, Box::new(move |result| answer.send(result).unwrap()))
    });
    jobs.send(Work::Op(job)).unwrap();
    answered.recv_timeout(Duration::from_secs(10)).expect("the writer answered")
}

/// A database in write-ahead-log mode with `schema` applied.
fn wal_database(dir: &Path, schema: &str) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join("t.db")).unwrap();
    conn.execute_batch(&format!("PRAGMA journal_mode = WAL; {schema}")).unwrap();
    conn
}

/// With the pipelined commit, an answer waits for the log's fsync: when the
/// fsync fails (here the "log" is a pipe, which cannot be synced), nobody is
/// told that their write is durable, although SQLite committed it.
#[test]
fn nothing_is_acknowledged_before_the_log_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let conn = wal_database(dir.path(), "CREATE TABLE t (x INTEGER)");
    let (unsyncable, _writer) = std::io::pipe().unwrap();
    let jobs = spawn_writer(conn, std::fs::File::from(std::os::fd::OwnedFd::from(unsyncable)));
    let result = execute(&jobs, "INSERT INTO t VALUES (1)");
    let error = result.expect_err("acknowledged although the log was never synced").to_string();
    assert!(error.contains("cannot sync the write-ahead log"), "{error}");
}

/// A commit that fails (here a deferred foreign key; a full disk in
/// production) answers its callers with the error and leaves the writer ready:
/// the next operation commits and is answered once its fsync is done.
#[test]
fn a_failed_commit_does_not_stall_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let conn = wal_database(
        dir.path(),
        "PRAGMA foreign_keys = ON;
         CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
    );
    let jobs = spawn_writer(conn, std::fs::File::open(dir.path().join("t.db-wal")).unwrap());
    let error = execute(&jobs, "INSERT INTO child VALUES (42)").expect_err("the commit cannot succeed").to_string();
    assert!(error.contains("FOREIGN KEY"), "{error}");
    execute(&jobs, "INSERT INTO parent VALUES (1)").expect("the next commit succeeds");
}
