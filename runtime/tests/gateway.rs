//! End to end through the real binary: provider → component → store → apps →
//! queue → component → provider, all on loopback.

mod common;

use std::time::Duration;

use common::{Gateway, MockProvider, test_guest};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// A config mounting the generic HTTP backend, sending to `provider`.
fn http_backend_config(provider: &MockProvider, allowed: &str, extra: &str) -> String {
    format!(
        r#"
[outbound]
retry_base_ms = 50
retry_max_ms = 200
max_attempts = 3

[[backends]]
name = "http"
component = "builtin:http"
allowed_hosts = ["{allowed}"]
[backends.config]
sendsms_url = "{origin}/send"
{extra}
"#,
        origin = provider.origin()
    )
}

#[tokio::test]
async fn inbound_echo_reply_is_delivered_to_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let gw = Gateway::start(dir.path(), &http_backend_config(&provider, &provider.origin(), "")).await;

    let (status, body) = gw.inbound_get("/backends/http/?identity=%2B15551234&text=echo+h%C3%A9llo+%E2%9C%93").await;
    assert_eq!((status, body.as_str()), (200, "OK"));

    let got = provider.wait_for(1, WAIT).await;
    assert_eq!(got[0].path, "/send");
    assert_eq!(got[0].param("identity"), Some("+15551234"));
    assert_eq!(got[0].param("text"), Some("héllo ✓"));

    let inbound = gw.last_inbound_id().await;
    let reply = gw.wait_reply_to(inbound, WAIT).await;
    let reply = gw.wait_message(reply["id"].as_i64().unwrap(), WAIT, |m| m["status"] == "sent").await;
    assert_eq!(reply["recipients"][0]["identity"], "+15551234");
    assert_eq!(reply["attempts"], 1);
    let (_, inbound_msg) = gw.get_json(&format!("/api/v1/messages/{inbound}")).await;
    assert_eq!(inbound_msg["status"], "handled");
    assert_eq!(inbound_msg["text"], "echo héllo ✓");
}

#[tokio::test]
async fn ping_gets_pong_and_api_send_reaches_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let gw = Gateway::start(dir.path(), &http_backend_config(&provider, &provider.origin(), "")).await;

    assert_eq!(gw.inbound_get("/backends/http/?identity=555&text=PING").await.0, 200);
    let inbound = gw.last_inbound_id().await;
    let reply = gw.wait_reply_to(inbound, WAIT).await;
    assert_eq!(reply["text"], "pong");

    let (status, created) =
        gw.post_json("/api/v1/messages", &json!({"backend": "http", "to": ["1", "2", "1"], "text": "hi all"})).await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_i64().unwrap();
    let m = gw.wait_message(id, WAIT, |m| m["status"] == "sent").await;
    assert_eq!(m["recipients"].as_array().unwrap().len(), 2, "duplicates are removed: {m}");
    let got = provider.wait_for(3, WAIT).await;
    let mut to: Vec<_> = got
        .iter()
        .filter(|r| r.param("text") == Some("hi all"))
        .map(|r| r.param("identity").unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(to, vec!["1", "2"]);
}

#[tokio::test]
async fn provider_500_is_retried_until_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[500, 500]).await;
    let gw = Gateway::start(dir.path(), &http_backend_config(&provider, &provider.origin(), "")).await;

    let (status, created) =
        gw.post_json("/api/v1/messages", &json!({"backend": "http", "to": ["1"], "text": "retry me"})).await;
    assert_eq!(status, 202);
    let id = created["id"].as_i64().unwrap();
    let m = gw.wait_message(id, WAIT, |m| m["status"] == "sent").await;
    assert_eq!(m["attempts"], 3, "{m}");
    assert!(m["last_error"].as_str().unwrap().contains("500"), "{m}");
    assert_eq!(provider.received().len(), 3);
}

#[tokio::test]
async fn provider_400_fails_permanently_without_retry() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[400]).await;
    let gw = Gateway::start(dir.path(), &http_backend_config(&provider, &provider.origin(), "")).await;

    let (_, created) = gw.post_json("/api/v1/messages", &json!({"backend": "http", "to": ["1"], "text": "x"})).await;
    let id = created["id"].as_i64().unwrap();
    let m = gw.wait_message(id, WAIT, |m| m["status"] == "failed").await;
    assert_eq!(m["attempts"], 1);
    assert!(m["recipients"][0]["error"].as_str().unwrap().contains("400"), "{m}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(provider.received().len(), 1, "a permanent failure is not retried");
}

#[tokio::test]
async fn provider_outside_allowed_hosts_is_never_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    // Same host, different port: not the granted origin.
    let other = format!("http://127.0.0.1:{}", common::free_port());
    let gw = Gateway::start(dir.path(), &http_backend_config(&provider, &other, "")).await;

    let (_, created) = gw.post_json("/api/v1/messages", &json!({"backend": "http", "to": ["1"], "text": "x"})).await;
    let id = created["id"].as_i64().unwrap();
    let m = gw.wait_message(id, WAIT, |m| m["status"] == "failed").await;
    assert!(m["last_error"].as_str().unwrap().contains("allowed_hosts"), "{m}");
    assert!(provider.received().is_empty());
    assert!(gw.log().contains("outbound request denied"), "denials are logged");
}

#[tokio::test]
async fn a_trapping_component_fails_only_its_own_calls() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let config = format!(
        r#"{}
[[backends]]
name = "trap"
component = "{}"
[backends.limits]
cpu_ms = 100
"#,
        http_backend_config(&provider, &provider.origin(), ""),
        test_guest("trap").display()
    );
    let mut gw = Gateway::start(dir.path(), &config).await;

    let (status, body) = gw.inbound_get("/backends/trap/?identity=1&text=trap").await;
    assert_eq!(status, 500, "{body}");
    let (status, _) = gw.inbound_get("/backends/trap/?identity=1&text=loop").await;
    assert_eq!(status, 500, "an endless loop is cut off by the CPU limit");
    let (_, list) = gw.get_json("/api/v1/messages?direction=in&backend=trap").await;
    assert!(list["messages"].as_array().unwrap().is_empty(), "nothing stored for failed calls");

    // The same component still serves good requests, and so does the other backend.
    assert_eq!(gw.inbound_get("/backends/trap/?identity=1&text=fine").await.0, 200);
    assert_eq!(gw.inbound_get("/backends/http/?identity=1&text=ping").await.0, 200);

    // A send that traps is retried, then failed; the gateway stays up.
    let (_, created) = gw.post_json("/api/v1/messages", &json!({"backend": "trap", "to": ["1"], "text": "x"})).await;
    let id = created["id"].as_i64().unwrap();
    let m = gw.wait_message(id, WAIT, |m| m["status"] == "failed").await;
    assert_eq!(m["attempts"], 3);
    assert!(m["last_error"].as_str().unwrap().contains("trapped"), "{m}");
    assert!(gw.is_running());
    assert!(gw.log().contains("send always traps"), "guest panic message is captured in the log");
}

#[tokio::test]
async fn messages_and_the_queue_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The provider is down (503) for long enough that the message is still queued at the restart.
    let provider = MockProvider::start(&[503]).await;
    let config = http_backend_config(&provider, &provider.origin(), "")
        .replace("retry_base_ms = 50", "retry_base_ms = 1500")
        .replace("retry_max_ms = 200", "retry_max_ms = 1500");
    let gw = Gateway::start(dir.path(), &config).await;

    assert_eq!(gw.inbound_get("/backends/http/?identity=42&text=keep+me").await.0, 200);
    let inbound = gw.last_inbound_id().await;
    let (_, created) =
        gw.post_json("/api/v1/messages", &json!({"backend": "http", "to": ["7"], "text": "later"})).await;
    let id = created["id"].as_i64().unwrap();
    provider.wait_for(1, WAIT).await;
    let queued = gw.wait_message(id, WAIT, |m| m["attempts"] == 1).await;
    assert_eq!(queued["status"], "queued");

    let gw = gw.restart().await;
    let (status, m) = gw.get_json(&format!("/api/v1/messages/{inbound}")).await;
    assert_eq!(status, 200);
    assert_eq!(m["text"], "keep me");
    let sent = gw.wait_message(id, WAIT, |m| m["status"] == "sent").await;
    assert_eq!(sent["attempts"], 2);
}

#[tokio::test]
async fn a_held_queue_keeps_messages_and_sends_each_exactly_once_later() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let config = http_backend_config(&provider, &provider.origin(), "");
    let held = config.replace("[outbound]", "[outbound]\nworkers = 0");
    let gw = Gateway::start(dir.path(), &held).await;

    // More messages than one claim batch takes, so several batches run.
    let count = 300;
    let mut ids = Vec::new();
    for n in 0..count {
        let body = json!({"backend": "http", "to": [format!("+{n}")], "text": format!("held {n}")});
        let (status, created) = gw.post_json("/api/v1/messages", &body).await;
        assert_eq!(status, 202, "{created}");
        ids.push(created["id"].as_i64().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(provider.received().is_empty(), "workers = 0 sent something");
    let (_, m) = gw.get_json(&format!("/api/v1/messages/{}", ids[0])).await;
    assert_eq!(m["status"], "queued", "{m}");

    std::fs::write(dir.path().join("smsgw.toml"), config.replace("[outbound]", "[outbound]\nworkers = 3")).unwrap();
    let gw = gw.restart().await;
    let got = provider.wait_for(count, WAIT).await;
    let mut texts: Vec<_> = got.iter().map(|r| r.param("text").unwrap().to_string()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), count, "each message reached the provider once");
    let last = gw.wait_message(*ids.last().unwrap(), WAIT, |m| m["status"] == "sent").await;
    assert_eq!(last["attempts"], 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(provider.received().len(), count, "nothing was sent twice");
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let gw = Gateway::start(dir.path(), &http_backend_config(&provider, &provider.origin(), "")).await;

    let (status, body) = gw.inbound_get("/backends/nope/?identity=1&text=x").await;
    assert_eq!(status, 404);
    assert!(body.contains("nope"));
    let (status, body) = gw.inbound_get("/backends/http/?text=x").await;
    assert_eq!(status, 400);
    assert!(body.contains("identity"), "{body}");

    let cases = [
        (json!({"backend": "nope", "to": ["1"], "text": "x"}), 422, "nope"),
        (json!({"backend": "http", "to": [], "text": "x"}), 422, "to"),
        (json!({"backend": "http", "to": [" "], "text": "x"}), 422, "identity"),
        (json!({"backend": "http", "to": ["1"]}), 400, "text"),
        (json!({"backend": "http", "to": ["1"], "text": "x", "extra": 1}), 400, "extra"),
        (json!({"backend": "http", "to": ["1"], "text": "x", "context": {"in_response_to": 999}}), 422, "999"),
    ];
    for (body, want, mention) in cases {
        let (status, answer) = gw.post_json("/api/v1/messages", &body).await;
        assert_eq!(status, want, "{body} → {answer}");
        assert!(answer["error"].as_str().unwrap().contains(mention), "{body} → {answer}");
    }
    let r = gw
        .http
        .post(gw.url("/api/v1/messages"))
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(gw.get_json("/api/v1/messages/abc").await.0, 400);
    assert_eq!(gw.get_json("/api/v1/messages/12345").await.0, 404);
    assert_eq!(gw.get_json("/api/v1/messages?direction=sideways").await.0, 400);
    assert_eq!(gw.get_json("/api/v1/messages?limit=0").await.0, 400);

    let (_, list) = gw.get_json("/api/v1/messages").await;
    assert!(list["messages"].as_array().unwrap().is_empty(), "nothing was stored: {list}");
    assert!(provider.received().is_empty());
}

#[tokio::test]
async fn gateway_starts_without_any_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .current_dir(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let mut answered = None;
    for _ in 0..600 {
        if let Ok(r) = http.get(format!("{url}/backends/http/?identity=1&text=ping")).send().await {
            answered = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answered, Some(200), "the built-in http backend is mounted by default");
    assert!(dir.path().join("smsgw-data").join("smsgw.db").exists(), "default data dir is ./smsgw-data");
}

#[tokio::test]
async fn webhook_app_gets_each_message_and_its_replies_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    // The user's application: answers every message with two replies.
    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = app_listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let seen2 = seen.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |axum::Json(m): axum::Json<serde_json::Value>| {
            let seen = seen2.clone();
            async move {
                let text = m["text"].as_str().unwrap_or("").to_string();
                seen.lock().unwrap().push(m);
                if text == "fail" {
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({})));
                }
                (axum::http::StatusCode::OK, axum::Json(json!({"replies": [format!("got {text}"), {"text": "bye"}]})))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(app_listener, app).await.unwrap() });
    let config = http_backend_config(&provider, &provider.origin(), "")
        + &format!("\n[apps]\norder = [\"ping\", \"webhook\"]\n[apps.webhook]\nurl = \"http://{app_addr}/sms\"\n");
    let gw = Gateway::start(dir.path(), &config).await;

    assert_eq!(gw.inbound_get("/backends/http/?identity=77&text=hello").await.0, 200);
    let got = provider.wait_for(2, WAIT).await;
    let mut texts: Vec<_> = got.iter().map(|r| r.param("text").unwrap().to_string()).collect();
    texts.sort();
    assert_eq!(texts, vec!["bye", "got hello"]);
    let posted = seen.lock().unwrap()[0].clone();
    assert_eq!(posted["identity"], "77");
    assert_eq!(posted["backend"], "http");

    // `ping` comes first in the order and handles its message: the webhook never sees it.
    assert_eq!(gw.inbound_get("/backends/http/?identity=77&text=ping").await.0, 200);
    provider.wait_for(3, WAIT).await;
    assert_eq!(seen.lock().unwrap().len(), 1);

    // A failing webhook is recorded on the message; nothing is sent.
    assert_eq!(gw.inbound_get("/backends/http/?identity=77&text=fail").await.0, 200);
    let id = gw.last_inbound_id().await;
    let m = gw.wait_message(id, WAIT, |m| m["status"] == "app-error").await;
    assert!(m["last_error"].as_str().unwrap().contains("webhook answered 500"), "{m}");
}

#[tokio::test]
async fn default_reply_answers_what_no_app_handled() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let config = http_backend_config(&provider, &provider.origin(), "")
        + "\n[apps]\norder = [\"echo\"]\ndefault_reply = \"Sorry, I did not understand.\"\n";
    let gw = Gateway::start(dir.path(), &config).await;
    assert_eq!(gw.inbound_get("/backends/http/?identity=5&text=what").await.0, 200);
    let got = provider.wait_for(1, WAIT).await;
    assert_eq!(got[0].param("text"), Some("Sorry, I did not understand."));
    assert_eq!(gw.inbound_get("/backends/http/?identity=5&text=echo").await.0, 200);
    let got = provider.wait_for(2, WAIT).await;
    assert_eq!(got[1].param("text"), Some(smsgw::apps::ECHO_HELP));
}
