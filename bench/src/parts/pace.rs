//! Keeping pace at equal load, the way an outside reviewer measured it:
//! inbound through the production binary at 16 and 64 keep-alive connections
//! (is the machine's CPU the limit, or does each request wait for something?),
//! RapidSMS's default router and its database router at 16, and echo replies
//! through the queue to a loopback Kannel while inbound load goes on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use smsgw_test_support::MockProvider;

use super::{Report, fmt_load, load_json};
use crate::Budget;
use crate::gateway::{self, Gateway, GatewayOptions};
use crate::load::{self, LoadResult};

/// Busy and total jiffies of the whole machine, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait are not work.
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// One inbound phase and where the CPU went.
struct Phase {
    load: LoadResult,
    /// Percent of the whole machine busy (100 × cores = every core).
    machine_pct: f64,
    gateway_cpu_us: f64,
    generator_cpu_us: f64,
}

async fn phase(gw: &Gateway, connections: usize, b: Budget) -> Phase {
    let (busy0, total0) = machine_ticks();
    let (gw0, gen0) = (gw.cpu_time(), gateway::process_cpu_time(std::process::id()));
    let url = kannel_url(gw.url("/backends/kannel/"));
    let load = load::run(connections, b.phase, url).await;
    let (busy1, total1) = machine_ticks();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / load.ok.max(1) as f64;
    Phase {
        machine_pct: (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64 * 100.0 * cores(),
        gateway_cpu_us: per(gw.cpu_time().saturating_sub(gw0)),
        generator_cpu_us: per(gateway::process_cpu_time(std::process::id()).saturating_sub(gen0)),
        load,
    }
}

fn fmt_phase(p: &Phase) -> String {
    format!(
        "{}; machine CPU {:.0} % of {:.0} %; gateway {:.0} µs CPU per request, load generator {:.0} µs",
        fmt_load(&p.load),
        p.machine_pct,
        100.0 * cores(),
        p.gateway_cpu_us,
        p.generator_cpu_us
    )
}

/// Senders the load cycles through (texts stay unique, so nothing is a
/// repeat): real traffic repeats senders, and so did the reviewer's load, under
/// which RapidSMS's default router stores nothing once it knows a sender.
const SENDERS: u64 = 1000;

/// A Kannel MO request for request number `n`, the same for every target.
fn kannel_url(base: String) -> impl Fn(u64) -> String + Send + Sync + 'static {
    move |n| format!("{base}?id=%2B2557{:08}&text=hello+world+{n}&charset=UTF-8&coding=0", n % SENDERS)
}

/// Inbound only, stored and acknowledged, no reply: the reviewer's setting.
const NO_APPS: &str = "[apps]\norder = []\n[[backends]]\nname = \"kannel\"\ncomponent = \"builtin:kannel\"\n";

pub async fn pace(smsgw: &GatewayOptions, b: Budget, full: bool, report: &mut Report) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut j = json!({});
    let mut at_16 = 0.0;
    for connections in [16, 64] {
        let dir = tempfile::tempdir()?;
        // SMSGW_BENCH_PACE_CONFIG: TOML tables put before the inbound
        // phases' configuration, for profiling (`[channel_log]\nenabled = false`).
        let extra = std::env::var("SMSGW_BENCH_PACE_CONFIG").unwrap_or_default();
        let gw = Gateway::start_with(smsgw.clone(), dir.path(), &format!("{extra}\n{NO_APPS}")).await;
        let mut best: Option<Phase> = None;
        for _ in 0..2 {
            let p = phase(&gw, connections, b).await;
            if best.as_ref().is_none_or(|q| p.load.rps > q.load.rps) {
                best = Some(p);
            }
        }
        let best = best.expect("two phases ran");
        if connections == 16 {
            at_16 = best.load.rps;
        }
        rows.push((
            format!("smsgw, Kannel component, every message committed, {connections} connections"),
            fmt_phase(&best),
        ));
        j[format!("inbound_{connections}")] = json!({
            "load": load_json(&best.load), "machine_cpu_pct": best.machine_pct,
            "gateway_cpu_us": best.gateway_cpu_us, "generator_cpu_us": best.generator_cpu_us,
        });
    }
    if full {
        for (router, label) in [
            ("rapidsms.router.blocking.BlockingRouter", "RapidSMS 2.2 default (BlockingRouter, nothing stored)"),
            ("rapidsms.router.db.DatabaseRouter", "RapidSMS 2.2 DatabaseRouter (stored, synchronous=FULL)"),
        ] {
            // The warm-up sends every sender's first message (its connection row).
            match super::inbound::rapidsms(16, b.phase * 2, b.phase, router, kannel_url).await {
                Ok(r) => {
                    rows.push((format!("{label}, 16 connections"), fmt_load(&r)));
                    rows.push((
                        format!("smsgw / {label} (target ≥ 30 for the default)"),
                        format!("{:.1}", at_16 / r.rps),
                    ));
                    j[router] = json!({ "load": load_json(&r), "smsgw_over": at_16 / r.rps });
                }
                Err(e) => rows.push((label.to_string(), format!("not measured: {e}"))),
            }
        }
    }
    let (reply_rows, reply_json) = replies(smsgw, b).await?;
    rows.extend(reply_rows);
    j["replies"] = reply_json;
    report.section(&format!("Keeping pace at equal load (keep-alive connections, {:?} per phase)", b.phase), rows, j);
    Ok(())
}

/// Echo replies under sustained inbound load: does the queue send them as
/// fast as messages arrive, and how long from acknowledging a message to its
/// reply reaching the provider?
async fn replies(smsgw: &GatewayOptions, b: Budget) -> anyhow::Result<(Vec<(String, String)>, serde_json::Value)> {
    let kannel = MockProvider::start(&[]).await;
    let port = kannel.port();
    // SMSGW_BENCH_WORKERS: send slots per backend (the default otherwise), for
    // seeing how far the slot bound limits the replies.
    let workers =
        std::env::var("SMSGW_BENCH_WORKERS").map(|w| format!("[outbound]\nworkers = {w}\n")).unwrap_or_default();
    let config = format!(
        "{workers}[apps]\norder = [\"echo\"]\n[[backends]]\nname = \"kannel\"\ncomponent = \"builtin:kannel\"\nallowed_hosts = [\"http://127.0.0.1:{port}\"]\n[backends.config]\nsendsms_url = \"http://127.0.0.1:{port}/cgi-bin/sendsms\"\nsendsms_params = {{ username = \"u\", password = \"p\" }}\n"
    );
    let dir = tempfile::tempdir()?;
    let gw = Gateway::start_with(smsgw.clone(), dir.path(), &config).await;
    let started = Instant::now();
    let url = kannel_url(gw.url("/backends/kannel/"));
    let (inbound, acks) =
        load::run_with_acks(16, b.phase, move |n| url(n).replace("text=hello+world+", "text=echo+r")).await;
    let phase_end = Instant::now();
    // Let the backlog drain, bounded.
    let drain_limit = Duration::from_secs(30).max(b.phase * 4);
    let acked = acks.len();
    let drained = kannel.wait_for(acked, drain_limit).await;
    let drained_at = Instant::now();
    let replies = kannel.received();
    let by_n: HashMap<u64, Instant> =
        replies.iter().filter_map(|r| Some((r.param("text")?.strip_prefix('r')?.parse::<u64>().ok()?, r.at))).collect();
    let in_phase = replies.iter().filter(|r| r.at <= phase_end).count();
    let mut latencies: Vec<Duration> =
        acks.iter().filter_map(|(n, acked)| by_n.get(n).map(|at| at.saturating_duration_since(*acked))).collect();
    latencies.sort();
    let pct = |p: f64| {
        latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    let phase_s = phase_end.duration_since(started).as_secs_f64();
    let inbound_rate = acked as f64 / phase_s;
    let outbound_rate = in_phase as f64 / phase_s;
    let left = acked.saturating_sub(in_phase);
    let rows = vec![
        ("echo replies: inbound acknowledged (16 connections)".to_string(), fmt_load(&inbound)),
        (
            "echo replies: outbound rate during the phase / inbound rate (target ≥ 1)".to_string(),
            format!(
                "{outbound_rate:.0} / {inbound_rate:.0} msg/s = {:.2}; {left} of {acked} replies still queued at the end ({:.1} % ), all sent {:.2} s later: {}",
                outbound_rate / inbound_rate,
                left as f64 * 100.0 / acked.max(1) as f64,
                drained_at.duration_since(phase_end).as_secs_f64(),
                if drained.len() >= acked { "yes" } else { "no" }
            ),
        ),
        (
            "echo replies: acknowledgement → reply at the provider, p50 / p99 (target p99 ≤ 100 ms)".to_string(),
            format!("{:.1} ms / {:.1} ms ({} replies matched)", pct(0.5), pct(0.99), latencies.len()),
        ),
    ];
    let j = json!({
        "inbound": load_json(&inbound), "outbound_rate": outbound_rate, "inbound_rate": inbound_rate,
        "queued_at_end": left, "ack_to_reply_p50_ms": pct(0.5), "ack_to_reply_p99_ms": pct(0.99),
    });
    Ok((rows, j))
}
