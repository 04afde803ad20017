//! The gateway's log under a guest's control: forged lines (CR/LF, escape
//! sequences) in every channel a guest writes through, and a flood.

use std::time::Duration;

use serde_json::Value;

use super::common::{Gateway, test_guest};
use super::{TOKEN, serial, with_admin};

const FORGED: &str = "2026-12-02T00:00:00.000000Z  INFO smsgw::gateway: FORGED";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_cannot_forge_log_lines_or_flood_the_log() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[apps]\norder = []\n[[backends]]\nname = \"evil\"\ncomponent = \"{}\"\n",
        test_guest("hostile").display()
    );
    let gw = Gateway::start_with(with_admin(), dir.path(), &config).await;

    // The log interface, stdout, stderr and an `other` error reason, each with CR/LF.
    let (status, _) = gw.inbound_get("/backends/evil/?identity=x&text=forge-log").await;
    assert_eq!(status, 500);
    let log = gw.log();
    assert!(!log.lines().any(|l| l.starts_with(FORGED)), "a guest forged a log line:\n{log}");
    assert!(!log.contains('\u{1b}'), "a guest wrote an escape sequence into the log");
    let escaped = log.lines().filter(|l| l.contains("\\n2026-12-02T00:00:00.000000Z") && l.contains("evil")).count();
    assert!(escaped >= 3, "the forged text appears escaped, tagged with the backend ({escaped} lines):\n{log}");

    // A flood: 64 lines per call (the per-call cap), many calls at once.
    let before = gw.log().lines().count();
    let mut calls = Vec::new();
    for _ in 0..60 {
        let (http, url) = (gw.http.clone(), gw.url("/backends/evil/?identity=x&text=flood-log"));
        calls.push(tokio::spawn(async move { http.get(url).send().await.map(|r| r.status().as_u16()) }));
    }
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), 200);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let written = gw.log().lines().count() - before;
    let r = gw.http.get(gw.url("/api/v1/admin/backends/evil")).bearer_auth(TOKEN).send().await.unwrap();
    let shown: Value = r.json().await.unwrap();
    let dropped = shown["counters"]["log_lines_dropped"].as_u64().unwrap();
    println!("| 60 calls x 64 log lines | {written} lines written, {dropped} dropped |");
    assert!(dropped > 2000, "the flood was not cut: {dropped} dropped, {written} written");
    assert!(written < 1500, "{written} lines of 3840 reached the log");
}
