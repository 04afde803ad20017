//! Sends measured inside the bench process, no queue and no store: the
//! component against native Kannel code over loopback HTTP, and what waiting
//! and idling do to a sandboxed send.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smsgw::wasm::Sandbox;
use smsgw::wasm::bindings::types::OutgoingMessage;

use super::{bench_sandbox, builtin_kannel, cpu_us_per, median_us, mock_sandbox, sample_message, sample_request};
use crate::baseline::native_kannel;

/// The sandbox's own cost per call, instantiate + call + drop of the Kannel
/// component, as (parse-incoming, send) in µs. The send's provider request is
/// answered at once in process, so no I/O is timed. Each is the least of three
/// medians: other processes on a shared machine only ever add to it.
pub async fn isolated_per_call_us(calls: usize) -> anyhow::Result<(f64, f64)> {
    let (factory, component) = builtin_kannel()?;
    let sandbox = mock_sandbox(&factory, &component, None)?;
    let request = sample_request("id=%2B255700000001&text=hello+world+1&charset=UTF-8&coding=0", Vec::new());
    let message = sample_message("hello world");
    let (mut parse, mut send) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let (mut parse_took, mut send_took) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
        for i in 0..calls + calls / 10 {
            let t = Instant::now();
            let parsed = sandbox.parse_incoming(&request).await;
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

/// The Kannel component against [`native_kannel`] over real loopback
/// HTTP with no queue and no store: same limits, policy and transport.
pub struct LoopbackSends {
    /// Median µs of one send at a time: (component, native).
    pub one_at_a_time: (f64, f64),
    /// This process's CPU µs per send, `concurrency` at a time, the provider's
    /// share included, least of two: (component, native).
    pub cpu_per_send: (f64, f64),
}

/// Measures [`LoopbackSends`] against the loopback provider on `port`.
pub async fn loopback_sends(port: u16, calls: usize, concurrency: usize) -> anyhow::Result<LoopbackSends> {
    let (factory, component) = builtin_kannel()?;
    let config = format!(
        r#"{{"sendsms_url": "http://127.0.0.1:{port}/cgi-bin/sendsms", "sendsms_params": {{"username": "u", "password": "p"}}}}"#
    );
    let sandbox = Arc::new(bench_sandbox(
        &factory,
        &component,
        smsgw::egress::EgressPolicy::new(&[format!("http://127.0.0.1:{port}")])?,
        Arc::new(smsgw::wasm::transport::NetworkTransport::new()?),
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
    sandbox: &Arc<Sandbox>,
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

/// What waiting does to a send's cost, with no network: bench CPU µs per
/// send, least of two each, against an [`InProcessProvider`].
pub struct WaitingSends {
    /// `concurrency` at a time, the provider answering at once.
    pub at_once: f64,
    /// The same with the provider answering after the delay: each instance
    /// waits suspended while the others run.
    pub suspended: f64,
    /// Native Kannel code against the delayed provider.
    pub native_suspended: f64,
    /// One at a time, back to back, the provider answering at once.
    pub back_to_back: f64,
    /// One at a time, each after the bench idles for the delay (the idle
    /// loop's own CPU subtracted): no instance waits, the caches do.
    pub after_idle: f64,
    /// The same, but busy-waiting through the delay instead of parking: tells
    /// whether the time passing or the thread parking makes a call cold.
    pub after_busy: f64,
    /// The same through native Kannel code.
    pub native_after_idle: f64,
}

pub async fn waiting_sends(calls: usize, concurrency: usize, delay: Duration) -> anyhow::Result<WaitingSends> {
    let (factory, component) = builtin_kannel()?;
    let at_once = Arc::new(mock_sandbox(&factory, &component, None)?);
    let delayed = Arc::new(mock_sandbox(&factory, &component, Some(delay))?);
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
async fn pause_then_send_us(sandbox: &Sandbox, rounds: usize, pause: Pause, send: Option<bool>) -> anyhow::Result<f64> {
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
async fn send_once(sandbox: &Sandbox, message: &OutgoingMessage, through_wasm: bool) -> anyhow::Result<()> {
    if through_wasm {
        let out = sandbox.send(message.clone()).await;
        anyhow::ensure!(matches!(out.result, Ok(Ok(_))), "Wasm send failed: {:?}", out.result);
    } else {
        let out = native_kannel::send(sandbox, message).await;
        anyhow::ensure!(out.is_ok(), "native send failed: {out:?}");
    }
    Ok(())
}
