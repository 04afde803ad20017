//! What lives inside one call's `Store`: the backend it runs for, its limits,
//! counters, and a WASI context that grants nothing.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::cpu::CpuMeter;
use super::guest_log::GuestLog;
use super::limiter::CallLimiter;
use super::rate::RateLimiter;
use super::transport::Transport;
use crate::channel_log::ChannelLog;
use crate::egress::EgressPolicy;
use crate::limits::Limits;
use crate::metrics::BackendMetrics;
use crate::secrets::Secrets;
use crate::store::MessageId;

/// Host resources (WASI streams, pollables, ...) one call may hold at once.
const MAX_HOST_RESOURCES: usize = 256;

/// Bytes of guest stdout/stderr kept per call (panic messages land there).
const STDIO_CAPTURE_BYTES: usize = 16 * 1024;

/// What every call of one backend shares: identity, policy, secrets,
/// transport, and the budget of its lines in the gateway's log.
pub struct BackendShared {
    pub name: String,
    pub policy: EgressPolicy,
    pub secrets: Secrets,
    pub transport: Arc<dyn Transport>,
    pub log: GuestLog,
    /// The provider's send rate, shared by every version of the backend.
    pub rate: Option<Arc<dyn RateLimiter>>,
    /// Where provider exchanges are recorded, if anywhere.
    pub channel_log: Option<Arc<ChannelLog>>,
    /// Its most frequent metrics.
    pub metrics: BackendMetrics,
}

/// Per-call state inside the `Store`.
pub struct HostState {
    /// Built on the first WASI call only: most adapter calls make none, and
    /// the context (RNG seeding, clocks, capture pipes) is a visible share of
    /// a ~15 µs call.
    wasi: Option<LazyWasi>,
    table: ResourceTable,
    pub(super) limiter: CallLimiter,
    pub(super) backend: Arc<BackendShared>,
    pub(super) limits: Limits,
    pub(super) http_calls: u32,
    pub(super) log_lines: u32,
    /// What the guest logged during this call (redacted), for fixtures and dry runs.
    pub captured_log: Vec<String>,
    /// The guest's running time in this call.
    pub(super) cpu: Arc<CpuMeter>,
    /// The message this call sends, if it sends one (the channel log links to it).
    pub(super) message: Option<MessageId>,
}

impl HostState {
    /// Fresh state for one call of `backend`.
    pub(super) fn new(backend: Arc<BackendShared>, limits: Limits, limiter: CallLimiter, cpu: Arc<CpuMeter>) -> Self {
        let mut table = ResourceTable::new();
        // Host-side objects a call may hold at once (streams, pollables, ...):
        // they live outside the guest's memory, so they get a bound of their own.
        table.set_max_capacity(MAX_HOST_RESOURCES);
        HostState {
            wasi: None,
            table,
            limiter,
            backend,
            limits,
            http_calls: 0,
            log_lines: 0,
            captured_log: Vec::new(),
            cpu,
            message: None,
        }
    }

    /// What the guest wrote to stdout and stderr, if it touched WASI at all.
    pub(super) fn take_stdio(&mut self) -> Vec<(&'static str, Vec<u8>)> {
        let Some(wasi) = self.wasi.take() else { return Vec::new() };
        vec![("stdout", wasi.stdout.contents().to_vec()), ("stderr", wasi.stderr.contents().to_vec())]
    }
}

/// A WASI context that grants nothing, with the guest's stdout and stderr
/// captured in bounded pipes.
struct LazyWasi {
    ctx: WasiCtx,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl LazyWasi {
    fn new() -> Self {
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        // Nothing is granted: no env, args, preopened dirs, sockets or name lookup.
        let ctx = WasiCtxBuilder::new().stdout(stdout.clone()).stderr(stderr.clone()).build();
        LazyWasi { ctx, stdout, stderr }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self.wasi.get_or_insert_with(LazyWasi::new);
        WasiCtxView { ctx: &mut wasi.ctx, table: &mut self.table }
    }
}
