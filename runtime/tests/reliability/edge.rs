//! The edges: a second gateway on the same data, clients that never finish
//! their headers or bodies, requests over the limits, and reading everything
//! back through the message list's cursor.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::common::Gateway;
use super::serial;

#[tokio::test]
async fn a_second_gateway_on_the_same_data_is_refused() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), "").await;
    let second = gw.start_second();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second gateway started on the same data dir");
    assert!(stderr.contains(&format!("in use by another smsgw (PID {})", gw.pid())), "{stderr}");
    assert_eq!(gw.inbound_get("/healthz").await.0, 200, "the first one is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_block_healthz_or_shutdown() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let config =
        "shutdown_timeout_ms = 3000\n[http]\nheader_timeout_ms = 2000\nbody_timeout_ms = 1000\nmax_connections = 200\n";
    let mut gw = Gateway::start(dir.path(), config).await;
    // A body that never arrives: 408 after body_timeout_ms.
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
        s.write_all(b"POST /backends/http/ HTTP/1.1\r\nhost: gw\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nidentity=1").await.unwrap();
        let mut answer = vec![0u8; 256];
        let n = tokio::io::AsyncReadExt::read(&mut s, &mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..n]).to_string()
    })
    .await
    .expect("the slow body was answered");
    assert!(r.starts_with("HTTP/1.1 408"), "{r}");

    // 300 clients that send half their headers and then nothing.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await else { continue };
        let _ = s.write_all(b"GET /backends/http/?identity=1&text=x HTTP/1.1\r\nhost: gw\r\n").await;
        slow.push(s);
    }
    let started = Instant::now();
    let mut healthy = false;
    while started.elapsed() < Duration::from_secs(5) {
        if let Ok(Ok(r)) =
            tokio::time::timeout(Duration::from_millis(500), gw.http.get(gw.url("/healthz")).send()).await
            && r.status() == 200
        {
            healthy = true;
            break;
        }
    }
    let probe = started.elapsed();
    println!("| 300 half-sent requests, cap 200 | /healthz answered after {probe:?} |");
    assert!(healthy, "/healthz did not answer beside 300 slow clients");

    // The header deadline closes the slow clients; SIGTERM does not wait for them.
    let signalled = Instant::now();
    let status = gw.terminate(Duration::from_secs(8));
    let took = signalled.elapsed();
    println!("| SIGTERM with {} slow clients connected | exited after {took:?} |", slow.len());
    assert!(status.is_some_and(|s| s.success()), "no clean exit: {status:?}\n{}", gw.log());
    assert!(took < Duration::from_secs(4), "the stop took {took:?}");
}

#[tokio::test]
async fn over_limit_requests_get_a_4xx_and_the_list_pages_through_everything() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), "[apps]\norder = []\n").await;
    // A text over max_text_bytes (64 KiB) is the provider's request: 413, not a 500 it would retry forever.
    let text = "x".repeat(70_000);
    let r = gw
        .http
        .post(gw.url("/backends/http/"))
        .form(&[("identity", "+1"), ("text", text.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("the limit is 65536"));

    for n in 0..25 {
        assert_eq!(gw.inbound_get(&format!("/backends/http/?identity=%2B1&text=m{n}")).await.0, 200);
    }
    // Newest first, ten at a time, following `next`.
    let mut seen = Vec::new();
    let mut query = "direction=in&limit=10".to_string();
    loop {
        let (status, page) = gw.get_json(&format!("/api/v1/messages?{query}")).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()));
        match page["next"]["before"].as_i64() {
            Some(before) => query = format!("direction=in&limit=10&before={before}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats: {seen:?}");
    let (_, after) = gw.get_json(&format!("/api/v1/messages?after={}&limit=5&status=handled", seen[10])).await;
    let ids: Vec<_> = after["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (seen[10] + 1..seen[10] + 6).collect::<Vec<_>>(), "after= lists oldest first");
    let (status, _) = gw.get_json("/api/v1/messages?before=1&after=2").await;
    assert_eq!(status, 400);
}
