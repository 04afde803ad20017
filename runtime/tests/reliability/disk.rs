//! A filling disk: while the data directory is full the gateway answers 503
//! (nothing acknowledged that is not stored), and once space is back every
//! acknowledged message is handled and its reply sent exactly once, without a
//! restart. The data directory is a small tmpfs (mounting needs root, which
//! CI has; elsewhere the test says loudly that it skipped).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::common::{Gateway, MockProvider};
use super::{deliveries, http_backend, serial};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).status();
        ok.ok()?.success().then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` to the last byte.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 << 10];
    while file.write_all(&chunk).is_ok() {}
    let mut byte = [0u8; 1];
    while file.write_all(&byte).is_ok() {
        byte[0] ^= 1;
    }
    let _ = file.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_recovers_without_a_restart() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&dir.path().join("data"), "24m") else {
        let bar = "!".repeat(78);
        eprintln!("\n{bar}\nSKIPPED: cannot mount a tmpfs (not root?): the full-disk test did not run\n{bar}\n");
        return;
    };
    // Replies are in flight at the provider when the disk fills: their outcome
    // cannot be recorded until it frees. Four slots, so that the 20 replies go
    // out in waves and some are still in flight after the first one arrives.
    let provider = MockProvider::delayed(Duration::from_millis(700)).await;
    let config =
        format!("[outbound]\nworkers = 4\n[apps]\norder = [\"echo\"]\n{}", http_backend("p", &provider.origin(), ""));
    let gw = Gateway::start(dir.path(), &config).await;
    let data = gw.data_dir.clone();

    let mut acked = Vec::new();
    let mut refused = 0;
    let mut filler = None;
    let started = Instant::now();
    for n in 0..100_000 {
        if n == 20 {
            provider.wait_for(1, Duration::from_secs(10)).await;
            filler = Some(fill(&data));
        }
        if filler.is_some() && started.elapsed() > Duration::from_secs(4) {
            break;
        }
        let (status, _) = gw.inbound_get(&format!("/backends/p/?identity=%2B1&text=echo+r{n}")).await;
        match status {
            200 => acked.push(n),
            503 => refused += 1,
            other => panic!("status {other} while the disk was full"),
        }
    }
    println!("| disk full for 4 s | {} acknowledged, {refused} refused with 503 |", acked.len());
    assert!(refused > 0, "the disk never filled up for the store: the test proves nothing");
    std::fs::remove_file(filler.unwrap()).unwrap();

    // Every acknowledged message is answered exactly once, with no restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = deliveries(&provider.received());
        let replies: usize = counts.len();
        if replies >= acked.len() || Instant::now() > deadline {
            let duplicates: usize = counts.values().map(|n| n - 1).sum();
            println!(
                "| after the disk freed | {replies} replies sent for {} acknowledged | {duplicates} duplicates |",
                acked.len()
            );
            assert_eq!(replies, acked.len(), "acknowledged messages left without a reply\n{}", gw.log());
            assert_eq!(duplicates, 0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gw.log().contains("could not record send attempt, retrying"), "the full disk hit sends in flight");
    // Outcomes that failed to record while the disk was full are retried with
    // a backoff of up to 2 s: nothing may stay unfinished after that.
    let deadline = Instant::now() + Duration::from_secs(15);
    for status in ["received", "sending", "queued"] {
        loop {
            let (_, list) = gw.get_json(&format!("/api/v1/messages?status={status}")).await;
            if list["messages"].as_array().unwrap().is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "messages stuck '{status}': {list}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
