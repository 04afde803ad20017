//! Backends in other languages (`backends/examples/<lang>/`, built by their own
//! toolchains in `scripts/test.sh`) pass the generic HTTP backend's fixtures
//! and serve traffic after being uploaded into a running gateway.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Gateway, MockProvider};
use serde_json::json;
use smsgw::authoring::fixtures::FixtureRunner;

const TOKEN: &str = "languages-test-token-0123456789";

/// The built component for `lang`, or `None` (with a loud note) when the
/// examples were not built: `scripts/test.sh` builds them and sets
/// `SMSGW_EXAMPLES_DIR`, and then a missing component is a failure.
fn component(lang: &str) -> Option<PathBuf> {
    let required = std::env::var_os("SMSGW_EXAMPLES_DIR");
    let dir = required
        .clone()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/examples"));
    let path = dir.join(format!("{lang}.wasm"));
    if path.exists() {
        return Some(path);
    }
    assert!(required.is_none(), "{} was not built by backends/examples/{lang}/build.sh", path.display());
    eprintln!("SKIPPED: {} not built; run scripts/test.sh (it builds the examples)", path.display());
    None
}

async fn passes_fixtures_and_serves(lang: &str) {
    let Some(path) = component(lang) else { return };
    let wasm = std::fs::read(&path).unwrap();

    let runner = FixtureRunner::new().unwrap();
    let compiled = runner.compile(&wasm).unwrap_or_else(|e| panic!("{lang}: {e:#}"));
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../backends/http/testdata");
    for file in ["incoming.json", "outgoing.json"] {
        let report = smsgw::authoring::fixtures::run_file(&runner, &compiled, &testdata.join(file)).await.unwrap();
        assert!(report.passed(), "{lang} {file}:\n{report}");
    }

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let provider = MockProvider::start(&[]).await;
    let gw = Gateway::start(dir.path(), &format!("admin_token_file = {:?}\n", token_file.display().to_string())).await;
    let settings = json!({
        "allowed_hosts": [provider.origin()],
        "config": { "sendsms_url": format!("{}/send", provider.origin()) },
    });
    let form = reqwest::multipart::Form::new()
        .part("component", reqwest::multipart::Part::bytes(wasm).file_name(format!("{lang}.wasm")))
        .text("config", settings.to_string());
    let r = gw
        .http
        .put(gw.url(&format!("/api/v1/admin/backends/{lang}")))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{lang} upload: {}", r.text().await.unwrap());

    let (status, body) = gw.inbound_get(&format!("/backends/{lang}/?identity=%2B1555&text=echo+h%C3%A9llo")).await;
    assert_eq!((status, body.as_str()), (200, "OK"), "{lang} inbound");
    let got = provider.wait_for(1, Duration::from_secs(60)).await;
    assert_eq!(got[0].param("identity"), Some("+1555"), "{lang} echo reply");
    assert_eq!(got[0].param("text"), Some("héllo"), "{lang} echo reply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_backend() {
    passes_fixtures_and_serves("python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_backend() {
    passes_fixtures_and_serves("js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_backend() {
    passes_fixtures_and_serves("c").await;
}
