//! Operating the gateway, through the real binary: Prometheus metrics scraped
//! and parsed, provider send rates, repeated callbacks and idempotent sends,
//! and logs a collector can read.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, GatewayOptions, MockProvider};
use serde_json::json;

fn http_backend(name: &str, origin: &str, limits: &str) -> String {
    format!(
        "[[backends]]\nname = \"{name}\"\ncomponent = \"builtin:http\"\nallowed_hosts = [\"{origin}\"]\n\
         [backends.config]\nsendsms_url = \"{origin}/send\"\n[backends.limits]\n{limits}\n"
    )
}

fn sample<'a>(
    scrape: &'a prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a prometheus_parse::Sample> {
    scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

fn value(sample: Option<&prometheus_parse::Sample>) -> f64 {
    match sample.map(|s| &s.value) {
        Some(
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v),
        ) => *v,
        Some(prometheus_parse::Value::Histogram(buckets)) => buckets.last().map_or(0.0, |b| b.count),
        _ => -1.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_parse() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let config = format!("[apps]\norder = [\"echo\"]\n{}", http_backend("p", &provider.origin(), ""));
    let gw = Gateway::start(dir.path(), &config).await;
    for n in 0..5 {
        assert_eq!(gw.inbound_get(&format!("/backends/p/?identity=%2B1&text=echo+m{n}")).await.0, 200);
    }
    assert_eq!(gw.inbound_get("/backends/p/?identity=%2B1").await.0, 400);
    provider.wait_for(5, Duration::from_secs(20)).await;
    // An attempt is counted just after its provider answered: scrape until all five are.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (text, scrape) = loop {
        let text = gw.http.get(gw.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("the exposition parses");
        let sent = value(sample(&scrape, "smsgw_send_attempts_total", &[("backend", "p"), ("outcome", "sent")]));
        if sent >= 5.0 || Instant::now() > deadline {
            break (text, scrape);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(value(sample(&scrape, "smsgw_inbound_requests_total", &[("backend", "p"), ("status", "200")])), 5.0);
    assert_eq!(value(sample(&scrape, "smsgw_inbound_requests_total", &[("backend", "p"), ("status", "400")])), 1.0);
    assert_eq!(value(sample(&scrape, "smsgw_inbound_messages_total", &[("backend", "p")])), 5.0);
    assert!(value(sample(&scrape, "smsgw_send_attempts_total", &[("backend", "p"), ("outcome", "sent")])) >= 5.0);
    assert!(sample(&scrape, "smsgw_provider_request_seconds", &[("backend", "p")]).is_some(), "{text}");
    assert!(sample(&scrape, "smsgw_call_seconds", &[("backend", "p"), ("call", "parse-incoming")]).is_some());
    assert!(sample(&scrape, "smsgw_guest_cpu_seconds", &[("backend", "p"), ("call", "send")]).is_some());
    assert_eq!(value(sample(&scrape, "smsgw_breaker_open", &[("backend", "p")])), 0.0);
    assert_eq!(value(sample(&scrape, "smsgw_backend_version", &[("backend", "p")])), 0.0);
    assert!(sample(&scrape, "smsgw_queue_messages", &[("status", "queued")]).is_some());
    assert!(sample(&scrape, "smsgw_uptime_seconds", &[]).is_some());
    assert!(sample(&scrape, "smsgw_store_commit_seconds", &[]).is_some());
    assert!(value(sample(&scrape, "smsgw_open_connections", &[])) >= 1.0);
    assert!(!text.contains("message_id") && !text.contains("identity"), "no per-message labels");
}

#[tokio::test]
async fn metrics_need_the_token_off_loopback_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = GatewayOptions::default();
    options.env.push(("SMSGW_ADMIN_TOKEN".into(), "metrics-token-0123456789".into()));
    let gw = Gateway::start_with(options, dir.path(), "metrics_auth = \"token\"\n").await;
    assert_eq!(gw.http.get(gw.url("/metrics")).send().await.unwrap().status(), 401);
    let r = gw.http.get(gw.url("/metrics")).bearer_auth("metrics-token-0123456789").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_backend_sends_at_its_rate_while_another_runs_at_full_speed() {
    let dir = tempfile::tempdir().unwrap();
    let limited = MockProvider::start(&[]).await;
    let free = MockProvider::start(&[]).await;
    let config = format!(
        "[apps]\norder = []\n{}{}",
        http_backend("limited", &limited.origin(), "rate_per_second = 10"),
        http_backend("free", &free.origin(), "")
    );
    let gw = Gateway::start(dir.path(), &config).await;
    let mut started = Instant::now();
    for (backend, n) in [("limited", 31), ("free", 100)] {
        // The other backend's clock starts once the limited one is busy.
        started = Instant::now();
        for i in 0..n {
            let body = json!({"backend": backend, "to": [format!("+{i}")], "text": "x"});
            assert_eq!(gw.post_json("/api/v1/messages", &body).await.0, 202);
        }
    }
    free.wait_for(100, Duration::from_secs(30)).await;
    let free_done = started.elapsed();
    let limited_then = limited.count();
    limited.wait_for(31, Duration::from_secs(30)).await;
    let rate = 30.0 / limited.span().as_secs_f64();
    println!("| rate_per_second = 10 | measured {rate:.2}/s | the other backend's 100 sent in {free_done:?} |");
    assert!((9.0..=11.0).contains(&rate), "the limited backend sent at {rate:.2}/s");
    assert!(limited_then < 31, "the other backend finished only after the limited one ({free_done:?})");
}

#[tokio::test]
async fn repeated_callbacks_and_repeated_sends_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let config = format!("[apps]\norder = [\"echo\"]\n{}", http_backend("p", &provider.origin(), ""));
    let gw = Gateway::start(dir.path(), &config).await;

    // The same provider callback three times: one message, one reply. (The
    // generic HTTP backend's callbacks carry no provider id: same sender and
    // text within seconds is the same message.)
    for _ in 0..3 {
        assert_eq!(gw.inbound_get("/backends/p/?identity=%2B1&text=echo+once").await.0, 200);
    }
    provider.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, list) = gw.get_json("/api/v1/messages?direction=in").await;
    assert_eq!(list["messages"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(provider.received().len(), 1, "answered once");

    // An idempotency key: the repeat returns the first message.
    let body = json!({"backend": "p", "to": ["+2"], "text": "pay"});
    let send = |key: &'static str, body: serde_json::Value| {
        let (http, url) = (gw.http.clone(), gw.url("/api/v1/messages"));
        async move {
            let r = http.post(url).header("idempotency-key", key).json(&body).send().await.unwrap();
            let replayed = r.headers().contains_key("idempotent-replayed");
            (r.status().as_u16(), replayed, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, replayed, first) = send("order-17", body.clone()).await;
    assert_eq!((status, replayed), (202, false));
    let (status, replayed, again) = send("order-17", body.clone()).await;
    assert_eq!((status, replayed, &again["id"]), (202, true, &first["id"]));
    let (status, _, refused) = send("order-17", json!({"backend": "p", "to": ["+3"], "text": "pay"})).await;
    assert_eq!(status, 422, "{refused}");
    provider.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(provider.received().len(), 2, "the repeated send went out once");
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let options = GatewayOptions { extra_args: vec!["--log-format".into(), "json".into()], ..Default::default() };
    let gw = Gateway::start_with(options, dir.path(), "").await;
    assert_eq!(gw.inbound_get("/backends/http/?identity=1&text=ping").await.0, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = gw.log();
    assert!(!log.contains('\u{1b}'), "colour codes in a log file");
    let lines: Vec<_> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2);
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_log_shows_each_exchange_with_secret_references_only() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let origin = provider.origin();
    let config = format!(
        "[apps]\norder = [\"echo\"]\n[[backends]]\nname = \"p\"\ncomponent = \"builtin:http\"\nallowed_hosts = [\"{origin}\"]\n\
         [backends.config]\nsendsms_url = \"{origin}/send\"\nsendsms_params = {{ key = \"{{{{secret:api_key}}}}\" }}\n\
         [backends.secrets]\napi_key = \"chan-Secret-value-9\"\n"
    );
    let gw = Gateway::start(dir.path(), &config).await;
    assert_eq!(gw.inbound_get("/backends/p/?identity=%2B1&text=echo+hi").await.0, 200);
    let sent = provider.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(sent[0].param("key"), Some("chan-Secret-value-9"), "the provider got the real secret");
    let inbound = gw.last_inbound_id().await;
    let reply = gw.wait_reply_to(inbound, Duration::from_secs(10)).await;
    let reply_id = reply["id"].as_i64().unwrap();

    // Entries are written in batches in the background.
    let mut entries = Vec::new();
    for _ in 0..100 {
        let (_, page) = gw.get_json("/api/v1/channel-log?backend=p").await;
        entries = page["entries"].as_array().unwrap().clone();
        if entries.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("chan-Secret-value-9"), "a secret value in the channel log: {text}");
    let provider_entry = entries.iter().find(|e| e["kind"] == "provider").expect("the provider exchange");
    assert!(provider_entry["url"].as_str().unwrap().contains("{{secret:api_key}}"), "{provider_entry}");
    assert_eq!(provider_entry["status"], 200);
    assert_eq!(provider_entry["message_ids"], json!([reply_id]));
    let inbound_entry = entries.iter().find(|e| e["kind"] == "inbound").expect("the inbound exchange");
    assert_eq!(inbound_entry["message_ids"], json!([inbound]));
    assert!(inbound_entry["outcome"].as_str().unwrap().contains("stored 1 message"), "{inbound_entry}");

    // A message links its entries.
    let (_, shown) = gw.get_json(&format!("/api/v1/messages/{reply_id}")).await;
    let link = shown["channel_log"].as_str().unwrap().to_string();
    let (_, linked) = gw.get_json(&link).await;
    assert_eq!(linked["entries"].as_array().unwrap().len(), 1, "{linked}");

    // And the command line shows them.
    let out = std::process::Command::new(common::GatewayOptions::default().bin)
        .args(["logs", "p", "--url", &gw.url("")])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("inbound GET") && printed.contains("provider GET"), "{printed}");
    assert!(printed.contains(&format!("[messages {reply_id}]")), "{printed}");
}
