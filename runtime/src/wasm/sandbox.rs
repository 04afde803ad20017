//! One backend version ready to run, and the isolation around each call.
//!
//! Every call gets a fresh `Store` and instance from a pre-linked
//! `InstancePre`, so nothing leaks between requests; the store is dropped after.
//! CPU time is bounded by the epoch deadline, wall time by a timeout, memory by
//! the store limiter, concurrency by a semaphore in front of the instance pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::types::{
    BackendContext, HttpRequest, Incoming, OutgoingMessage, ParseError, SendError, SentIdentity,
};
use super::bindings::{Backend, BackendPre};
use super::engine::{MAX_LIVE_INSTANCES, WasmEngine};
use super::http_client::Transport;
use crate::egress::EgressPolicy;
use crate::limits::Limits;
use crate::secrets::Secrets;

/// Instances alive at once across every backend, below the pool's size.
static LIVE_INSTANCES: Semaphore = Semaphore::const_new(MAX_LIVE_INSTANCES as usize);

/// Epoch ticks a guest runs before the deadline callback looks at it.
const SLICE_TICKS: u64 = 2;

/// Bytes of guest stdout/stderr kept per call (panic messages land there).
const STDIO_CAPTURE_BYTES: usize = 16 * 1024;

/// What every call of one backend shares: identity, policy, secrets, transport.
pub struct BackendShared {
    pub name: String,
    pub policy: EgressPolicy,
    pub secrets: Secrets,
    pub transport: Arc<dyn Transport>,
}

/// Per-call state inside the `Store`.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    store_limits: StoreLimits,
    pub(super) backend: Arc<BackendShared>,
    pub(super) limits: Limits,
    pub(super) http_calls: u32,
    pub(super) log_lines: u32,
    /// What the guest logged during this call (redacted), for fixtures and dry runs.
    pub captured_log: Vec<String>,
    /// When the guest started running (after instantiation).
    pub(super) started: Instant,
    /// Time spent waiting in host calls, which is not the guest's CPU time.
    pub(super) host_time: Duration,
}

impl HostState {
    /// Time the guest itself has been running in this call.
    fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
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

/// The linker every backend is instantiated against: WASI p2 with nothing
/// granted, plus the smsgw host interfaces.
pub fn linker(engine: &WasmEngine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Backend::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A compiled, linked backend version with its configuration.
pub struct Sandbox {
    pre: BackendPre<HostState>,
    shared: Arc<BackendShared>,
    limits: Limits,
    context: BackendContext,
    slots: Arc<Semaphore>,
}

impl Sandbox {
    /// Links `component` once (type-checking its imports) so calls only instantiate.
    pub fn new(
        linker: &Linker<HostState>,
        component: &Component,
        shared: BackendShared,
        limits: Limits,
        config_json: String,
        base_url: String,
    ) -> anyhow::Result<Self> {
        let pre = BackendPre::new(linker.instantiate_pre(component)?)?;
        let concurrency = limits.concurrency.min(MAX_LIVE_INSTANCES as usize);
        let context = BackendContext { name: shared.name.clone(), config: config_json, base_url };
        Ok(Sandbox { pre, shared: Arc::new(shared), limits, context, slots: Arc::new(Semaphore::new(concurrency)) })
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The limits this version runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The backend's secrets, for redacting what it returns.
    pub fn secrets(&self) -> &Secrets {
        &self.shared.secrets
    }

    /// Runs `parse-incoming` on a fresh instance.
    pub async fn parse_incoming(&self, request: HttpRequest) -> CallOutput<Result<Incoming, ParseError>> {
        let ctx = self.context.clone();
        self.call(move |backend, store| {
            Box::pin(async move { backend.smsgw_backend_adapter().call_parse_incoming(store, &ctx, &request).await })
        })
        .await
    }

    /// Runs `send` on a fresh instance.
    pub async fn send(&self, message: OutgoingMessage) -> CallOutput<Result<Vec<SentIdentity>, SendError>> {
        let ctx = self.context.clone();
        self.call(move |backend, store| {
            Box::pin(async move { backend.smsgw_backend_adapter().call_send(store, &ctx, &message).await })
        })
        .await
    }

    async fn call<R, F>(&self, f: F) -> CallOutput<R>
    where
        F: for<'a> FnOnce(
                &'a Backend,
                &'a mut Store<HostState>,
            )
                -> std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<R>> + Send + 'a>>
            + Send,
        R: Send,
    {
        let started = Instant::now();
        let queue = Duration::from_millis(self.limits.queue_ms);
        // This backend's share first, then a slot of the shared instance pool:
        // pool exhaustion would fail the call, waiting for a slot does not.
        let permits = tokio::time::timeout(queue, async {
            let own = self.slots.acquire().await;
            let shared = LIVE_INSTANCES.acquire().await;
            (own, shared)
        })
        .await;
        let Ok((Ok(_own), Ok(_shared))) = permits else {
            return CallOutput { result: Err(CallError::Busy(queue)), log: Vec::new(), elapsed: started.elapsed() };
        };

        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        // Nothing is granted: no env, args, preopened dirs, sockets or name lookup.
        let wasi = WasiCtxBuilder::new().stdout(stdout.clone()).stderr(stderr.clone()).build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            store_limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes)
                .instances(64)
                .tables(64)
                .memories(4)
                .build(),
            backend: self.shared.clone(),
            limits: self.limits.clone(),
            http_calls: 0,
            log_lines: 0,
            captured_log: Vec::new(),
            started: Instant::now(),
            host_time: Duration::ZERO,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.store_limits);
        store.set_hostcall_fuel(self.limits.hostcall_bytes);
        // Epochs measure wall time, so the deadline is a time slice: when it
        // expires the callback charges only the guest's own running time
        // (host calls excluded) against `cpu_ms`, and otherwise yields to the
        // executor so a busy guest cannot monopolise a worker thread.
        let ticks = SLICE_TICKS;
        let cpu = Duration::from_millis(self.limits.cpu_ms);
        store.epoch_deadline_callback(move |ctx| {
            if ctx.data().guest_time() >= cpu {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(SLICE_TICKS))
            }
        });

        let wall = Duration::from_millis(self.limits.wall_ms);
        let run = async {
            store.set_epoch_deadline(ticks);
            let backend = self.pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
            // Re-arm so instantiation time is not billed to the call.
            store.data_mut().started = Instant::now();
            store.set_epoch_deadline(ticks);
            f(&backend, &mut store).await.map_err(|e| (false, e))
        };
        let outcome = tokio::time::timeout(wall, run).await;
        let result = match outcome {
            Err(_) => Err(CallError::WallLimit(self.limits.wall_ms)),
            Ok(Ok(value)) => Ok(value),
            Ok(Err((instantiating, e))) => Err(self.classify(instantiating, e)),
        };
        let mut log = std::mem::take(&mut store.data_mut().captured_log);
        drop(store);
        for (stream, pipe) in [("stdout", stdout), ("stderr", stderr)] {
            let bytes = pipe.contents();
            if !bytes.is_empty() {
                let text = self.shared.secrets.redact(String::from_utf8_lossy(&bytes).trim_end());
                tracing::info!(backend = self.shared.name.as_str(), "guest {stream}: {text}");
                log.push(format!("{stream}: {text}"));
            }
        }
        if let Err(e) = &result {
            tracing::warn!(backend = self.shared.name.as_str(), "call failed: {e}");
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
