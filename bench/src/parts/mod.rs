//! The measurements, each bounded in time and count, loopback only. Every
//! ratio is measured side by side in one run.

mod deploy;
mod inbound;
mod outbound;
mod pace;
mod sandbox;
mod sends;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use smsgw::wasm::bindings::http_client::Response;
use smsgw::wasm::bindings::types::{HttpRequest, MessageContext, OutgoingMessage};
use smsgw::wasm::transport::{PreparedRequest, Transport, TransportFuture};
use smsgw::wasm::{Sandbox, SandboxFactory, SandboxSpec};
use wasmtime::component::Component;

use crate::Budget;
use crate::gateway;
use crate::load::LoadResult;

pub use crate::gateway::TOKEN;

/// Everything measured, for Markdown and JSON.
#[derive(Default)]
pub struct Report {
    sections: Vec<(String, Vec<(String, String)>)>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn section(&mut self, title: &str, rows: Vec<(String, String)>, json: Value) {
        self.sections.push((title.to_string(), rows));
        self.json.insert(title.to_string(), json);
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for (title, rows) in &self.sections {
            out.push_str(&format!("\n### {title}\n\n| measurement | value |\n| --- | --- |\n"));
            for (k, v) in rows {
                out.push_str(&format!("| {k} | {v} |\n"));
            }
        }
        out
    }

    pub fn json(&self) -> Value {
        Value::Object(self.json.clone())
    }
}

fn fmt_load(r: &LoadResult) -> String {
    format!("{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({} ok, {} failed)", r.rps, r.p50_ms, r.p99_ms, r.ok, r.failed)
}

fn load_json(r: &LoadResult) -> Value {
    json!({ "rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "ok": r.ok, "failed": r.failed })
}

/// The parts, in the order they run.
pub const PARTS: [&str; 5] = ["inbound", "pace", "sandbox", "outbound", "deploy"];

/// Runs the parts named in `only` (every part when it is empty); `full` also runs RapidSMS.
pub async fn run_all(budget: Budget, full: bool, only: &[String]) -> anyhow::Result<Report> {
    let smsgw = gateway::smsgw()?;
    // RapidSMS takes most of the pace part's time: left out when comparing builds.
    let full = full && std::env::var_os("SMSGW_BENCH_SKIP_RAPIDSMS").is_none();
    let mut report = Report::default();
    let wanted = |part: &str| only.is_empty() || only.iter().any(|p| p == part);
    if wanted("inbound") {
        inbound::inbound(budget, full, &mut report).await?;
    }
    if wanted("pace") {
        pace::pace(&smsgw, budget, full, &mut report).await?;
    }
    if wanted("sandbox") {
        sandbox::sandbox(budget, &mut report).await?;
    }
    if wanted("outbound") {
        outbound::outbound(&smsgw, budget, &mut report).await?;
    }
    if wanted("deploy") {
        deploy::deploy(&smsgw, budget, &mut report).await?;
    }
    Ok(report)
}

fn kannel_url(base: String) -> impl Fn(u64) -> String + Send + Sync + 'static {
    move |n| format!("{base}?id=%2B2557{n:08}&text=hello+world+{n}&charset=UTF-8&coding=0")
}

/// Median of `v` in microseconds.
fn median_us(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

/// This process's CPU µs per unit while `work` does `units` of it.
async fn cpu_us_per(units: usize, work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<f64> {
    let before = gateway::process_cpu_time(std::process::id());
    work.await?;
    let used = gateway::process_cpu_time(std::process::id()).saturating_sub(before);
    Ok(used.as_secs_f64() * 1e6 / units.max(1) as f64)
}

/// A sandbox named "bench" with default limits, as the gateway would mount it.
fn bench_sandbox(
    factory: &SandboxFactory,
    component: &Component,
    policy: smsgw::egress::EgressPolicy,
    transport: Arc<dyn Transport>,
    config: String,
) -> anyhow::Result<Sandbox> {
    let spec = SandboxSpec {
        name: "bench".into(),
        policy,
        secrets: smsgw::secrets::Secrets::default(),
        limits: smsgw::limits::Limits::default(),
        config_json: config,
        base_url: "http://gw/backends/bench/".into(),
        reserved_slots: 0,
        rate: None,
        channel_log: None,
    };
    factory.build(component, spec, transport)
}

/// Accepts every request in process, like Kannel's sendsms, so a sandboxed
/// `send` makes its whole provider exchange with no I/O to time: at once, or
/// after a timer (the instance then waits suspended, as on a real network).
struct InProcessProvider {
    answer_after: Option<Duration>,
}

impl Transport for InProcessProvider {
    fn send(&self, _request: PreparedRequest) -> TransportFuture<'_> {
        Box::pin(async move {
            if let Some(delay) = self.answer_after {
                tokio::time::sleep(delay).await;
            }
            Ok(Response {
                status: 202,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"0: Accepted for delivery".to_vec(),
            })
        })
    }
}

/// The gateway's sandbox factory with the built-in Kannel component compiled
/// (the factory holds the engine and its epoch ticker).
fn builtin_kannel() -> anyhow::Result<(SandboxFactory, Component)> {
    let factory = SandboxFactory::new(Arc::new(smsgw::wasm::engine::WasmEngine::new()?))?;
    let wasm = smsgw::backend::builtin::component("kannel").unwrap();
    let component = Component::new(factory.engine().engine(), wasm)?;
    Ok((factory, component))
}

/// [`bench_sandbox`] granted only an [`InProcessProvider`] behind it.
fn mock_sandbox(
    factory: &SandboxFactory,
    component: &Component,
    answer_after: Option<Duration>,
) -> anyhow::Result<Sandbox> {
    bench_sandbox(
        factory,
        component,
        smsgw::egress::EgressPolicy::new(&["http://127.0.0.1:9".to_string()])?,
        Arc::new(InProcessProvider { answer_after }),
        r#"{"sendsms_url": "http://127.0.0.1:9/send"}"#.to_string(),
    )
}

/// A Kannel-shaped MO request as the sandbox benchmarks parse it.
fn sample_request(query: &str, headers: Vec<(String, String)>) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        query: query.into(),
        headers,
        body: Vec::new(),
        url: format!("http://gw/backends/bench/?{query}"),
    }
}

/// A single-recipient outgoing message.
fn sample_message(text: &str) -> OutgoingMessage {
    OutgoingMessage {
        id: "1".into(),
        text: text.into(),
        identities: vec!["+255700000001".into()],
        context: MessageContext { in_response_to: None, external_id: None, fields: Vec::new() },
    }
}
