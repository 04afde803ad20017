//! What lives inside one call's `Store`: the backend it runs for, its limits,
//! counters, and a WASI context that grants nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::transport::Transport;
use crate::egress::EgressPolicy;
use crate::limits::Limits;
use crate::secrets::Secrets;

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
    /// Built on the first WASI call only: most adapter calls make none, and
    /// the context (RNG seeding, clocks, capture pipes) is a visible share of
    /// a ~15 µs call.
    wasi: Option<LazyWasi>,
    table: ResourceTable,
    pub(super) store_limits: StoreLimits,
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
    /// Fresh state for one call of `backend`.
    pub(super) fn new(backend: Arc<BackendShared>, limits: Limits, store_limits: StoreLimits) -> Self {
        HostState {
            wasi: None,
            table: ResourceTable::new(),
            store_limits,
            backend,
            limits,
            http_calls: 0,
            log_lines: 0,
            captured_log: Vec::new(),
            started: Instant::now(),
            host_time: Duration::ZERO,
        }
    }

    /// Time the guest itself has been running in this call.
    pub(super) fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
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
