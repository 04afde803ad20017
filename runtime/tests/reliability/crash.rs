//! kill -9 under load: no acknowledged inbound message is lost, and the only
//! outbound duplicates are the sends truly in flight at that instant.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::common::{Gateway, MockProvider};
use super::{deliveries, enqueue, http_backend, serial, wait_all_sent};

/// Loads `gw` with inbound requests from `clients` clients, kills it (SIGKILL)
/// after `kill_after`, and returns the texts it acknowledged with a 200.
async fn acknowledged_until_killed(gw: &mut Gateway, clients: usize, kill_after: Duration) -> Vec<String> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, url, acked) = (gw.http.clone(), gw.url("/backends/http/"), acked.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..50_000 {
                let text = format!("c{c}-n{n}");
                match http.get(format!("{url}?identity=%2B1&text={text}")).send().await {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(text),
                    Ok(_) => {}
                    Err(_) => return, // the gateway is gone
                }
            }
        }));
    }
    tokio::time::sleep(kill_after).await;
    gw.stop();
    for t in tasks {
        t.await.unwrap();
    }
    acked.lock().unwrap().clone()
}

/// The first column of `sql`'s rows in the database at `db`, read beside the running gateway.
fn column<T: rusqlite::types::FromSql, C: FromIterator<T>>(db: &std::path::Path, sql: &str) -> C {
    let db = rusqlite::Connection::open(db).unwrap();
    let mut stmt = db.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn stored_texts(gw: &Gateway) -> std::collections::HashSet<String> {
    column(&gw.data_dir.join("smsgw.db"), "SELECT text FROM messages WHERE direction = 'in'")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_inbound_message() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(dir.path(), "[apps]\norder = []\n").await;
    let mut acked_total = 0;
    for round in 0..3 {
        let acked = acknowledged_until_killed(&mut gw, 8, Duration::from_millis(800 + 300 * round)).await;
        let stored = stored_texts(&gw);
        let lost: Vec<_> = acked.iter().filter(|t| !stored.contains(*t)).collect();
        println!(
            "| kill -9 round {round} | {} acknowledged | {} stored | {} lost |",
            acked.len(),
            stored.len(),
            lost.len()
        );
        assert!(!acked.is_empty(), "the load reached the gateway");
        assert!(lost.is_empty(), "acknowledged but lost: {:?}", &lost[..lost.len().min(10)]);
        acked_total += acked.len();
        gw = gw.restart().await;
    }
    assert!(acked_total > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_repeats_only_the_sends_in_flight() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::delayed(Duration::from_millis(30)).await;
    let workers = 4;
    let config =
        format!("[apps]\norder = []\n[outbound]\nworkers = {workers}\n{}", http_backend("p", &provider.origin(), ""));
    let mut gw = Gateway::start(dir.path(), &config).await;
    let ids = enqueue(&gw, "p", 200).await;
    provider.wait_for(60, Duration::from_secs(30)).await;
    gw.stop(); // SIGKILL with sends in flight and a queue claimed ahead
    let gw = gw.restart().await;
    wait_all_sent(&gw, &ids, Duration::from_secs(60)).await;
    let counts = deliveries(&provider.received());
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    println!("| kill -9 mid-drain, {workers} workers | {} messages | {} duplicate sends |", ids.len(), duplicates);
    assert_eq!(counts.len(), ids.len(), "every message reached the provider");
    assert!(duplicates <= workers, "{duplicates} duplicates; only the {workers} sends in flight may repeat");
}

/// The channel log's ids.
fn logged_ids<C: FromIterator<i64>>(db: &std::path::Path) -> C {
    column(db, "SELECT id FROM channel_log ORDER BY id")
}

/// The channel log's commits are not fsync'ed one by one (its own database,
/// `Durability::Lazy`), but a crash of the process loses none of them: every
/// entry committed before kill -9 is there afterwards, and the database is
/// intact, for the gateway that starts on it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_every_committed_channel_log_entry() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(dir.path(), "[apps]\norder = []\n").await;
    let log_db = gw.data_dir.join("channel-log.db");
    let before = {
        let log_db = log_db.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(900)).await;
            tokio::task::spawn_blocking(move || logged_ids::<Vec<i64>>(&log_db)).await.unwrap()
        })
    };
    let acked = acknowledged_until_killed(&mut gw, 8, Duration::from_millis(1200)).await;
    let before = before.await.unwrap();
    assert!(!acked.is_empty() && !before.is_empty(), "the load reached the gateway and its log");
    let after: std::collections::HashSet<i64> = logged_ids(&log_db);
    let lost: Vec<_> = before.iter().filter(|id| !after.contains(*id)).collect();
    println!(
        "| kill -9, channel log | {} committed before | {} after | {} lost |",
        before.len(),
        after.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "committed log entries lost: {:?}", &lost[..lost.len().min(10)]);
    let check: String =
        rusqlite::Connection::open(&log_db).unwrap().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let gw = gw.restart().await;
    assert_eq!(gw.inbound_get("/backends/http/?identity=%2B1&text=after").await.0, 200);
}
