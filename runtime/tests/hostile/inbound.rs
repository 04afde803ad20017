//! Attacks made through inbound requests: runaway CPU, stack and memory,
//! oversized results, egress tricks, reading the host, traps.

use std::time::Duration;

use super::common::{Gateway, MockProvider, free_port, test_guest};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_component_cannot_hurt_the_gateway_or_its_neighbour() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let echo = MockProvider::echo().await;
    let closed = free_port();
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
allowed_hosts = ["{provider}", "http://localhost:{provider_port}", "http://127.0.0.1:{redirector}", "http://127.0.0.1:{silent_port}", "{echo}", "http://127.0.0.1:{closed}"]
[backends.secrets]
pw = "{secret}"
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
        echo = echo.origin(),
        secret = super::secrets::SECRET_TOML,
    );
    let mut gw = Gateway::start(dir.path(), &config).await;

    let base = load(&gw, async {}).await;
    assert_eq!(base.failed, 0);
    let baseline = base.rate();
    println!("| attack | outcome | good req/s | ratio to baseline | good p99 |");
    println!("| --- | --- | --- | --- | --- |");
    println!("| none (baseline) | - | {baseline:.0} | 1.00 | {:?} |", base.p99);

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
            "a thousand host HTTP calls",
            format!("text=many-calls&url={}/", provider.origin()),
            text_has("limit hit 984 times"),
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
        (
            "secrets reflected in errors and provider echoes",
            format!("text=reflect&echo={}&closed=http://127.0.0.1:{closed}", echo.origin()),
            text_has("[redacted]"),
        ),
        (
            "secrets reflected into the provider's reply",
            format!("text=reflect-refused&echo={}&closed=http://127.0.0.1:{closed}", echo.origin()),
            status_is(400),
        ),
        ("log lines forged with CR/LF", "text=forge-log".into(), status_is(500)),
        ("log flood", "text=flood-log".into(), text_has("flooded")),
        ("reply framing: content-length 0 and a smuggled response", "text=split".into(), status_is(200)),
        ("reply framing: chunked encoding", "text=chunked".into(), status_is(200)),
        ("reply framing: 101 switching protocols", "text=switch".into(), status_is(500)),
    ];

    let mut ratios = Vec::new();
    for (name, query, check) in &attacks {
        let before = stored_count(&gw, "good");
        let mut outcome = (0, String::new());
        let n = load(&gw, async { outcome = repeat_attack(&gw, query).await }).await;
        let (ok, failed) = (n.ok, n.failed);
        let ratio = n.rate() / baseline;
        let (status, body) = outcome;
        let shown = if status == 200 { last_evil_text(&gw).await } else { body.trim().to_string() };
        let shown_short: String = shown.chars().take(60).collect();
        println!("| {name} | {status} {shown_short} | {:.0} | {ratio:.2} | {:?} |", n.rate(), n.p99);
        assert!(gw.is_running(), "gateway died during '{name}'");
        super::secrets::assert_no_leak(&shown, name);
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

    super::secrets::assert_no_leak(&gw.log(), "the gateway log");
    assert!(echo.received().iter().any(super::secrets::carries_secret), "the echo provider got the filled-in secret");

    let worst = ratios.iter().map(|(_, r)| *r).fold(f64::INFINITY, f64::min);
    println!("worst ratio: {worst:.2}");
    assert!(worst > 0.05, "the well-behaved backend was starved: {ratios:?}");
}

#[tokio::test]
async fn a_backend_that_keeps_failing_is_paused_then_resumes() {
    let _serial = serial().await;
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
