//! The hostile suite: a component written to attack its host is deployed beside
//! a well-behaved backend under steady load. For every attack the gateway must
//! stay up, the attack must fail cleanly (or be contained), the well-behaved
//! backend must keep serving, and every message it acknowledged must be stored.
//! Run with `--nocapture` to see the throughput ratio under each attack.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Gateway, MockProvider, free_port, test_guest};

/// How long each load phase runs: bounded, and long enough to average noise.
const PHASE: Duration = Duration::from_millis(1200);
/// Concurrent clients of the well-behaved backend.
const CLIENTS: usize = 4;

/// A server that accepts connections and never answers (a provider that hangs).
fn start_silent_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline && held.len() < 1000 {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, handle)
}

/// A provider that redirects every request to `target`.
async fn start_redirector(target: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { (axum::http::StatusCode::FOUND, [("location", target)], "") }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// Load on the well-behaved backend for one phase; returns (ok, failed) counts.
async fn load(gw: &Gateway, during: impl std::future::Future<Output = ()>) -> (u64, u64, Duration) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
        let http = gw.http.clone();
        let url = gw.url("/backends/good/");
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            // Bounded by count as well as time.
            while !stop.load(Ordering::Relaxed) && n < 200_000 {
                n += 1;
                let r = http.get(format!("{url}?identity=c{c}&text=hello+{n}")).send().await;
                match r {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let started = Instant::now();
    let attack = async {
        during.await;
    };
    let timer = tokio::time::sleep(PHASE);
    tokio::join!(attack, timer);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), started.elapsed())
}

/// Repeats an attack request until the phase ends; returns the last answer.
async fn repeat_attack(gw: &Gateway, query: &str) -> (u16, String) {
    let end = Instant::now() + PHASE;
    let mut last = (0, String::new());
    let mut n = 0;
    while Instant::now() < end && n < 10_000 {
        n += 1;
        last = gw.inbound_get(&format!("/backends/evil/?identity=x&{query}")).await;
    }
    last
}

/// The text the hostile backend stored for its last accepted request.
async fn last_evil_text(gw: &Gateway) -> String {
    let (_, list) = gw.get_json("/api/v1/messages?direction=in&backend=evil&limit=1").await;
    list["messages"][0]["text"].as_str().unwrap_or("").to_string()
}

fn stored_count(gw: &Gateway, backend: &str) -> i64 {
    let db =
        rusqlite::Connection::open_with_flags(gw.data_dir.join("smsgw.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    db.query_row("SELECT COUNT(*) FROM messages WHERE direction = 'in' AND backend = ?1", [backend], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_component_cannot_hurt_the_gateway_or_its_neighbour() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let forbidden = MockProvider::start(&[]).await;
    let (silent_port, _silent) = start_silent_server();
    let redirector = start_redirector(format!("{}/stolen", forbidden.origin())).await;
    let unlisted = free_port();
    let config = format!(
        r#"
[apps]
order = []

[outbound]
retry_base_ms = 50
max_attempts = 2

[[backends]]
name = "good"
component = "builtin:http"

[[backends]]
name = "evil"
component = "{evil}"
allowed_hosts = ["{provider}", "http://localhost:{provider_port}", "http://127.0.0.1:{redirector}", "http://127.0.0.1:{silent_port}"]
[backends.limits]
memory_bytes = 33554432
cpu_ms = 200
wall_ms = 3000
http_timeout_ms = 500
breaker_failures = 1000000
"#,
        evil = test_guest("hostile").display(),
        provider = provider.origin(),
        provider_port = provider.addr.port(),
    );
    let mut gw = Gateway::start(dir.path(), &config).await;

    let (base_ok, base_failed, base_time) = load(&gw, async {}).await;
    assert_eq!(base_failed, 0);
    let baseline = base_ok as f64 / base_time.as_secs_f64();
    println!("| attack | outcome | good req/s | ratio to baseline |");
    println!("| --- | --- | --- | --- |");
    println!("| none (baseline) | - | {baseline:.0} | 1.00 |");

    type Check = Box<dyn Fn(u16, &str) -> Result<(), String>>;
    let status_is = |want: u16| -> Check {
        Box::new(move |s, body| if s == want { Ok(()) } else { Err(format!("status {s}: {body}")) })
    };
    let text_has = |want: &'static str| -> Check {
        Box::new(move |s, text| {
            if s == 200 && text.contains(want) {
                Ok(())
            } else {
                Err(format!("status {s}, expected {want:?} in {text:?}"))
            }
        })
    };

    let attacks: Vec<(&str, String, Check)> = vec![
        ("infinite loop", "text=loop".into(), status_is(500)),
        ("recursion to stack overflow", "text=recurse".into(), status_is(500)),
        ("memory.grow until refused", "text=grow".into(), text_has("grew ")),
        ("huge allocation", "text=alloc".into(), status_is(500)),
        ("gigantic returned string", "text=huge-text".into(), status_is(500)),
        (
            "thousands of host HTTP calls",
            format!("text=many-calls&url={}/", provider.origin()),
            text_has("limit hit 4984 times"),
        ),
        ("loopback, port not granted", format!("text=fetch&url=http://127.0.0.1:{unlisted}/"), text_has("denied")),
        (
            "cloud metadata 169.254.169.254",
            "text=fetch&url=http://169.254.169.254/latest/meta-data/".into(),
            text_has("denied"),
        ),
        ("private address 10.0.0.1", "text=fetch&url=http://10.0.0.1/".into(), text_has("denied")),
        ("host not granted", "text=fetch&url=https://evil.example/".into(), text_has("denied")),
        (
            "DNS name resolving to loopback",
            format!("text=fetch&url=http://localhost:{}/", provider.addr.port()),
            text_has("denied"),
        ),
        (
            "allowed host redirecting elsewhere",
            format!("text=fetch&url=http://127.0.0.1:{redirector}/"),
            text_has("status 302"),
        ),
        ("Host header override", format!("text=host-header&url={}/", provider.origin()), text_has("may not be set")),
        (
            "slow provider that never answers",
            format!("text=fetch&url=http://127.0.0.1:{silent_port}/"),
            text_has("timed out"),
        ),
        ("read environment and files", "text=env".into(), text_has("env=[] file=Err(")),
        ("trap", "text=trap".into(), status_is(500)),
    ];

    let mut ratios = Vec::new();
    for (name, query, check) in &attacks {
        let before = stored_count(&gw, "good");
        let mut outcome = (0, String::new());
        let (ok, failed, took) = load(&gw, async { outcome = repeat_attack(&gw, query).await }).await;
        let ratio = (ok as f64 / took.as_secs_f64()) / baseline;
        let (status, body) = outcome;
        let shown = if status == 200 { last_evil_text(&gw).await } else { body.trim().to_string() };
        let shown_short: String = shown.chars().take(60).collect();
        println!("| {name} | {status} {shown_short} | {:.0} | {ratio:.2} |", ok as f64 / took.as_secs_f64());
        assert!(gw.is_running(), "gateway died during '{name}'");
        check(status, &shown).unwrap_or_else(|e| {
            panic!("'{name}': {e}\n{}", gw.log().lines().rfind(|l| l.contains("evil")).unwrap_or(""))
        });
        assert_eq!(failed, 0, "'{name}': the well-behaved backend failed {failed} request(s)");
        assert!(ok > 0, "'{name}': the well-behaved backend served nothing");
        assert_eq!(
            stored_count(&gw, "good") - before,
            ok as i64,
            "'{name}': acknowledged messages were not all stored"
        );
        ratios.push((name, ratio));
    }

    // Memory stayed within the backend's limit.
    gw.inbound_get("/backends/evil/?identity=x&text=grow").await;
    let grown: usize = last_evil_text(&gw).await.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(grown * 65536 <= 32 << 20, "grew {grown} pages past the 32 MiB limit");

    // Nothing reached the forbidden host, even through the redirect.
    assert!(forbidden.received().is_empty(), "a denied or redirected request reached its target");
    assert!(
        gw.log().contains("outbound request denied") && gw.log().contains("evil"),
        "denials are logged with the backend name"
    );

    // A send that traps mid-batch fails that message only.
    let (status, created) = gw
        .post_json(
            "/api/v1/messages",
            &serde_json::json!({"backend": "evil", "to": ["1", "2"], "text": "trap-mid-batch"}),
        )
        .await;
    assert_eq!(status, 202);
    let m =
        gw.wait_message(created["id"].as_i64().unwrap(), Duration::from_secs(20), |m| m["status"] == "failed").await;
    assert!(m["last_error"].as_str().unwrap().contains("trapped"), "{m}");
    let (status, created) =
        gw.post_json("/api/v1/messages", &serde_json::json!({"backend": "evil", "to": ["1"], "text": "fine"})).await;
    assert_eq!(status, 202);
    gw.wait_message(created["id"].as_i64().unwrap(), Duration::from_secs(20), |m| m["status"] == "sent").await;

    let worst = ratios.iter().map(|(_, r)| *r).fold(f64::INFINITY, f64::min);
    println!("worst ratio: {worst:.2}");
    assert!(worst > 0.05, "the well-behaved backend was starved: {ratios:?}");
}

#[tokio::test]
async fn a_backend_that_keeps_failing_is_paused_then_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[[backends]]
name = "evil"
component = "{}"
[backends.limits]
breaker_failures = 3
breaker_cooldown_ms = 1500
"#,
        test_guest("hostile").display()
    );
    let gw = Gateway::start(dir.path(), &config).await;
    for _ in 0..3 {
        assert_eq!(gw.inbound_get("/backends/evil/?identity=1&text=trap").await.0, 500);
    }
    let r = gw.http.get(gw.url("/backends/evil/?identity=1&text=fine")).send().await.unwrap();
    assert_eq!(r.status(), 503, "paused after 3 consecutive failures");
    assert!(r.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(gw.inbound_get("/backends/evil/?identity=1&text=fine").await.0, 200, "resumes after the cool-down");
}
