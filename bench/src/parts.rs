//! The five measurements, each bounded in time and count, loopback only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smsgw::wasm::bindings::http_client::Response;
use smsgw::wasm::bindings::types::{HttpRequest, MessageContext, OutgoingMessage};
use smsgw::wasm::http_client::{PreparedRequest, Transport, TransportFuture};

use crate::Budget;
use crate::gateway::{self, Gateway};
use crate::load::{self, LoadResult};

/// Admin token the benchmark's gateways use.
pub const TOKEN: &str = "bench-admin-token-0123456789";

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
pub const PARTS: [&str; 4] = ["inbound", "sandbox", "outbound", "deploy"];

/// Runs the parts named in `only` (every part when it is empty); `full` also runs RapidSMS.
pub async fn run_all(budget: Budget, full: bool, only: &[String]) -> anyhow::Result<Report> {
    let bin = gateway::binary()?;
    let mut report = Report::default();
    let wanted = |part: &str| only.is_empty() || only.iter().any(|p| p == part);
    if wanted("inbound") {
        inbound(&bin, budget, full, &mut report).await?;
    }
    if wanted("sandbox") {
        sandbox(budget, &mut report).await?;
    }
    if wanted("outbound") {
        outbound(&bin, budget, &mut report).await?;
    }
    if wanted("deploy") {
        deploy(&bin, budget, &mut report).await?;
    }
    Ok(report)
}

fn kannel_url(base: String) -> impl Fn(u64) -> String + Send + Sync + 'static {
    move |n| format!("{base}?id=%2B2557{n:08}&text=hello+world+{n}&charset=UTF-8&coding=0")
}

/// Like [`kannel_url`] for the native route, burning `spin_us` of CPU per request first.
fn spun_kannel_url(base: String, spin_us: u64) -> impl Fn(u64) -> String + Send + Sync + 'static {
    let url = kannel_url(base);
    move |n| format!("{}&bench_spin_us={spin_us}", url(n))
}

/// Inbound messages the gateway has committed for `backend`.
fn stored(gw: &Gateway, backend: &str) -> i64 {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(gw.data_dir.join("smsgw.db"), flags)
        .and_then(|db| {
            db.query_row("SELECT COUNT(*) FROM messages WHERE direction = 'in' AND backend = ?1", [backend], |r| {
                r.get(0)
            })
        })
        .unwrap_or(-1)
}

/// Inbound end to end: Wasm parsing vs native parsing vs the HTTP floor vs RapidSMS.
async fn inbound(bin: &std::path::Path, b: Budget, full: bool, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config =
        "bench_routes = true\n[apps]\norder = []\n[[backends]]\nname = \"kannel\"\ncomponent = \"builtin:kannel\"\n";
    let (gw, _) = Gateway::start(bin, dir.path(), config).await?;
    let (idle_rss, _) = gw.memory_kib();
    let floor = load::run(b.concurrency, b.phase, {
        let u = gw.url("/bench/floor");
        move |_| u.clone()
    })
    .await;
    // Alternate the contenders so drift on a shared machine hits them all.
    let mut wasm = Vec::new();
    let mut native = Vec::new();
    // Gateway CPU per request in each phase: less noisy than throughput here.
    let (mut wasm_cpu, mut native_cpu) = (f64::MAX, f64::MAX);
    let phase = |url: Box<dyn Fn(u64) -> String + Send + Sync>| {
        let gw = &gw;
        async move {
            let before = gw.cpu_time();
            let result = load::run(b.concurrency, b.phase, url).await;
            let cpu_us = gw.cpu_time().saturating_sub(before).as_secs_f64() * 1e6 / (result.ok.max(1) as f64);
            (result, cpu_us)
        }
    };
    // Calibration: the native route burning the sandbox's isolated per-call
    // cost first (what that much CPU per request alone costs).
    let (per_call_us, _) = isolated_per_call_us(b.calls / 4).await?;
    let spin_us = per_call_us.round() as u64;
    let (mut spun, mut spun_cpu) = (Vec::new(), f64::MAX);
    for _ in 0..3 {
        let (result, cpu) = phase(Box::new(kannel_url(gw.url("/backends/kannel/")))).await;
        wasm.push(result);
        wasm_cpu = wasm_cpu.min(cpu);
        let (result, cpu) = phase(Box::new(kannel_url(gw.url("/bench/native/kannel/")))).await;
        native.push(result);
        native_cpu = native_cpu.min(cpu);
        let (result, cpu) = phase(Box::new(spun_kannel_url(gw.url("/bench/native/kannel/"), spin_us))).await;
        spun.push(result);
        spun_cpu = spun_cpu.min(cpu);
    }

    let best = |v: &[LoadResult]| v.iter().max_by(|a, c| a.rps.total_cmp(&c.rps)).cloned().unwrap_or_default();
    let (wasm, native, spun) = (best(&wasm), best(&native), best(&spun));
    let (_, peak_rss) = gw.memory_kib();
    let wasm_ok: u64 = wasm.ok;
    let stored_wasm = stored(&gw, "kannel");
    let tax = wasm.rps / native.rps;
    let mut rows = vec![
        ("HTTP floor (no parsing, no store)".to_string(), fmt_load(&floor)),
        ("Kannel MO via the Wasm component + durable commit".into(), fmt_load(&wasm)),
        ("same, parsed by native Rust in the same binary".into(), fmt_load(&native)),
        ("Wasm / native throughput (target ≥ 0.8)".into(), format!("{tax:.2}")),
        (
            "gateway CPU per request (user + system, least of 3): Wasm / native".into(),
            format!("{wasm_cpu:.0} µs / {native_cpu:.0} µs"),
        ),
        (
            format!(
                "calibration: native route burning {spin_us} µs of CPU per request first (the sandbox's isolated per-call cost, instantiate + parse-incoming + drop, median)"
            ),
            format!("{} ({spun_cpu:.0} µs CPU per request)", fmt_load(&spun)),
        ),
        ("calibrated native / native".into(), format!("{:.2}", spun.rps / native.rps)),
        (
            "messages stored by the Wasm route (all phases)".into(),
            format!("{stored_wasm} (best phase acknowledged {wasm_ok})"),
        ),
        (
            "RSS idle / peak during the inbound runs".into(),
            format!("{} MiB / {} MiB", idle_rss / 1024, peak_rss / 1024),
        ),
    ];
    let mut j = json!({
        "floor": load_json(&floor), "wasm": load_json(&wasm), "native": load_json(&native),
        "wasm_over_native": tax, "wasm_cpu_us_per_req": wasm_cpu, "native_cpu_us_per_req": native_cpu,
        "per_call_parse_us": per_call_us, "spun": load_json(&spun), "spun_cpu_us_per_req": spun_cpu, "spun_over_native": spun.rps / native.rps, "rss_idle_kib": idle_rss, "rss_peak_kib": peak_rss,
    });
    if full {
        match rapidsms(b).await {
            Ok(r) => {
                rows.push(("RapidSMS 2.2 Kannel view under gunicorn".into(), fmt_load(&r)));
                rows.push((
                    "smsgw (Wasm) / RapidSMS throughput (target ≥ 30)".into(),
                    format!("{:.1}", wasm.rps / r.rps),
                ));
                j["rapidsms"] = load_json(&r);
                j["smsgw_over_rapidsms"] = json!(wasm.rps / r.rps);
            }
            Err(e) => rows.push(("RapidSMS 2.2".into(), format!("not measured: {e}"))),
        }
    }
    report.section(&format!("Inbound end to end ({} clients, {:?} per phase)", b.concurrency, b.phase), rows, j);
    Ok(())
}

/// RapidSMS's Kannel view, set up by `bench/rapidsms/` scripts.
async fn rapidsms(b: Budget) -> anyhow::Result<LoadResult> {
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rapidsms");
    anyhow::ensure!(scripts.join("setup.sh").exists(), "bench/rapidsms/setup.sh is missing");
    let status = std::process::Command::new("bash").arg(scripts.join("setup.sh")).status()?;
    anyhow::ensure!(status.success(), "bench/rapidsms/setup.sh failed");
    let port = gateway::free_port();
    let out = std::process::Command::new("bash").arg(scripts.join("run.sh")).arg(port.to_string()).output()?;
    anyhow::ensure!(out.status.success(), "run.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let pid = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .rev()
        .find_map(|w| w.parse::<u32>().ok())
        .ok_or_else(|| anyhow::anyhow!("run.sh printed no PID"))?;
    let result =
        load::run(b.concurrency, b.phase, kannel_url(format!("http://127.0.0.1:{port}/backends/kannel-fake-smsc/")))
            .await;
    let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    Ok(result)
}

/// A sandbox named "bench" with default limits, as the gateway would mount it.
fn bench_sandbox(
    linker: &wasmtime::component::Linker<smsgw::wasm::sandbox::HostState>,
    component: &wasmtime::component::Component,
    policy: smsgw::egress::EgressPolicy,
    transport: Arc<dyn smsgw::wasm::http_client::Transport>,
    config: String,
) -> anyhow::Result<smsgw::wasm::sandbox::Sandbox> {
    let shared = smsgw::wasm::sandbox::BackendShared {
        name: "bench".into(),
        policy,
        secrets: smsgw::secrets::Secrets::default(),
        transport,
    };
    smsgw::wasm::sandbox::Sandbox::new(
        linker,
        component,
        shared,
        smsgw::limits::Limits::default(),
        config,
        "http://gw/backends/bench/".into(),
    )
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

/// The gateway's engine and linker with the built-in Kannel component
/// compiled; the engine is returned so that it (and its epoch ticker) lives
/// as long as the caller's sandboxes.
fn builtin_kannel() -> anyhow::Result<(
    smsgw::wasm::engine::WasmEngine,
    wasmtime::component::Linker<smsgw::wasm::sandbox::HostState>,
    wasmtime::component::Component,
)> {
    let engine = smsgw::wasm::engine::WasmEngine::new()?;
    let linker = smsgw::wasm::sandbox::linker(&engine)?;
    let component = wasmtime::component::Component::new(engine.engine(), smsgw::builtin::component("kannel").unwrap())?;
    Ok((engine, linker, component))
}

/// [`bench_sandbox`] granted only an [`InProcessProvider`] behind it.
fn mock_sandbox(
    linker: &wasmtime::component::Linker<smsgw::wasm::sandbox::HostState>,
    component: &wasmtime::component::Component,
    answer_after: Option<Duration>,
) -> anyhow::Result<smsgw::wasm::sandbox::Sandbox> {
    bench_sandbox(
        linker,
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

/// The sandbox alone: instantiate + call + drop, per component, pooled and not.
async fn sandbox(b: Budget, report: &mut Report) -> anyhow::Result<()> {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/examples");
    let mut components: Vec<(String, Vec<u8>)> = vec![
        ("Rust (kannel)".into(), smsgw::builtin::component("kannel").unwrap().to_vec()),
        ("Rust (http)".into(), smsgw::builtin::component("http").unwrap().to_vec()),
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
        let engine = Arc::new(smsgw::wasm::engine::WasmEngine::with_pooling(pooling)?);
        let linker = smsgw::wasm::sandbox::linker(&engine)?;
        for (name, wasm) in &components {
            let started = Instant::now();
            let component = wasmtime::component::Component::new(engine.engine(), wasm)?;
            let compile = started.elapsed();
            let sandbox = mock_sandbox(&linker, &component, None)?;
            let request = sample_request(
                "id=%2B255700000001&identity=%2B255700000001&text=hello+world&charset=UTF-8&coding=0",
                vec![("user-agent".into(), "Kannel/1.4.5".into())],
            );
            let message = sample_message("hello");
            let mut parse = Vec::with_capacity(b.calls);
            let mut send = Vec::with_capacity(b.calls);
            // Slow components (an interpreter inside) get fewer calls: at most ~4 s each.
            let budget_end = Instant::now() + Duration::from_secs(4);
            for i in 0..b.calls + b.calls / 10 {
                if i > b.calls / 10 + 100 && Instant::now() > budget_end {
                    break;
                }
                let t = Instant::now();
                let out = sandbox.parse_incoming(request.clone()).await;
                let took = t.elapsed();
                anyhow::ensure!(out.result.is_ok(), "{name}: parse call failed: {:?}", out.result.err());
                let t = Instant::now();
                let out = sandbox.send(message.clone()).await;
                let took_send = t.elapsed();
                anyhow::ensure!(matches!(out.result, Ok(Ok(_))), "{name}: send failed: {:?}", out.result);
                if i >= b.calls / 10 {
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
                    "parse-incoming median {:.1} µs (p99 {:.1}); send median {:.1} µs (p99 {:.1})",
                    us(&parse, 0.5),
                    us(&parse, 0.99),
                    us(&send, 0.5),
                    us(&send, 0.99)
                ),
            ));
            j.push(json!({
                "component": name, "allocator": alloc, "size": wasm.len(), "compile_ms": compile.as_millis() as u64,
                "parse_median_us": us(&parse, 0.5), "parse_p99_us": us(&parse, 0.99),
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

/// A loopback provider answering like Kannel's sendsms, counting requests
/// and noting when the first and the latest arrived.
struct Provider {
    port: u16,
    count: Arc<AtomicU64>,
    /// Nanoseconds after the provider started of the first and the latest request.
    first: Arc<AtomicU64>,
    last: Arc<AtomicU64>,
}

impl Provider {
    async fn start() -> anyhow::Result<Provider> {
        let (count, first, last) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let epoch = Instant::now();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (c, f, l) = (count.clone(), first.clone(), last.clone());
        let app = axum::Router::new().fallback(move || {
            let (c, f, l) = (c.clone(), f.clone(), l.clone());
            async move {
                let at = epoch.elapsed().as_nanos() as u64;
                let _ = f.compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
                l.fetch_max(at, Ordering::Relaxed);
                c.fetch_add(1, Ordering::Relaxed);
                (axum::http::StatusCode::ACCEPTED, "0: Accepted for delivery")
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Provider { port, count, first, last })
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Forgets the first/latest times (the count keeps going).
    fn reset_times(&self) {
        self.first.store(0, Ordering::Relaxed);
        self.last.store(0, Ordering::Relaxed);
    }

    /// Time from the first to the latest request since the last reset.
    fn span(&self) -> Duration {
        Duration::from_nanos(self.last.load(Ordering::Relaxed).saturating_sub(self.first.load(Ordering::Relaxed)))
    }

    /// Waits (at most `limit`) until the provider has seen `total` requests.
    async fn wait_for(&self, total: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.count() < total {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }
}

/// Posts `total` single-recipient messages from `clients` concurrent clients.
async fn enqueue(gw: &Gateway, clients: usize, total: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for chunk in 0..clients {
        let (client, url) = (client.clone(), gw.url("/api/v1/messages"));
        let n = total / clients;
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let body =
                    json!({"backend": "kannel", "to": [format!("+2557{chunk:02}{i:06}")], "text": "hello world"});
                let r = client.post(&url).json(&body).send().await?;
                anyhow::ensure!(r.status().is_success(), "enqueue failed: {}", r.status());
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Who sends the queued messages in an outbound run.
#[derive(Clone, Copy)]
enum Sender {
    /// The Kannel component, as in production.
    Wasm,
    /// Native Kannel code (`bench_native_send`), burning `spin_us` of CPU per send first.
    Native { spin_us: u64 },
}

/// The outbound gateway's configuration: `workers` senders, the Kannel
/// backend pointed at the loopback provider, sent by `sender`.
fn outbound_config(port: u16, workers: usize, sender: Sender) -> String {
    let (native, spin_us) = match sender {
        Sender::Wasm => (false, 0),
        Sender::Native { spin_us } => (true, spin_us),
    };
    format!(
        "bench_native_send = {native}\nbench_native_send_spin_us = {spin_us}\n[apps]\norder = []\n[outbound]\nworkers = {workers}\n[[backends]]\nname = \"kannel\"\ncomponent = \"builtin:kannel\"\nallowed_hosts = [\"http://127.0.0.1:{port}\"]\n[backends.config]\nsendsms_url = \"http://127.0.0.1:{port}/cgi-bin/sendsms\"\nsendsms_params = {{ username = \"u\", password = \"p\" }}\n"
    )
}

/// One drain of the queue.
struct Drain {
    /// Messages per second, timed at the provider.
    rate: f64,
    /// The API's enqueue rate while sending was held.
    enqueue_rate: f64,
    /// CPU time (user + system) the gateway spent per message while draining.
    cpu_us_per_message: f64,
}

/// The queue alone: enqueue `total` messages with sending off, restart with
/// `workers` senders and time the drain at the provider (first to last
/// request).
async fn drain(
    bin: &std::path::Path,
    provider: &Provider,
    clients: usize,
    workers: usize,
    total: u64,
    sender: Sender,
) -> anyhow::Result<Drain> {
    let dir = tempfile::tempdir()?;
    let (gw, _) = Gateway::start(bin, dir.path(), &outbound_config(provider.port, 0, sender)).await?;
    let before = provider.count();
    let started = Instant::now();
    enqueue(&gw, clients, total as usize).await?;
    let enqueue_rate = total as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(provider.count() == before, "messages were sent with outbound.workers = 0");
    provider.reset_times();
    let (gw, _) = gw.restart_with(&outbound_config(provider.port, workers, sender)).await?;
    let cpu_before = gw.cpu_time();
    anyhow::ensure!(
        provider.wait_for(before + total, Duration::from_secs(300)).await,
        "drain: not every message reached the provider"
    );
    // CPU is the scarce resource here (2 cores for gateway, provider and
    // bench), and less noisy than throughput on a shared machine.
    let cpu = gw.cpu_time().saturating_sub(cpu_before);
    let rate = (total - 1) as f64 / provider.span().as_secs_f64();
    drop(gw);
    Ok(Drain { rate, enqueue_rate, cpu_us_per_message: cpu.as_secs_f64() * 1e6 / total as f64 })
}

/// The sandbox's own cost per call, instantiate + call + drop of the Kannel
/// component, as (parse-incoming, send) in µs. The send's provider request is
/// answered at once in process, so no I/O is timed. Each is the least of three
/// medians: other processes on a shared machine only ever add to it.
async fn isolated_per_call_us(calls: usize) -> anyhow::Result<(f64, f64)> {
    let (_engine, linker, component) = builtin_kannel()?;
    let sandbox = mock_sandbox(&linker, &component, None)?;
    let request = sample_request("id=%2B255700000001&text=hello+world+1&charset=UTF-8&coding=0", Vec::new());
    let message = sample_message("hello world");
    let (mut parse, mut send) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let (mut parse_took, mut send_took) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
        for i in 0..calls + calls / 10 {
            let t = Instant::now();
            let parsed = sandbox.parse_incoming(request.clone()).await;
            let took = t.elapsed();
            anyhow::ensure!(matches!(parsed.result, Ok(Ok(_))), "parse-incoming failed: {:?}", parsed.result);
            let t = Instant::now();
            let sent = sandbox.send(message.clone()).await;
            let took_send = t.elapsed();
            anyhow::ensure!(matches!(sent.result, Ok(Ok(_))), "send failed: {:?}", sent.result);
            if i >= calls / 10 {
                parse_took.push(took);
                send_took.push(took_send);
            }
        }
        parse = parse.min(median_us(&mut parse_took));
        send = send.min(median_us(&mut send_took));
    }
    Ok((parse, send))
}

/// Median of `v` in microseconds.
fn median_us(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

/// The Kannel component against [`smsgw::native_kannel`] over real loopback
/// HTTP with no queue and no store: same limits, policy and transport.
struct LoopbackSends {
    /// Median µs of one send at a time: (component, native).
    one_at_a_time: (f64, f64),
    /// This process's CPU µs per send, `concurrency` at a time, the provider's
    /// share included, least of two: (component, native).
    cpu_per_send: (f64, f64),
}

/// Measures [`LoopbackSends`] against the loopback provider on `port`.
async fn loopback_sends(port: u16, calls: usize, concurrency: usize) -> anyhow::Result<LoopbackSends> {
    let (_engine, linker, component) = builtin_kannel()?;
    let config = format!(
        r#"{{"sendsms_url": "http://127.0.0.1:{port}/cgi-bin/sendsms", "sendsms_params": {{"username": "u", "password": "p"}}}}"#
    );
    let sandbox = Arc::new(bench_sandbox(
        &linker,
        &component,
        smsgw::egress::EgressPolicy::new(&[format!("http://127.0.0.1:{port}")])?,
        Arc::new(smsgw::wasm::http_client::NetworkTransport::new()?),
        config,
    )?);
    let message = sample_message("hello world");
    let (mut wasm, mut native) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for i in 0..calls + calls / 10 {
        let t = Instant::now();
        send_once(&sandbox, &message, true).await?;
        let took = t.elapsed();
        let t = Instant::now();
        send_once(&sandbox, &message, false).await?;
        let took_native = t.elapsed();
        if i >= calls / 10 {
            wasm.push(took);
            native.push(took_native);
        }
    }
    let one_at_a_time = (median_us(&mut wasm), median_us(&mut native));

    let mut cpu_per_send = (f64::MAX, f64::MAX);
    for _ in 0..2 {
        cpu_per_send.0 = cpu_per_send.0.min(cpu_per_send_us(&sandbox, calls, concurrency, true).await?);
        cpu_per_send.1 = cpu_per_send.1.min(cpu_per_send_us(&sandbox, calls, concurrency, false).await?);
    }
    Ok(LoopbackSends { one_at_a_time, cpu_per_send })
}

/// This process's CPU µs per send for `calls` sends, `concurrency` at a
/// time. CPU rather than time: on two shared cores it is what a send costs
/// the machine, and the difference between two ways of sending is what one
/// adds in situ.
async fn cpu_per_send_us(
    sandbox: &Arc<smsgw::wasm::sandbox::Sandbox>,
    calls: usize,
    concurrency: usize,
    through_wasm: bool,
) -> anyhow::Result<f64> {
    let message = sample_message("hello world");
    let per_task = calls / concurrency;
    cpu_us_per(per_task * concurrency, async {
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (sandbox, message) = (sandbox.clone(), message.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_task {
                    send_once(&sandbox, &message, through_wasm).await?;
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok(())
    })
    .await
}

/// This process's CPU µs per unit while `work` does `units` of it.
async fn cpu_us_per(units: usize, work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<f64> {
    let before = gateway::process_cpu_time(std::process::id());
    work.await?;
    let used = gateway::process_cpu_time(std::process::id()).saturating_sub(before);
    Ok(used.as_secs_f64() * 1e6 / units.max(1) as f64)
}

/// What waiting does to a send's cost, with no network: bench CPU µs per
/// send, least of two each, against an [`InProcessProvider`].
struct WaitingSends {
    /// `concurrency` at a time, the provider answering at once.
    at_once: f64,
    /// The same with the provider answering after the delay: each instance
    /// waits suspended while the others run.
    suspended: f64,
    /// Native Kannel code against the delayed provider.
    native_suspended: f64,
    /// One at a time, back to back, the provider answering at once.
    back_to_back: f64,
    /// One at a time, each after the bench idles for the delay (the idle
    /// loop's own CPU subtracted): no instance waits, the caches do.
    after_idle: f64,
    /// The same, but busy-waiting through the delay instead of parking: tells
    /// whether the time passing or the thread parking makes a call cold.
    after_busy: f64,
    /// The same through native Kannel code.
    native_after_idle: f64,
}

async fn waiting_sends(calls: usize, concurrency: usize, delay: Duration) -> anyhow::Result<WaitingSends> {
    let (_engine, linker, component) = builtin_kannel()?;
    let at_once = Arc::new(mock_sandbox(&linker, &component, None)?);
    let delayed = Arc::new(mock_sandbox(&linker, &component, Some(delay))?);
    let mut w = WaitingSends {
        at_once: f64::MAX,
        suspended: f64::MAX,
        native_suspended: f64::MAX,
        back_to_back: f64::MAX,
        after_idle: f64::MAX,
        after_busy: f64::MAX,
        native_after_idle: f64::MAX,
    };
    for _ in 0..2 {
        w.at_once = w.at_once.min(cpu_per_send_us(&at_once, calls, concurrency, true).await?);
        w.suspended = w.suspended.min(cpu_per_send_us(&delayed, calls, concurrency, true).await?);
        w.native_suspended = w.native_suspended.min(cpu_per_send_us(&delayed, calls, concurrency, false).await?);
        w.back_to_back = w.back_to_back.min(cpu_per_send_us(&at_once, calls / 4, 1, true).await?);
        let rounds = calls / 4;
        let idle_alone = pause_then_send_us(&at_once, rounds, Pause::Park(delay), None).await?;
        let through_wasm = pause_then_send_us(&at_once, rounds, Pause::Park(delay), Some(true)).await?;
        let native = pause_then_send_us(&at_once, rounds, Pause::Park(delay), Some(false)).await?;
        w.after_idle = w.after_idle.min(through_wasm - idle_alone);
        w.native_after_idle = w.native_after_idle.min(native - idle_alone);
        let busy_alone = pause_then_send_us(&at_once, rounds, Pause::Spin(delay), None).await?;
        let after_busy = pause_then_send_us(&at_once, rounds, Pause::Spin(delay), Some(true)).await?;
        w.after_busy = w.after_busy.min(after_busy - busy_alone);
    }
    Ok(w)
}

/// How the bench passes the time between two sends.
#[derive(Clone, Copy)]
enum Pause {
    /// Sleeps: the worker thread parks (and, with nothing else to run, the vCPU halts).
    Park(Duration),
    /// Busy-waits on the same thread, touching almost no memory.
    Spin(Duration),
}

/// This process's CPU µs per round of: `pause`, then one send through the
/// component (`Some(true)`), natively (`Some(false)`) or none.
async fn pause_then_send_us(
    sandbox: &smsgw::wasm::sandbox::Sandbox,
    rounds: usize,
    pause: Pause,
    send: Option<bool>,
) -> anyhow::Result<f64> {
    let message = sample_message("hello world");
    cpu_us_per(rounds, async {
        for _ in 0..rounds {
            match pause {
                Pause::Park(delay) => tokio::time::sleep(delay).await,
                Pause::Spin(delay) => {
                    let until = Instant::now() + delay;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
            }
            if let Some(through_wasm) = send {
                send_once(sandbox, &message, through_wasm).await?;
            }
        }
        Ok(())
    })
    .await
}

/// One send of `message`, through the component or natively.
async fn send_once(
    sandbox: &smsgw::wasm::sandbox::Sandbox,
    message: &OutgoingMessage,
    through_wasm: bool,
) -> anyhow::Result<()> {
    if through_wasm {
        let out = sandbox.send(message.clone()).await;
        anyhow::ensure!(matches!(out.result, Ok(Ok(_))), "Wasm send failed: {:?}", out.result);
    } else {
        let out = smsgw::native_kannel::send(sandbox, message).await;
        anyhow::ensure!(out.is_ok(), "native send failed: {out:?}");
    }
    Ok(())
}

/// Outbound: the queue + Kannel component + host HTTP, the same queue with
/// native Kannel code, and a bare native reqwest sender.
async fn outbound(bin: &std::path::Path, b: Budget, report: &mut Report) -> anyhow::Result<()> {
    let provider = Provider::start().await?;
    let port = provider.port;
    let workers = 8;
    let total = (b.messages / b.concurrency * b.concurrency) as u64;
    let loopback = loopback_sends(port, b.calls / 4, workers).await?;
    let (one_wasm, one_native) = loopback.one_at_a_time;
    let (cpu_wasm, cpu_native) = loopback.cpu_per_send;
    let provider_delay = Duration::from_millis(1);
    let waiting = waiting_sends(b.calls / 2, workers, provider_delay).await?;

    // End to end: API clients enqueue while the queue sends.
    let dir = tempfile::tempdir()?;
    let (gw, _) = Gateway::start(bin, dir.path(), &outbound_config(port, workers, Sender::Wasm)).await?;
    let before = provider.count();
    let started = Instant::now();
    enqueue(&gw, b.concurrency, total as usize).await?;
    anyhow::ensure!(
        provider.wait_for(before + total, Duration::from_secs(300)).await,
        "end to end: not every message reached the provider"
    );
    let end_to_end = total as f64 / started.elapsed().as_secs_f64();
    drop(gw);

    // The queue draining through Wasm, through native code, and through
    // native code that first burns the sandbox's isolated per-call cost (what
    // that much CPU per message alone costs the queue), alternated.
    let (_, per_call_us) = isolated_per_call_us(b.calls / 4).await?;
    let spin_us = per_call_us.round() as u64;
    let (mut wasm, mut native, mut spun, mut enqueue_rate) = (0f64, 0f64, 0f64, 0f64);
    let (mut wasm_cpu, mut native_cpu, mut spun_cpu) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..2 {
        let run = drain(bin, &provider, b.concurrency, workers, total, Sender::Wasm).await?;
        (wasm, wasm_cpu) = (wasm.max(run.rate), wasm_cpu.min(run.cpu_us_per_message));
        enqueue_rate = enqueue_rate.max(run.enqueue_rate);
        let run = drain(bin, &provider, b.concurrency, workers, total, Sender::Native { spin_us: 0 }).await?;
        (native, native_cpu) = (native.max(run.rate), native_cpu.min(run.cpu_us_per_message));
        let run = drain(bin, &provider, b.concurrency, workers, total, Sender::Native { spin_us }).await?;
        (spun, spun_cpu) = (spun.max(run.rate), spun_cpu.min(run.cpu_us_per_message));
    }

    // The same requests from a bare reqwest loop with the same concurrency.
    let client = reqwest::Client::new();
    let before = provider.count();
    provider.reset_times();
    let per_task = total as usize / workers;
    let bare_total = (per_task * workers) as u64;
    let mut tasks = Vec::new();
    for chunk in 0..workers {
        let client = client.clone();
        let n = per_task;
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let url = format!(
                    "http://127.0.0.1:{port}/cgi-bin/sendsms?username=u&password=p&to=%2B2557{chunk:02}{i:06}&text=hello+world&coding=0&charset=UTF-8"
                );
                let r = client.get(url).send().await.expect("send");
                let _ = r.bytes().await;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    anyhow::ensure!(provider.count() - before == bare_total, "bare sender lost requests");
    let bare = (bare_total - 1) as f64 / provider.span().as_secs_f64();

    let rows = vec![
        (
            format!("{total} queued messages sent: queue → Kannel component → host HTTP → provider, {workers} workers"),
            format!("{wasm:.0} msg/s"),
        ),
        (
            format!("the same queue and host HTTP client, Kannel request built by native Rust, {workers} workers"),
            format!("{native:.0} msg/s"),
        ),
        ("Wasm / native sender through the queue (target ≥ 0.8)".into(), format!("{:.2}", wasm / native)),
        (
            "gateway CPU per message while draining (user + system, least of 2): Wasm / native".into(),
            format!("{wasm_cpu:.0} µs / {native_cpu:.0} µs"),
        ),
        (
            format!(
                "calibration: native sender burning {spin_us} µs of CPU per send first (the sandbox's isolated per-call cost, instantiate + send + drop, median)"
            ),
            format!("{spun:.0} msg/s, {spun_cpu:.0} µs CPU per message"),
        ),
        ("calibrated native / native through the queue".into(), format!("{:.2}", spun / native)),
        (
            "one send at a time over loopback HTTP, no queue or store, median: Kannel component / native Rust".into(),
            format!("{one_wasm:.1} µs / {one_native:.1} µs"),
        ),
        (
            format!(
                "{workers} sends at a time over loopback HTTP, no queue or store: bench CPU per send (provider included, least of 2), Kannel component / native Rust"
            ),
            format!("{cpu_wasm:.0} µs / {cpu_native:.0} µs (the component adds {:.0} µs)", cpu_wasm - cpu_native),
        ),
        (
            format!(
                "{workers} sends at a time against an in-process provider, bench CPU per send (least of 2): Kannel component, answered at once / answered after a {} ms timer (the instance waits suspended) / native Rust, answered after the timer",
                provider_delay.as_millis()
            ),
            format!("{:.0} µs / {:.0} µs / {:.0} µs", waiting.at_once, waiting.suspended, waiting.native_suspended),
        ),
        (
            format!(
                "one send at a time against the in-process provider answering at once, bench CPU per send (least of 2): Kannel component back to back / component, each after the bench idles {ms} ms / component, each after it busy-waits {ms} ms instead / native Rust, each after the same idling (the pause's own CPU subtracted)",
                ms = provider_delay.as_millis()
            ),
            format!(
                "{:.0} µs / {:.0} µs / {:.0} µs / {:.0} µs",
                waiting.back_to_back, waiting.after_idle, waiting.after_busy, waiting.native_after_idle
            ),
        ),
        (
            format!(
                "bare reqwest loop, the same {bare_total} requests, {workers} at a time (no queue, nothing stored)"
            ),
            format!("{bare:.0} msg/s"),
        ),
        ("Wasm through the queue / bare reqwest loop".into(), format!("{:.2}", wasm / bare)),
        (
            format!("end to end: {} API clients enqueue {total} messages while they are sent", b.concurrency),
            format!("{end_to_end:.0} msg/s"),
        ),
        (
            format!("API enqueue alone ({} clients, each message committed before the reply)", b.concurrency),
            format!("{enqueue_rate:.0} msg/s"),
        ),
    ];
    report.section(
        "Outbound",
        rows,
        json!({ "wasm_msg_s": wasm, "native_msg_s": native, "ratio": wasm / native, "bare_msg_s": bare,
                "wasm_over_bare": wasm / bare, "wasm_cpu_us_per_msg": wasm_cpu, "native_cpu_us_per_msg": native_cpu,
                "per_call_send_us": per_call_us, "spun_msg_s": spun, "spun_cpu_us_per_msg": spun_cpu, "spun_over_native": spun / native,
                "one_send_wasm_us": one_wasm, "one_send_native_us": one_native,
                "loopback_cpu_us_per_send_wasm": cpu_wasm, "loopback_cpu_us_per_send_native": cpu_native,
                "in_process_cpu_us_per_send_at_once": waiting.at_once, "in_process_cpu_us_per_send_suspended": waiting.suspended,
                "in_process_cpu_us_per_send_native_suspended": waiting.native_suspended,
                "in_process_cpu_us_per_send_back_to_back": waiting.back_to_back, "in_process_cpu_us_per_send_after_idle": waiting.after_idle,
                "in_process_cpu_us_per_send_after_busy_wait": waiting.after_busy,
                "in_process_cpu_us_per_send_native_after_idle": waiting.native_after_idle,
                "end_to_end_msg_s": end_to_end, "enqueue_msg_s": enqueue_rate }),
    );
    Ok(())
}

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
async fn deploy(bin: &std::path::Path, b: Budget, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (gw, cold_start) = Gateway::start(bin, dir.path(), "").await?;
    let client = reqwest::Client::new();
    let upload = |name: String, wasm: Vec<u8>| {
        let (client, url) = (client.clone(), gw.url(&format!("/api/v1/admin/backends/{name}")));
        async move {
            let form = reqwest::multipart::Form::new()
                .part("component", reqwest::multipart::Part::bytes(wasm).file_name("b.wasm"));
            let r = client.put(url).bearer_auth(TOKEN).multipart(form).send().await?;
            anyhow::ensure!(r.status().is_success(), "upload failed: {}", r.text().await?);
            anyhow::Ok(())
        }
    };
    let mut rows = Vec::new();
    let mut j = serde_json::Map::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/examples");
    let mut candidates = vec![("Rust".to_string(), smsgw::builtin::component("http").unwrap().to_vec())];
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
    let wasm = smsgw::builtin::component("kannel").unwrap().to_vec();
    for i in 0..b.backends {
        upload(format!("b{i}"), wasm.clone()).await?;
    }
    let (with_many, _) = gw.memory_kib();
    let (gw, restart) = gw.restart().await?;
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
