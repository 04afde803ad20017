//! Outbound: the queue + Kannel component + host HTTP, the same queue with
//! native Kannel code, and a bare native reqwest sender.

use std::time::{Duration, Instant};

use serde_json::json;
use smsgw_test_support::MockProvider;

use super::Report;
use super::sends::{isolated_per_call_us, loopback_sends, waiting_sends};
use crate::Budget;
use crate::gateway::{self, Gateway, GatewayOptions};

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
    /// The Kannel component, as in production (the `smsgw` binary).
    Wasm,
    /// Native Kannel code (the baseline gateway), burning `spin_us` of CPU per send first.
    Native { spin_us: u64 },
}

impl Sender {
    /// The gateway process that sends this way.
    fn gateway(self, smsgw: &GatewayOptions) -> anyhow::Result<GatewayOptions> {
        match self {
            Sender::Wasm => Ok(smsgw.clone()),
            Sender::Native { spin_us } => {
                gateway::baseline(&["--native-send", "--native-send-spin-us", &spin_us.to_string()])
            }
        }
    }
}

/// The outbound gateway's configuration: `workers` senders, the Kannel
/// backend pointed at the loopback provider.
fn outbound_config(port: u16, workers: usize) -> String {
    format!(
        "[apps]\norder = []\n[outbound]\nworkers = {workers}\n[[backends]]\nname = \"kannel\"\ncomponent = \"builtin:kannel\"\nallowed_hosts = [\"http://127.0.0.1:{port}\"]\n[backends.config]\nsendsms_url = \"http://127.0.0.1:{port}/cgi-bin/sendsms\"\nsendsms_params = {{ username = \"u\", password = \"p\" }}\n"
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
    smsgw: &GatewayOptions,
    provider: &MockProvider,
    clients: usize,
    workers: usize,
    total: u64,
    sender: Sender,
) -> anyhow::Result<Drain> {
    let dir = tempfile::tempdir()?;
    let config = |workers| outbound_config(provider.port(), workers);
    let gw = Gateway::start_with(sender.gateway(smsgw)?, dir.path(), &config(0)).await;
    let before = provider.count();
    let started = Instant::now();
    enqueue(&gw, clients, total as usize).await?;
    let enqueue_rate = total as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(provider.count() == before, "messages were sent with outbound.workers = 0");
    provider.reset_times();
    let gw = gw.restart_with(&config(workers)).await;
    let cpu_before = gw.cpu_time();
    anyhow::ensure!(
        provider.wait_count(before + total, Duration::from_secs(300)).await,
        "drain: not every message reached the provider"
    );
    // CPU is the scarce resource here (2 cores for gateway, provider and
    // bench), and less noisy than throughput on a shared machine.
    let cpu = gw.cpu_time().saturating_sub(cpu_before);
    let rate = (total - 1) as f64 / provider.span().as_secs_f64();
    drop(gw);
    Ok(Drain { rate, enqueue_rate, cpu_us_per_message: cpu.as_secs_f64() * 1e6 / total as f64 })
}

/// Outbound: the queue + Kannel component + host HTTP, the same queue with
/// native Kannel code, and a bare native reqwest sender.
pub async fn outbound(smsgw: &GatewayOptions, b: Budget, report: &mut Report) -> anyhow::Result<()> {
    let provider = MockProvider::counting(202, "0: Accepted for delivery").await;
    let port = provider.port();
    let workers = 8;
    let total = (b.messages / b.concurrency * b.concurrency) as u64;
    let loopback = loopback_sends(port, b.calls / 4, workers).await?;
    let (one_wasm, one_native) = loopback.one_at_a_time;
    let (cpu_wasm, cpu_native) = loopback.cpu_per_send;
    let provider_delay = Duration::from_millis(1);
    let waiting = waiting_sends(b.calls / 2, workers, provider_delay).await?;

    // End to end: API clients enqueue while the queue sends.
    let dir = tempfile::tempdir()?;
    let gw = Gateway::start_with(smsgw.clone(), dir.path(), &outbound_config(port, workers)).await;
    let before = provider.count();
    let started = Instant::now();
    enqueue(&gw, b.concurrency, total as usize).await?;
    anyhow::ensure!(
        provider.wait_count(before + total, Duration::from_secs(300)).await,
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
        let run = drain(smsgw, &provider, b.concurrency, workers, total, Sender::Wasm).await?;
        (wasm, wasm_cpu) = (wasm.max(run.rate), wasm_cpu.min(run.cpu_us_per_message));
        enqueue_rate = enqueue_rate.max(run.enqueue_rate);
        let run = drain(smsgw, &provider, b.concurrency, workers, total, Sender::Native { spin_us: 0 }).await?;
        (native, native_cpu) = (native.max(run.rate), native_cpu.min(run.cpu_us_per_message));
        let run = drain(smsgw, &provider, b.concurrency, workers, total, Sender::Native { spin_us }).await?;
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
