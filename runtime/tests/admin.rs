//! Uploading backends into a running gateway: validation, atomic activation,
//! rollback, deletion, dry runs, persistence, and the CLI.

mod common;

use std::time::Duration;

use common::{Gateway, MockProvider, test_guest};
use serde_json::{Value, json};

const TOKEN: &str = "test-admin-token-0123456789";
const WAIT: Duration = Duration::from_secs(20);

/// A gateway with the admin API enabled and the built-in `http` backend from the config file.
async fn gateway(dir: &std::path::Path) -> Gateway {
    let token_file = dir.join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let config = format!(
        "admin_token_file = {:?}\n[outbound]\nretry_base_ms = 50\nmax_attempts = 2\n[[backends]]\nname = \"http\"\ncomponent = \"builtin:http\"\n",
        token_file.display().to_string()
    );
    Gateway::start(dir, &config).await
}

fn http_component() -> Vec<u8> {
    smsgw::backend::builtin::component("http").unwrap().to_vec()
}

fn settings(provider: &MockProvider) -> Value {
    json!({
        "allowed_hosts": [provider.origin()],
        "config": { "sendsms_url": format!("{}/send", provider.origin()), "sendsms_params": { "key": "{{secret:api_key}}" } },
        "secrets": { "api_key": "very-secret-value" },
        "limits": { "cpu_ms": 200 }
    })
}

async fn upload(
    gw: &Gateway,
    name: &str,
    wasm: Vec<u8>,
    settings: Option<&Value>,
    fixtures: Option<&Value>,
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new()
        .part("component", reqwest::multipart::Part::bytes(wasm).file_name("backend.wasm"));
    if let Some(s) = settings {
        form = form.text("config", s.to_string());
    }
    if let Some(f) = fixtures {
        form = form.text("fixtures", f.to_string());
    }
    let r = gw
        .http
        .put(gw.url(&format!("/api/v1/admin/backends/{name}")))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn admin(gw: &Gateway, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = gw.http.request(method, gw.url(&format!("/api/v1/admin{path}"))).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn admin_api_needs_the_token_and_is_closed_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let open = Gateway::start(dir.path(), "").await;
    let r = open.http.get(open.url("/api/v1/admin/backends")).bearer_auth("anything").send().await.unwrap();
    assert_eq!(r.status(), 403, "no token configured: disabled, never open");
    drop(open);

    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    for auth in [None, Some("Bearer wrong"), Some(TOKEN)] {
        let mut req = gw.http.get(gw.url("/api/v1/admin/backends"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(r.text().await.unwrap().is_empty(), "401 carries no detail");
    }
    let (status, list) = admin(&gw, reqwest::Method::GET, "/backends", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["backends"][0]["name"], "http");
    assert_eq!(list["backends"][0]["source"], "config");
}

#[tokio::test]
async fn upload_serve_swap_roll_back_restart_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let gw = gateway(dir.path()).await;

    // Version 1: the generic HTTP component under a new name.
    let (status, v1) = upload(&gw, "up", http_component(), Some(&settings(&provider)), None).await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["wit_version"], "0.1.0");
    assert_eq!(v1["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(gw.inbound_get("/backends/up/?identity=9&text=ping").await.0, 200);
    let inbound = gw.last_inbound_id().await;
    let reply = gw.wait_reply_to(inbound, WAIT).await;
    gw.wait_message(reply["id"].as_i64().unwrap(), WAIT, |m| m["status"] == "sent").await;
    let got = provider.wait_for(1, WAIT).await;
    assert_eq!(got[0].param("key"), Some("very-secret-value"), "secret filled in by the host");

    // Secrets never come back out of the API.
    let (_, shown) = admin(&gw, reqwest::Method::GET, "/backends/up", None).await;
    assert!(!shown.to_string().contains("very-secret-value"), "{shown}");
    assert_eq!(shown["config"]["secrets"]["api_key"], "[redacted]");
    assert_eq!(shown["counters"]["inbound_ok"], 1);
    assert!(!gw.log().contains("very-secret-value"), "secret in the log");

    // Bad uploads change nothing.
    let bad = [
        (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        (b"hello".to_vec(), "not a WebAssembly file"),
        (b"\0asm\x0d\0\x01\0garbage".to_vec(), "does not compile"),
    ];
    for (wasm, reason) in bad {
        let (status, answer) = upload(&gw, "up", wasm, Some(&settings(&provider)), None).await;
        assert_eq!(status, 422, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(reason), "{answer}");
    }
    let mut bad_limits = settings(&provider);
    bad_limits["limits"] = json!({ "no_such_limit": 1 });
    let (status, answer) = upload(&gw, "up", http_component(), Some(&bad_limits), None).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("no_such_limit"));
    let (status, answer) = upload(&gw, "http", http_component(), None, None).await;
    assert_eq!(status, 409, "config-file backends are managed there: {answer}");
    let (status, _) = upload(&gw, "Bad Name", http_component(), None, None).await;
    assert_eq!(status, 422);
    let failing_fixture = json!({ "incoming": [ {
        "name": "expects a different text",
        "request": { "query": "identity=1&text=hi" },
        "expect": { "messages": [ { "identity": "1", "text": "bye" } ] }
    } ] });
    let (status, answer) = upload(&gw, "up", test_component("trap"), None, Some(&failing_fixture)).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("fixtures failed"), "{answer}");
    let (_, shown) = admin(&gw, reqwest::Method::GET, "/backends/up", None).await;
    assert_eq!(shown["active_version"], 1, "still version 1 after every refused upload");
    assert_eq!(shown["versions"].as_array().unwrap().len(), 1);

    // Version 2: a component that traps on demand, with fixtures it passes.
    let passing_fixture = json!({ "incoming": [ {
        "name": "accepts plain text",
        "request": { "query": "identity=1&text=hi" },
        "expect": { "messages": [ { "identity": "1", "text": "hi" } ] }
    } ] });
    let (status, v2) = upload(&gw, "up", test_component("trap"), Some(&json!({})), Some(&passing_fixture)).await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(gw.inbound_get("/backends/up/?identity=1&text=trap").await.0, 500, "new version serves");

    // Roll back to version 1, which parses the same request fine.
    let (status, rolled) = admin(&gw, reqwest::Method::POST, "/backends/up/rollback", None).await;
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(rolled["active_version"], 1);
    assert_eq!(gw.inbound_get("/backends/up/?identity=1&text=trap").await.0, 200);

    // A restart comes back with exactly the last activated version.
    let gw = gw.restart().await;
    let (_, shown) = admin(&gw, reqwest::Method::GET, "/backends/up", None).await;
    assert_eq!(shown["active_version"], 1, "{shown}");
    assert_eq!(gw.inbound_get("/backends/up/?identity=1&text=trap").await.0, 200);

    // Config-only update: a new version with the same component.
    let mut renamed = settings(&provider);
    renamed["config"]["identity_name"] = json!("from");
    let r = gw.http.put(gw.url("/api/v1/admin/backends/up")).bearer_auth(TOKEN).json(&renamed).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v3: Value = r.json().await.unwrap();
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["sha256"], v1["sha256"]);
    assert_eq!(gw.inbound_get("/backends/up/?from=1&text=x").await.0, 200);

    // Delete: inbound 404, queued messages fail with a reason.
    provider.wait_for(1, WAIT).await;
    let dead = MockProvider::start(&[503, 503, 503, 503]).await;
    let mut slow = settings(&dead);
    slow["config"]["sendsms_url"] = json!(format!("{}/send", dead.origin()));
    let r = gw.http.put(gw.url("/api/v1/admin/backends/up")).bearer_auth(TOKEN).json(&slow).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, created) =
        gw.post_json("/api/v1/messages", &json!({"backend": "up", "to": ["5"], "text": "stuck"})).await;
    assert_eq!(status, 202);
    let (status, deleted) = admin(&gw, reqwest::Method::DELETE, "/backends/up", None).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(gw.inbound_get("/backends/up/?identity=1&text=x").await.0, 404);
    let m = gw.wait_message(created["id"].as_i64().unwrap(), WAIT, |m| m["status"] == "failed").await;
    assert!(
        m["recipients"][0]["error"].as_str().unwrap().contains("deleted")
            || m["recipients"][0]["error"].as_str().unwrap().contains("not mounted"),
        "{m}"
    );
    let (status, _) = admin(&gw, reqwest::Method::GET, "/backends/up", None).await;
    assert_eq!(status, 404);
}

fn test_component(name: &str) -> Vec<u8> {
    std::fs::read(test_guest(name)).unwrap()
}

#[tokio::test]
async fn dry_run_parses_and_sends_without_storing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let gw = gateway(dir.path()).await;
    let (status, _) = upload(&gw, "up", http_component(), Some(&settings(&provider)), None).await;
    assert_eq!(status, 200);

    let (status, parsed) = admin(
        &gw,
        reqwest::Method::POST,
        "/backends/up/try",
        Some(json!({ "request": { "query": "identity=%2B1&text=hi" } })),
    )
    .await;
    assert_eq!(status, 200, "{parsed}");
    assert_eq!(parsed["result"]["messages"][0]["identity"], "+1");

    let (status, sent) = admin(
        &gw,
        reqwest::Method::POST,
        "/backends/up/try",
        Some(json!({
            "message": { "text": "hello", "identities": ["1"] },
            "mocks": [ { "method": "GET", "url": format!("{}/send", provider.origin()), "status": 400, "body": "nope" } ]
        })),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["outcome"]["error"]["kind"], "permanent");
    assert_eq!(sent["requests"].as_array().unwrap().len(), 1);
    assert!(!sent.to_string().contains("very-secret-value"), "secrets redacted in the dry run: {sent}");

    let (status, answer) = admin(&gw, reqwest::Method::POST, "/backends/up/try", Some(json!({}))).await;
    assert_eq!(status, 422, "{answer}");
    let (_, list) = gw.get_json("/api/v1/messages").await;
    assert!(list["messages"].as_array().unwrap().is_empty(), "a dry run stores nothing");
    assert!(provider.received().is_empty(), "a dry run reaches no provider");
}

#[tokio::test]
async fn cli_talks_to_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let wasm = dir.path().join("http.wasm");
    std::fs::write(&wasm, http_component()).unwrap();
    let cli = |args: &[&str], token: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_smsgw"))
            .arg("backend")
            .args(["--url", &gw.url(""), "--token", token])
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["upload", "cli", wasm.to_str().unwrap()], TOKEN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"version\": 1"));
    let out = cli(&["list"], TOKEN);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"cli\""));
    let out = cli(&["list"], "wrong-token");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the admin token"));
    let out = cli(&["delete", "http"], TOKEN);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("configuration file"));
}

#[test]
fn cli_errors_say_how_to_fix_them_without_a_backtrace() {
    let port = common::free_port();
    let run = |args: &[&str], token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_smsgw"));
        cmd.args(["backend", "--url", &format!("http://127.0.0.1:{port}")]).args(args);
        cmd.env_remove("SMSGW_ADMIN_TOKEN").env_remove("SMSGW_URL").env("RUST_BACKTRACE", "1");
        if let Some(token) = token {
            cmd.env("SMSGW_ADMIN_TOKEN", token);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let no_token = run(&["list"], None);
    assert!(no_token.contains("--token") && no_token.contains("SMSGW_ADMIN_TOKEN"), "{no_token}");
    let unreachable = run(&["list"], Some(TOKEN));
    assert!(unreachable.contains("--url") && unreachable.contains("SMSGW_URL"), "{unreachable}");
    for stderr in [no_token, unreachable] {
        assert!(!stderr.to_lowercase().contains("stack backtrace"), "a user error printed a backtrace:\n{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
}
