//! One backend version ready to run, and the isolation around each call.
//!
//! Every call gets a fresh `Store` and instance from a pre-linked
//! `InstancePre`, so nothing leaks between requests; the store is dropped after.
//! CPU time is bounded by the epoch deadline, wall time by a timeout, memory by
//! the store limiter, concurrency by a semaphore in front of the instance pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, HasSelf, InstancePre, Lift, Linker, Lower,
};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::types::{
    BackendContext, HttpRequest, Incoming, OutgoingMessage, ParseError, SendError, SentIdentity,
};
use super::bindings::{ADAPTER_EXPORT, Backend, BackendPre};
use super::cpu::{CpuMeter, metered};
use super::engine::WasmEngine;
use super::guest_log::GuestLog;
use super::host_state::{BackendShared, HostState};
use super::limiter::CallLimiter;
use super::rate::RateLimiter;
use super::slots::Slots;
use super::transport::Transport;
use crate::channel_log::ChannelLog;
use crate::egress::EgressPolicy;
use crate::limits::Limits;
use crate::metrics::metrics;
use crate::secrets::Secrets;
use crate::store::MessageId;

/// Epoch ticks a guest runs before the deadline callback looks at it.
const SLICE_TICKS: u64 = 2;

/// Everything a sandbox needs besides the component and the transport: who
/// the backend is, what it may reach and use, and what it is told.
pub struct SandboxSpec {
    pub name: String,
    pub policy: EgressPolicy,
    pub secrets: Secrets,
    pub limits: Limits,
    /// The backend's configuration as the component receives it (JSON).
    pub config_json: String,
    /// The URL under which providers reach this backend.
    pub base_url: String,
    /// Instance slots held for this backend alone (see [`Slots`]); 0 for
    /// sandboxes that only live for a tool run.
    pub reserved_slots: u32,
    /// The backend's provider send rate, if it has one.
    pub rate: Option<Arc<dyn RateLimiter>>,
    /// Where its provider exchanges are recorded (none for tool runs).
    pub channel_log: Option<Arc<ChannelLog>>,
}

/// Builds sandboxes: the one place that links components against the host.
/// The gateway, the fixture runner, dry runs, tests and benchmarks all use it,
/// so each of them runs components exactly as the gateway does.
pub struct SandboxFactory {
    engine: Arc<WasmEngine>,
    linker: Linker<HostState>,
}

impl SandboxFactory {
    /// A factory for `engine`: WASI p2 with nothing granted, plus the smsgw host interfaces.
    pub fn new(engine: Arc<WasmEngine>) -> anyhow::Result<Self> {
        let mut linker = Linker::new(engine.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Backend::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        Ok(SandboxFactory { engine, linker })
    }

    /// The engine components must be compiled for.
    pub fn engine(&self) -> &Arc<WasmEngine> {
        &self.engine
    }

    /// Links `component` once (type-checking its imports and exports) so calls only instantiate.
    pub fn build(
        &self,
        component: &Component,
        spec: SandboxSpec,
        transport: Arc<dyn Transport>,
    ) -> anyhow::Result<Sandbox> {
        let pre = self.linker.instantiate_pre(component)?;
        // Type-checks every export against the WIT once, so each call only
        // checks the one function it runs.
        BackendPre::new(pre.clone())?;
        let exports = AdapterExports::new(component)?;
        let SandboxSpec { name, policy, secrets, limits, config_json, base_url, reserved_slots, rate, channel_log } =
            spec;
        let slots = Slots::new(limits.concurrency, reserved_slots);
        let context = BackendContext { name: name.clone(), config: config_json, base_url };
        let log = GuestLog::new(&name, secrets.clone());
        let metrics = metrics().for_backend(&name);
        let shared = Arc::new(BackendShared { name, policy, secrets, transport, log, rate, channel_log, metrics });
        Ok(Sandbox { pre, exports, shared, limits, context, slots })
    }
}

/// Why a call produced no answer from the backend. The gateway survives all of these.
#[derive(Debug, Error)]
pub enum CallError {
    #[error("backend is busy: no free instance within {0:?}")]
    Busy(Duration),
    #[error("backend used more than its {0} ms of CPU time")]
    CpuLimit(u64),
    #[error("backend did not finish within {0} ms")]
    WallLimit(u64),
    #[error("backend trapped: {0}")]
    Trap(String),
    #[error("backend could not be instantiated: {0}")]
    Instantiate(String),
}

impl CallError {
    /// One word for the metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Busy(_) => "busy",
            CallError::CpuLimit(_) => "cpu",
            CallError::WallLimit(_) => "wall",
            CallError::Trap(_) => "trap",
            CallError::Instantiate(_) => "instantiate",
        }
    }

    /// True for conditions caused by load rather than by the component.
    pub fn is_busy(&self) -> bool {
        matches!(self, CallError::Busy(_))
    }
}

/// The outcome of one call plus what the guest logged.
#[derive(Debug)]
pub struct CallOutput<T> {
    pub result: Result<T, CallError>,
    pub log: Vec<String>,
    pub elapsed: Duration,
}

/// Where the two adapter functions sit in the component's exports, resolved once.
struct AdapterExports {
    parse_incoming: ComponentExportIndex,
    send: ComponentExportIndex,
}

impl AdapterExports {
    fn new(component: &Component) -> anyhow::Result<Self> {
        let (_, adapter) = component
            .get_export(None, ADAPTER_EXPORT)
            .ok_or_else(|| anyhow::anyhow!("component does not export {ADAPTER_EXPORT}"))?;
        let func = |name: &str| {
            component
                .get_export_index(Some(&adapter), name)
                .ok_or_else(|| anyhow::anyhow!("{ADAPTER_EXPORT} has no function '{name}'"))
        };
        Ok(AdapterExports { parse_incoming: func("parse-incoming")?, send: func("send")? })
    }
}

/// A compiled, linked backend version with its configuration.
pub struct Sandbox {
    pre: InstancePre<HostState>,
    exports: AdapterExports,
    shared: Arc<BackendShared>,
    limits: Limits,
    context: BackendContext,
    slots: Slots,
}

impl Sandbox {
    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The limits this version runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Identity, policy, secrets and transport shared by every call.
    pub fn shared(&self) -> &BackendShared {
        &self.shared
    }

    /// The backend's configuration as the component receives it.
    pub fn config_json(&self) -> &str {
        &self.context.config
    }

    /// The backend's secrets, for redacting what it returns.
    pub fn secrets(&self) -> &Secrets {
        &self.shared.secrets
    }

    /// Where guest-made text goes into the gateway's log.
    pub fn guest_log(&self) -> &GuestLog {
        &self.shared.log
    }

    /// Instance slots this version holds for itself.
    pub fn reserved_slots(&self) -> u32 {
        self.slots.reserved()
    }

    /// Runs `parse-incoming` on a fresh instance.
    pub async fn parse_incoming(&self, request: &HttpRequest) -> CallOutput<Result<Incoming, ParseError>> {
        self.call("parse-incoming", None, &self.exports.parse_incoming, (&self.context, request)).await
    }

    /// Runs `send` on a fresh instance.
    pub async fn send(&self, message: OutgoingMessage) -> CallOutput<Result<Vec<SentIdentity>, SendError>> {
        let id = message.id.parse().ok();
        self.call("send", id, &self.exports.send, (&self.context, &message)).await
    }

    /// Instantiates, calls the export at `func` with `params`, and drops the instance.
    async fn call<P, R>(
        &self,
        call: &'static str,
        message: Option<MessageId>,
        func: &ComponentExportIndex,
        params: P,
    ) -> CallOutput<R>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: Send + Sync + 'static,
        (R,): ComponentNamedList + Lift,
    {
        let started = Instant::now();
        let queue = Duration::from_millis(self.limits.queue_ms);
        // A slot first: pool exhaustion would fail the call, waiting does not.
        let Some(_slot) = self.slots.acquire(queue).await else {
            metrics().call_failure(&self.shared.name, "busy");
            return CallOutput { result: Err(CallError::Busy(queue)), log: Vec::new(), elapsed: started.elapsed() };
        };

        let meter = CpuMeter::new();
        let limiter = CallLimiter::new(self.limits.memory_bytes);
        let mut state = HostState::new(self.shared.clone(), self.limits.clone(), limiter, meter.clone());
        state.message = message;
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(self.limits.hostcall_bytes);
        // Epochs measure wall time, so the deadline is a time slice: when it
        // expires the callback charges only the time the guest has spent
        // running (its call being polled) against `cpu_ms`, and otherwise
        // yields to the executor so a busy guest cannot monopolise a thread.
        let ticks = SLICE_TICKS;
        let cpu = Duration::from_millis(self.limits.cpu_ms);
        store.epoch_deadline_callback(move |ctx| {
            if ctx.data().cpu.used() >= cpu {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(SLICE_TICKS))
            }
        });

        let wall = Duration::from_millis(self.limits.wall_ms);
        let run = async {
            store.set_epoch_deadline(ticks);
            let instance = self.pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
            let func = instance.get_typed_func::<P, (R,)>(&mut store, func).map_err(|e| (true, e))?;
            // Re-arm so instantiation time is not billed to the call.
            store.data().cpu.restart();
            store.set_epoch_deadline(ticks);
            func.call_async(&mut store, params).await.map(|(r,)| r).map_err(|e| (false, e))
        };
        let outcome = tokio::time::timeout(wall, metered(meter.clone(), run)).await;
        let result = match outcome {
            Err(_) => Err(CallError::WallLimit(self.limits.wall_ms)),
            Ok(Ok(value)) => Ok(value),
            Ok(Err((instantiating, e))) => Err(self.classify(instantiating, e)),
        };
        let mut log = std::mem::take(&mut store.data_mut().captured_log);
        let stdio = store.data_mut().take_stdio();
        drop(store);
        for (stream, bytes) in stdio {
            if !bytes.is_empty() {
                let text = String::from_utf8_lossy(&bytes);
                let text = self.shared.log.emit(tracing::Level::INFO, &format!("guest {stream}: "), text.trim_end());
                log.push(format!("{stream}: {text}"));
            }
        }
        self.shared.metrics.call(call, started.elapsed(), meter.used());
        if let Err(e) = &result {
            metrics().call_failure(&self.shared.name, e.kind());
            // Trap messages quote the guest's own function names: guest text.
            self.shared.log.emit(tracing::Level::WARN, "call failed: ", &e.to_string());
        }
        CallOutput { result, log, elapsed: started.elapsed() }
    }

    fn classify(&self, instantiating: bool, e: wasmtime::Error) -> CallError {
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallError::CpuLimit(self.limits.cpu_ms),
            _ if instantiating && e.downcast_ref::<Trap>().is_none() => {
                CallError::Instantiate(self.shared.secrets.redact(&format!("{e:#}")))
            }
            _ => CallError::Trap(self.shared.secrets.redact(&format!("{e:#}"))),
        }
    }
}
