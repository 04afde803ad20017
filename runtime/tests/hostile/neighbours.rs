//! Starving the neighbours: taking every instance slot under many names,
//! blocking the outbound queue with a slow provider, and being billed for the
//! CPU a noisy neighbour takes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::common::{Gateway, MockProvider, test_guest};
use super::{neighbour, serial, start_silent_server};

/// Names the attacker uploads the same component under.
const NAMES: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_names_cannot_take_a_mounted_backends_last_instance_slot() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let (silent, _held) = start_silent_server();
    let mut config = String::from("[apps]\norder = []\n[[backends]]\nname = \"good\"\ncomponent = \"builtin:http\"\n");
    for i in 0..NAMES {
        config += &format!(
            "[[backends]]\nname = \"evil{i}\"\ncomponent = \"{}\"\nallowed_hosts = [\"http://127.0.0.1:{silent}\"]\n\
             [backends.limits]\nhttp_timeout_ms = 4000\nwall_ms = 5000\nconcurrency = 32\n",
            test_guest("hostile").display()
        );
    }
    let gw = Gateway::start(dir.path(), &config).await;
    let baseline = super::baseline(&gw).await;

    // 32 calls per name, each holding its slot while its provider never answers:
    // 256 slots, the whole pool, before instance slots were shared out.
    let holding = Arc::new(AtomicU64::new(0));
    let attack = async {
        let mut calls = Vec::new();
        for n in 0..NAMES * 32 {
            let url =
                gw.url(&format!("/backends/evil{}/?identity=x&text=fetch&url=http://127.0.0.1:{silent}/", n % NAMES));
            let (http, holding) = (gw.http.clone(), holding.clone());
            calls.push(tokio::spawn(async move {
                holding.fetch_add(1, Ordering::Relaxed);
                let _ = http.get(url).send().await;
            }));
        }
        // Let them take their slots before the neighbour's phase is measured.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        calls
    };
    let calls = attack.await;
    let during = neighbour(&gw, tokio::time::sleep(Duration::from_millis(1500))).await;
    for c in calls {
        c.await.unwrap();
    }
    println!(
        "| {} calls held by {NAMES} names | good {:.0} req/s | ratio {:.2} |",
        holding.load(Ordering::Relaxed),
        during.rate(),
        during.rate() / baseline
    );
    assert_eq!(
        during.failed, 0,
        "the well-behaved backend failed {} request(s) while the pool was held",
        during.failed
    );
    assert!(during.ok > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_provider_delays_its_own_messages_only() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let slow = MockProvider::delayed(Duration::from_millis(800)).await;
    let fast = MockProvider::start(&[]).await;
    let backend = |name: &str, provider: &MockProvider| {
        format!(
            "[[backends]]\nname = \"{name}\"\ncomponent = \"builtin:http\"\nallowed_hosts = [\"{0}\"]\n\
             [backends.config]\nsendsms_url = \"{0}/send\"\n",
            provider.origin()
        )
    };
    let config =
        format!("[apps]\norder = []\n[outbound]\nworkers = 2\n{}{}", backend("slow", &slow), backend("fast", &fast));
    let gw = Gateway::start(dir.path(), &config).await;
    for i in 0..20 {
        let (status, _) =
            gw.post_json("/api/v1/messages", &json!({"backend": "slow", "to": [format!("+{i}")], "text": "x"})).await;
        assert_eq!(status, 202);
    }
    slow.wait_for(1, Duration::from_secs(10)).await;
    let queued = Instant::now();
    let (status, _) = gw.post_json("/api/v1/messages", &json!({"backend": "fast", "to": ["+1"], "text": "x"})).await;
    assert_eq!(status, 202);
    fast.wait_for(1, Duration::from_secs(30)).await;
    let took = queued.elapsed();
    // Behind the slow backend's queue it would wait 20 x 800 ms / 2 workers = 8 s.
    println!("| fast backend's message behind 20 slow ones | reached its provider after {took:?} |");
    assert!(took < Duration::from_millis(1500), "the fast backend's message waited {took:?} behind the slow one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_retry_after_is_clamped() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[apps]\norder = []\n[outbound]\nretry_max_ms = 60000\n[[backends]]\nname = \"evil\"\ncomponent = \"{}\"\n",
        test_guest("hostile").display()
    );
    let gw = Gateway::start(dir.path(), &config).await;
    let (_, created) =
        gw.post_json("/api/v1/messages", &json!({"backend": "evil", "to": ["1"], "text": "throttle-forever"})).await;
    let id = created["id"].as_i64().unwrap();
    let m = gw.wait_message(id, Duration::from_secs(10), |m| m["last_error"].as_str().is_some()).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let next = m["next_attempt_at"].as_i64().expect("a next attempt");
    assert!(
        next > now + 30_000 && next <= now + 61_000,
        "Retry-After u64::MAX gave the next attempt at {next} (now {now})"
    );
    assert_eq!(m["status"], "queued", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_time_is_billed_while_running_not_while_waiting_for_a_thread() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[apps]\norder = []\n\
         [[backends]]\nname = \"good\"\ncomponent = \"{evil}\"\n[backends.limits]\ncpu_ms = 1000\nwall_ms = 30000\n\
         [[backends]]\nname = \"noisy\"\ncomponent = \"{evil}\"\n[backends.limits]\ncpu_ms = 60000\nwall_ms = 6000\n",
        evil = test_guest("hostile").display()
    );
    let gw = Gateway::start(dir.path(), &config).await;
    // Work that takes about 300 ms of CPU when the machine is quiet.
    let mut iterations = 1_000_000u64;
    let alone = loop {
        let started = Instant::now();
        let (status, _) =
            gw.inbound_get(&format!("/backends/good/?identity=x&text=burn&iterations={iterations}")).await;
        assert_eq!(status, 200);
        let took = started.elapsed();
        if took >= Duration::from_millis(300) || iterations > 1 << 34 {
            break took;
        }
        iterations = (iterations as f64 * 300.0 / took.as_millis().max(1) as f64 * 1.1) as u64;
    };
    // Twelve neighbours spinning for their whole 6 s wall limit: the good call
    // gets a fraction of the two cores, so its wall time is several times its CPU time.
    let mut noisy = Vec::new();
    for _ in 0..12 {
        let url = gw.url("/backends/noisy/?identity=x&text=loop");
        let http = gw.http.clone();
        noisy.push(tokio::spawn(async move { http.get(url).send().await.map(|r| r.status().as_u16()) }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (status, body) = gw.inbound_get(&format!("/backends/good/?identity=x&text=burn&iterations={iterations}")).await;
    let contended = started.elapsed();
    for n in noisy {
        let _ = n.await;
    }
    println!("| burn alone {alone:?}, beside 12 spinning neighbours {contended:?} | status {status} |");
    assert_eq!(status, 200, "the good call failed its 1000 ms CPU limit beside noisy neighbours: {body}");
}
