//! Inbound end to end: the Wasm component beside native parsing in the same
//! process, the HTTP floor, and RapidSMS.

use serde_json::json;

use super::sends::isolated_per_call_us;
use super::{Report, fmt_load, kannel_url, load_json};
use crate::Budget;
use crate::gateway::{self, Gateway};
use crate::load::{self, LoadResult};

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
pub async fn inbound(b: Budget, full: bool, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = "[apps]\norder = []\n[[backends]]\nname = \"kannel\"\ncomponent = \"builtin:kannel\"\n";
    // The baseline gateway: the same library, with the native route beside the component's.
    let gw = Gateway::start_with(gateway::baseline(&["--baseline-routes"])?, dir.path(), config).await;
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
    drop(gw);

    // The same Wasm route with the channel log off: what recording every exchange costs.
    let quiet_dir = tempfile::tempdir()?;
    let quiet_config = format!("{config}[channel_log]\nenabled = false\n");
    let quiet = Gateway::start_with(gateway::baseline(&[])?, quiet_dir.path(), &quiet_config).await;
    let mut unlogged = Vec::new();
    for _ in 0..3 {
        unlogged.push(load::run(b.concurrency, b.phase, kannel_url(quiet.url("/backends/kannel/"))).await);
    }
    let unlogged = best(&unlogged);
    drop(quiet);
    let tax = wasm.rps / native.rps;
    let mut rows = vec![
        ("Kannel MO via the Wasm component, channel log off".to_string(), fmt_load(&unlogged)),
        ("channel log on / off throughput".to_string(), format!("{:.2}", wasm.rps / unlogged.rps)),
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
        "unlogged": load_json(&unlogged), "logged_over_unlogged": wasm.rps / unlogged.rps,
        "floor": load_json(&floor), "wasm": load_json(&wasm), "native": load_json(&native),
        "wasm_over_native": tax, "wasm_cpu_us_per_req": wasm_cpu, "native_cpu_us_per_req": native_cpu,
        "per_call_parse_us": per_call_us, "spun": load_json(&spun), "spun_cpu_us_per_req": spun_cpu, "spun_over_native": spun.rps / native.rps, "rss_idle_kib": idle_rss, "rss_peak_kib": peak_rss,
    });
    if full {
        match rapidsms(
            b.concurrency,
            std::time::Duration::ZERO,
            b.phase,
            "rapidsms.router.db.DatabaseRouter",
            kannel_url,
        )
        .await
        {
            Ok(r) => {
                rows.push(("RapidSMS 2.2 Kannel view under gunicorn, DatabaseRouter".into(), fmt_load(&r)));
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

/// RapidSMS's Kannel view with `router`, set up by `bench/rapidsms/` scripts,
/// loaded from `concurrency` keep-alive connections for `phase` after
/// `warmup` of the same load (unmeasured: the first message of each sender
/// creates its connection row).
pub(super) async fn rapidsms<U: Fn(u64) -> String + Send + Sync + 'static>(
    concurrency: usize,
    warmup: std::time::Duration,
    phase: std::time::Duration,
    router: &str,
    url: impl Fn(String) -> U,
) -> anyhow::Result<LoadResult> {
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rapidsms");
    anyhow::ensure!(scripts.join("setup.sh").exists(), "bench/rapidsms/setup.sh is missing");
    let status = std::process::Command::new("bash").arg(scripts.join("setup.sh")).status()?;
    anyhow::ensure!(status.success(), "bench/rapidsms/setup.sh failed");
    let port = gateway::free_port();
    let out = std::process::Command::new("bash")
        .arg(scripts.join("run.sh"))
        .arg(port.to_string())
        .env("RAPIDSMS_BENCH_ROUTER", router)
        .output()?;
    anyhow::ensure!(out.status.success(), "run.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let pid = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .rev()
        .find_map(|w| w.parse::<u32>().ok())
        .ok_or_else(|| anyhow::anyhow!("run.sh printed no PID"))?;
    let base = format!("http://127.0.0.1:{port}/backends/kannel-fake-smsc/");
    if !warmup.is_zero() {
        load::run(concurrency, warmup, url(base.clone())).await;
    }
    let result = load::run(concurrency, phase, url(base)).await;
    let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    Ok(result)
}
