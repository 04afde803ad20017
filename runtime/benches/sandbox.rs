//! Per-call sandbox cost: instantiate + `parse-incoming` + drop, on a fresh
//! instance each time, exactly as the gateway serves an inbound request.
//!
//! `cargo bench -p smsgw --bench sandbox [-- ITERATIONS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use smsgw::egress::EgressPolicy;
use smsgw::limits::Limits;
use smsgw::secrets::Secrets;
use smsgw::wasm::bindings::types::HttpRequest;
use smsgw::wasm::engine::WasmEngine;
use smsgw::wasm::http_client::NetworkTransport;
use smsgw::wasm::sandbox::{self, BackendShared, Sandbox};
use wasmtime::component::Component;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let engine = Arc::new(WasmEngine::new()?);
    let linker = sandbox::linker(&engine)?;
    println!("| backend | size | compile | median | p99 | calls |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for name in smsgw::builtin::names() {
        let wasm = smsgw::builtin::component(name).expect("built-in");
        let started = Instant::now();
        let component = Component::new(engine.engine(), wasm)?;
        let compile = started.elapsed();
        let shared = BackendShared {
            name: name.to_string(),
            policy: EgressPolicy::default(),
            secrets: Secrets::default(),
            transport: Arc::new(NetworkTransport::new()?),
        };
        let sandbox = Sandbox::new(&linker, &component, shared, Limits::default(), "{}".into(), "http://gw/".into())?;
        let request = HttpRequest {
            method: "GET".into(),
            path: "/".into(),
            query: "identity=%2B15551234&text=hello+world&id=%2B15551234".into(),
            headers: vec![("user-agent".into(), "bench".into())],
            body: Vec::new(),
            url: "http://gw/backends/x/?identity=%2B15551234&text=hello+world".into(),
        };
        let mut samples = Vec::with_capacity(iterations);
        runtime.block_on(async {
            for _ in 0..iterations.min(1000) {
                let _ = sandbox.parse_incoming(request.clone()).await;
            }
            for _ in 0..iterations {
                let started = Instant::now();
                let out = sandbox.parse_incoming(request.clone()).await;
                samples.push(started.elapsed());
                assert!(out.result.is_ok(), "{name}: call failed: {:?}", out.result.err());
            }
        });
        samples.sort();
        println!(
            "| {name} | {} KiB | {:.0} ms | {:.1} µs | {:.1} µs | {iterations} |",
            wasm.len() / 1024,
            compile.as_secs_f64() * 1e3,
            percentile(&samples, 0.5).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6,
        );
    }
    Ok(())
}
