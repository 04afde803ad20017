//! The sandbox alone: instantiate + call + drop, per component, pooled and not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smsgw::wasm::SandboxFactory;

use super::{Report, mock_sandbox, sample_message, sample_request};
use crate::Budget;

/// The sandbox alone: instantiate + call + drop, per component, pooled and not.
pub async fn sandbox(b: Budget, report: &mut Report) -> anyhow::Result<()> {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/examples");
    let mut components: Vec<(String, Vec<u8>)> = vec![
        ("Rust (kannel)".into(), smsgw::backend::builtin::component("kannel").unwrap().to_vec()),
        ("Rust (http)".into(), smsgw::backend::builtin::component("http").unwrap().to_vec()),
    ];
    for lang in ["python", "js", "c"] {
        if let Ok(bytes) = std::fs::read(examples.join(format!("{lang}.wasm"))) {
            components.push((format!("{lang} (http)"), bytes));
        }
    }
    let mut rows = Vec::new();
    let mut j = Vec::new();
    if let Ok(only) = std::env::var("SMSGW_BENCH_COMPONENT") {
        components.retain(|(name, _)| name.contains(&only));
    }
    for pooling in [true, false] {
        if std::env::var("SMSGW_BENCH_POOLING_ONLY").is_ok() && !pooling {
            continue;
        }
        let factory = SandboxFactory::new(Arc::new(smsgw::wasm::engine::WasmEngine::with_pooling(pooling)?))?;
        for (name, wasm) in &components {
            let started = Instant::now();
            let component = wasmtime::component::Component::new(factory.engine().engine(), wasm)?;
            let compile = started.elapsed();
            let sandbox = mock_sandbox(&factory, &component, None)?;
            let request = sample_request(
                "id=%2B255700000001&identity=%2B255700000001&text=hello+world&charset=UTF-8&coding=0",
                vec![("user-agent".into(), "Kannel/1.4.5".into())],
            );
            let message = sample_message("hello");
            let mut parse = Vec::with_capacity(b.calls);
            let mut send = Vec::with_capacity(b.calls);
            // Slow components (an interpreter inside) get fewer calls: at most ~4 s each.
            let budget_end = Instant::now() + Duration::from_secs(4);
            let mut faults = 0u64;
            for i in 0..b.calls + b.calls / 10 {
                if i > b.calls / 10 + 100 && Instant::now() > budget_end {
                    break;
                }
                let faults_before = thread_minor_faults();
                let t = Instant::now();
                let out = sandbox.parse_incoming(&request).await;
                let took = t.elapsed();
                let parse_faults = thread_minor_faults().saturating_sub(faults_before);
                anyhow::ensure!(out.result.is_ok(), "{name}: parse call failed: {:?}", out.result.err());
                let t = Instant::now();
                let out = sandbox.send(message.clone()).await;
                let took_send = t.elapsed();
                anyhow::ensure!(matches!(out.result, Ok(Ok(_))), "{name}: send failed: {:?}", out.result);
                if i >= b.calls / 10 {
                    faults += parse_faults;
                    parse.push(took);
                    send.push(took_send);
                }
            }
            parse.sort();
            send.sort();
            let us = |v: &[Duration], p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e6;
            let alloc = if pooling { "pooling" } else { "on-demand" };
            rows.push((
                format!(
                    "{name}, {alloc}: size {} KiB, compile {} ms, {} calls",
                    wasm.len() / 1024,
                    compile.as_millis(),
                    parse.len()
                ),
                format!(
                    "parse-incoming median {:.1} µs (p99 {:.1}, {:.0} page faults per call); send median {:.1} µs (p99 {:.1})",
                    us(&parse, 0.5),
                    us(&parse, 0.99),
                    faults as f64 / parse.len().max(1) as f64,
                    us(&send, 0.5),
                    us(&send, 0.99)
                ),
            ));
            j.push(json!({
                "component": name, "allocator": alloc, "size": wasm.len(), "compile_ms": compile.as_millis() as u64,
                "parse_median_us": us(&parse, 0.5), "parse_p99_us": us(&parse, 0.99),
                "parse_page_faults": faults as f64 / parse.len().max(1) as f64,
                "send_median_us": us(&send, 0.5), "send_p99_us": us(&send, 0.99),
            }));
        }
    }
    report.section(
        &format!(
            "Sandbox per call: instantiate + call + drop ({} calls; target ≤ 15 µs median for Rust kannel, pooling)",
            b.calls
        ),
        rows,
        Value::Array(j),
    );
    Ok(())
}

/// Minor page faults of the calling thread so far; 0 without `/proc`.
fn thread_minor_faults() -> u64 {
    smsgw_test_support::thread_minor_faults().unwrap_or(0)
}
