//! What each message costs the messages' writer beyond its own rows: no page
//! read back from the OS because the channel log wrote, no temporary B-tree
//! built to test an index's condition, no index scan where a seek will do.

use rusqlite::Connection;

use super::tests::{exchange, explain, query_plan, store};
use crate::store::*;

/// Pages the connection read from the OS since the last call (SQLite's own
/// cache misses; pages of a growing B-tree that are new are not reads).
fn cache_misses_since_last(conn: &Connection) -> i32 {
    let (mut current, mut highest) = (0, 0);
    // SAFETY: `conn.handle()` is the open connection this thread holds;
    // sqlite3_db_status only reads (and, with reset = 1, zeroes) its counter.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_CACHE_MISS,
            &mut current,
            &mut highest,
            1,
        )
    };
    assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
    current
}

fn message(n: usize) -> NewInbound {
    NewInbound { identity: format!("+2557{n:08}"), text: format!("hello world {n}"), ..Default::default() }
}

/// Each writer keeps its hot pages in a cache of its own (see
/// `shared_page_cache`): batches of large channel-log entries between inbound
/// messages must not make the messages' writer read its B-tree pages back,
/// even once its database has outgrown its cache (shrunk here so that it does
/// quickly). With one shared cache it read back about 10,000 pages here.
#[tokio::test]
async fn channel_log_batches_leave_the_messages_pages_cached() {
    assert!(!super::shared_page_cache(), "SQLite built with one page cache for all connections");
    let (_dir, store) = store();
    let small = |conn: &Connection| Ok(conn.pragma_update(None, "cache_size", -256)?);
    store.run(small).await.unwrap();
    store.log.run(small).await.unwrap();
    store.record_inbound("k", vec![message(0)], vec![], DedupWindows::OFF).await.unwrap();
    store.run(|conn| Ok(cache_misses_since_last(conn))).await.unwrap();
    let body = "x".repeat(1200);
    let mut n = 1;
    for round in 0..50 {
        let entries = (0..300).map(|i| exchange("k", round * 300 + i, &body, vec![i])).collect();
        store.record_exchanges(entries).await.unwrap();
        for _ in 0..10 {
            let batch = (n..n + 6).map(message).collect();
            store.record_inbound("k", batch, vec![], DedupWindows::OFF).await.unwrap();
            n += 6;
        }
    }
    let misses = store.run(|conn| Ok(cache_misses_since_last(conn))).await.unwrap();
    assert!(misses < 50, "the messages' writer read {misses} pages back while storing {n} messages");
}

/// Statements that store a message or change its status test the conditions
/// of the partial indexes; none may need a temporary B-tree for it (an IN
/// list of three constants did, on every insert).
#[tokio::test]
async fn storing_and_settling_build_no_temporary_btree() {
    let (dir, _store) = store();
    let conn = Connection::open(dir.path().join("smsgw.db")).unwrap();
    for sql in [super::rows::INSERT_MESSAGE, "UPDATE messages SET status = ?1, updated_at = ?2 WHERE id = ?3"] {
        let ops = explain(&conn, &format!("EXPLAIN {sql}"), 1);
        assert!(!ops.iter().any(|op| op == "OpenEphemeral"), "{sql} builds a temporary B-tree: {ops:?}");
    }
    let plan = query_plan(&conn, super::messages::PENDING_BY_STATUS);
    assert!(plan.iter().any(|step| step.contains("messages_unsettled")), "{plan:?}");
}

/// The queue's skip-scan over backends seeks the queue index once per
/// backend; on `messages_unsettled`, whose condition `status = 'queued'`
/// implies too, it read every queued message for each step.
#[tokio::test]
async fn the_queue_skip_scan_seeks_the_queue_index() {
    let (dir, _store) = store();
    let conn = Connection::open(dir.path().join("smsgw.db")).unwrap();
    let plan = query_plan(&conn, super::queue::QUEUED_BACKENDS);
    let seeks: Vec<_> = plan.iter().filter(|step| step.contains(" USING ")).collect();
    assert_eq!(seeks.len(), 2, "{plan:?}");
    assert!(seeks.iter().all(|step| step.contains("messages_queued")), "{plan:?}");
}
