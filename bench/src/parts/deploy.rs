//! Upload → first request served, and restart with many deployed backends.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Report, TOKEN};
use crate::Budget;
use crate::gateway::{Gateway, GatewayOptions};

/// Polls `url` until it answers 2xx.
async fn wait_ok(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Upload → first request served, and restart with many deployed backends.
pub async fn deploy(smsgw: &GatewayOptions, b: Budget, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let gw = Gateway::start_with(smsgw.clone(), dir.path(), "").await;
    let cold_start = gw.started_in;
    let client = reqwest::Client::new();
    let upload = |name: String, wasm: Vec<u8>| {
        let (client, url) = (client.clone(), gw.url(&format!("/api/v1/admin/backends/{name}")));
        async move {
            // Settings the http backends accept (the upload checks them); nothing is sent.
            let settings = serde_json::json!({
                "allowed_hosts": ["http://127.0.0.1:9"],
                "config": { "sendsms_url": "http://127.0.0.1:9/send" },
            });
            let form = reqwest::multipart::Form::new()
                .part("component", reqwest::multipart::Part::bytes(wasm).file_name("b.wasm"))
                .text("config", settings.to_string());
            let r = client.put(url).bearer_auth(TOKEN).multipart(form).send().await?;
            anyhow::ensure!(r.status().is_success(), "upload failed: {}", r.text().await?);
            anyhow::Ok(())
        }
    };
    let mut rows = Vec::new();
    let mut j = serde_json::Map::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/examples");
    let mut candidates = vec![("Rust".to_string(), smsgw::backend::builtin::component("http").unwrap().to_vec())];
    if let Ok(py) = std::fs::read(examples.join("python.wasm")) {
        candidates.push(("Python".into(), py));
    }
    for (lang, wasm) in candidates {
        let name = format!("fresh-{}", lang.to_lowercase());
        let started = Instant::now();
        upload(name.clone(), wasm).await?;
        wait_ok(&client, &gw.url(&format!("/backends/{name}/?identity=1&text=hi"))).await;
        let took = started.elapsed();
        rows.push((
            format!("upload of the {lang} http component → first request served"),
            format!("{} ms", took.as_millis()),
        ));
        j.insert(format!("upload_{}_ms", lang.to_lowercase()), json!(took.as_millis() as u64));
    }
    let (idle, _) = gw.memory_kib();
    let wasm = smsgw::backend::builtin::component("kannel").unwrap().to_vec();
    for i in 0..b.backends {
        upload(format!("b{i}"), wasm.clone()).await?;
    }
    let (with_many, _) = gw.memory_kib();
    let gw = gw.restart().await;
    let restart = gw.started_in;
    wait_ok(&client, &gw.url(&format!("/backends/b{}/?id=1&text=hi", b.backends - 1))).await;
    let (after_restart, _) = gw.memory_kib();
    rows.push((
        "cold start, empty data dir (compiles the built-in http backend)".into(),
        format!("{} ms", cold_start.as_millis()),
    ));
    rows.push((
        format!("restart → serving with {} deployed backends (compile cache hit)", b.backends + 2),
        format!("{} ms", restart.as_millis()),
    ));
    rows.push((
        "RSS before / after deploying them / after restart".into(),
        format!("{} / {} / {} MiB", idle / 1024, with_many / 1024, after_restart / 1024),
    ));
    j.insert("restart_ms".into(), json!(restart.as_millis() as u64));
    j.insert("backends".into(), json!(b.backends + 2));
    j.insert("rss_kib".into(), json!({ "before": idle, "with_backends": with_many, "after_restart": after_restart }));
    report.section("Deploy and restart", rows, Value::Object(j));
    Ok(())
}
