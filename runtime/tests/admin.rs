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
    let settings = dir.path().join("settings.json");
    let provider = MockProvider::start(&[]).await;
    std::fs::write(&settings, self::settings(&provider).to_string()).unwrap();
    let out = cli(&["upload", "cli", wasm.to_str().unwrap()], TOKEN);
    assert!(!out.status.success(), "no settings: the http component has no sendsms_url");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sendsms_url"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&["upload", "cli", wasm.to_str().unwrap(), "--config", settings.to_str().unwrap()], TOKEN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"version\": 1"));
    let out = cli(&["list"], TOKEN);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "a header and one line per backend:\n{table}");
    assert!(lines[0].starts_with("NAME") && lines[0].contains("SHA256"), "{table}");
    assert!(lines.iter().any(|l| l.starts_with("cli ") && l.contains("upload") && l.contains("serving")), "{table}");
    let out = cli(&["list", "--json"], TOKEN);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["backends"].as_array().unwrap().len(), 2, "{json}");
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

/// An upload runs its fixtures with the settings being uploaded (the file's
/// `overrides` on top), and settings the component itself rejects are refused
/// with its reason, fixtures or not: nothing changes.
#[tokio::test]
async fn uploads_are_checked_with_the_settings_being_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let provider = MockProvider::start(&[]).await;
    let gw = gateway(dir.path()).await;

    // Settings without the URL the component needs: refused, named.
    let (status, answer) = upload(&gw, "acme", http_component(), Some(&json!({ "config": {} })), None).await;
    assert_eq!(status, 422, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("rejects these settings") && error.contains("sendsms_url"), "{answer}");
    // A URL outside allowed_hosts: the host's own refusal, named.
    let mut outside = settings(&provider);
    outside["allowed_hosts"] = json!(["https://api.example.com"]);
    let (status, answer) = upload(&gw, "acme", http_component(), Some(&outside), None).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("allowed_hosts"), "{answer}");
    assert!(!answer.to_string().contains("very-secret-value"), "{answer}");
    let (status, _) = admin(&gw, reqwest::Method::GET, "/backends/acme", None).await;
    assert_eq!(status, 404, "nothing was created");

    // The fixture file's config (which would pass) is not what runs: the
    // operator's settings are. A fixture relying on a key only its own config
    // sets fails; the same key as an override passes.
    let fixture = |key_in: &str| {
        let mut f = json!({
            "allowed_hosts": ["http://127.0.0.1:9999"],
            "outgoing": [ {
                "name": "sends to the provider",
                "message": { "text": "hi", "identities": ["+1"] },
                "mocks": [ { "method": "GET", "url": "http://127.0.0.1:9999/send", "status": 200 } ],
                "expect": { "requests": [ { "method": "GET", "url": "http://127.0.0.1:9999/send" } ],
                            "outcome": { "result": "sent" } }
            } ]
        });
        f[key_in] = json!({ "sendsms_url": "http://127.0.0.1:9999/send" });
        f
    };
    let (status, answer) =
        upload(&gw, "acme", http_component(), Some(&settings(&provider)), Some(&fixture("config"))).await;
    assert_eq!(status, 422, "the fixture ran against the operator's URL: {answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("fixtures failed") && error.contains(&provider.origin()), "{answer}");
    assert!(!error.contains("very-secret-value"), "secrets in the report: {answer}");
    let (status, answer) =
        upload(&gw, "acme", http_component(), Some(&settings(&provider)), Some(&fixture("overrides"))).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["fixtures"].as_str().unwrap().contains("1 of 1 cases passed"), "{answer}");
    assert!(provider.received().is_empty(), "fixtures and the settings check never reach the network");

    // A new version whose settings break it leaves the active one serving.
    let (status, _) = upload(&gw, "acme", http_component(), Some(&json!({ "config": {} })), None).await;
    assert_eq!(status, 422);
    let (_, shown) = admin(&gw, reqwest::Method::GET, "/backends/acme", None).await;
    assert_eq!(shown["active_version"], 1, "{shown}");
    assert_eq!(gw.inbound_get("/backends/acme/?identity=9&text=ping").await.0, 200);
}
