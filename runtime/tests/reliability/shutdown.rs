//! SIGTERM under load: the gateway stops claiming, lets sends in flight finish
//! and be recorded, answers the requests it has, and exits in time. Nothing is
//! sent twice after the restart.

use std::time::{Duration, Instant};

use super::common::{Gateway, MockProvider};
use super::{deliveries, enqueue, http_backend, serial, wait_all_sent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_sends_nothing_twice_and_exits_in_time() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::delayed(Duration::from_millis(200)).await;
    let config = format!(
        "shutdown_timeout_ms = 5000\n[apps]\norder = []\n[outbound]\nworkers = 4\n{}",
        http_backend("p", &provider.origin(), "")
    );
    let mut gw = Gateway::start(dir.path(), &config).await;
    let ids = enqueue(&gw, "p", 80).await;
    provider.wait_for(10, Duration::from_secs(30)).await;
    // Inbound load at the same moment: every acknowledged message must be stored.
    let (http, url) = (gw.http.clone(), gw.url("/backends/p/"));
    let inbound = tokio::spawn(async move {
        let mut acked = 0;
        for n in 0..2000 {
            match http.get(format!("{url}?identity=%2B1&text=t{n}")).send().await {
                Ok(r) if r.status() == 200 => acked += 1,
                _ => break,
            }
        }
        acked
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let signalled = Instant::now();
    let status = gw.terminate(Duration::from_secs(10));
    let took = signalled.elapsed();
    let acked = inbound.await.unwrap();
    assert!(status.is_some(), "the gateway did not exit within 10 s of SIGTERM");
    assert!(status.unwrap().success(), "exit status {status:?}\n{}", gw.log());
    assert!(took < Duration::from_secs(6), "the stop took {took:?}, past its 5 s deadline");
    assert!(gw.log().contains("every send recorded"), "the stop recorded every send in flight:\n{}", gw.log());
    let sent_before = provider.received().len();

    let gw = gw.restart().await;
    let (_, stored) = gw.get_json("/api/v1/messages?direction=in&limit=1000").await;
    assert!(stored["messages"].as_array().unwrap().len() >= acked, "acknowledged inbound messages were lost");
    wait_all_sent(&gw, &ids, Duration::from_secs(60)).await;
    let counts = deliveries(&provider.received());
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    println!(
        "| SIGTERM mid-drain | exited after {took:?} | {sent_before} sent before, {} after restart | {duplicates} duplicates | {acked} inbound acknowledged |",
        ids.len() - sent_before.min(ids.len())
    );
    assert_eq!(counts.len(), ids.len());
    assert_eq!(duplicates, 0, "SIGTERM sent messages twice");
}
