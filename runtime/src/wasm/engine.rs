//! The process-wide wasmtime `Engine`, configured for untrusted components.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, ModuleVersionStrategy, PoolingAllocationConfig};

use crate::limits::MAX_MEMORY_BYTES;

/// How often the epoch advances; CPU deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Instances that may be alive at once across all backends; callers must
/// bound concurrency below this (pool exhaustion fails instead of waiting).
pub const MAX_LIVE_INSTANCES: u32 = 256;

/// Per-component maxima of what the pool holds.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;
const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
const MAX_TABLES_PER_COMPONENT: u32 = 32;

/// Bytes of each memory and table slot reset in place rather than released to
/// the kernel: a Rust adapter's call touches well under this, an interpreter's
/// (QuickJS, CPython) several MiB, which would otherwise fault in again on
/// every call.
const KEEP_RESIDENT_BYTES: usize = 16 << 20;

/// Idle slots that keep their memory (up to [`KEEP_RESIDENT_BYTES`] each) for
/// the component that used them last: bounds what idle slots hold resident.
const MAX_WARM_SLOTS: u32 = 32;

/// Initial memory contents always turned into a copy-on-write image.
const DENSE_IMAGE_BYTES: usize = 64 << 20;

/// What compiled code is stamped with, and must match to be loaded again
/// (the compile cache): wasmtime's version plus a revision of the patches in
/// `vendor/`. Compiled code calls the host's builtin functions by index, and
/// the third patch added one: code compiled by an engine with another list
/// must never run. Raise the revision with every vendor change that alters
/// compiled code or that list.
const CODE_VERSION: &str = "48.0.8+smsgw.3";

/// Owns the engine and the thread that drives epoch interruption.
pub struct WasmEngine {
    engine: Engine,
    stop: Arc<AtomicBool>,
}

impl WasmEngine {
    /// Builds the engine: Cranelift, pooling allocator, epochs, and every
    /// proposal adapters do not need switched off (less attack surface).
    pub fn new() -> anyhow::Result<Self> {
        Self::with_pooling(true)
    }

    /// Like [`WasmEngine::new`]; `pooling = false` allocates each instance on
    /// demand (for benchmarks comparing the two).
    pub fn with_pooling(pooling: bool) -> anyhow::Result<Self> {
        let config = config(pooling, ModuleVersionStrategy::Custom(CODE_VERSION.into()))?;
        let engine = Engine::new(&config)?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let ticker_stop = stop.clone();
        std::thread::Builder::new().name("smsgw-epoch".into()).spawn(move || {
            while !ticker_stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match ticker_engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(WasmEngine { engine, stop })
    }

    /// The engine, for compiling and instantiating.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The engine's configuration, its compiled code stamped with `version`.
pub(crate) fn config(pooling: bool, version: ModuleVersionStrategy) -> anyhow::Result<Config> {
    let mut pool = PoolingAllocationConfig::default();
    // Every total is the per-component maximum times the instances alive
    // at once, so that only component instances, which the slots in front
    // of the pool share out fairly, can run out: a component declaring many
    // core instances, memories or tables cannot empty the pool for others.
    pool.total_component_instances(MAX_LIVE_INSTANCES)
        // A std wasip2 Rust guest has a handful of core instances; Python a few dozen.
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .total_core_instances(MAX_LIVE_INSTANCES * MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .total_memories(MAX_LIVE_INSTANCES * MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .total_tables(MAX_LIVE_INSTANCES * MAX_TABLES_PER_COMPONENT)
        .total_stacks(MAX_LIVE_INSTANCES)
        .max_memory_size(MAX_MEMORY_BYTES)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .table_elements(100_000)
        // Resetting a slot for reuse: with the PAGEMAP_SCAN ioctl (Linux >= 6.7)
        // only the pages the call dirtied are restored by memset and stay
        // resident, instead of madvise + page faults + TLB shootdowns on
        // every call (that was about half of the per-call cost). However
        // scattered those pages are: vendor/wasmtime's scan no longer stops
        // after 32 runs of them (runtime/tests/pool_reset.rs).
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .max_unused_warm_slots(MAX_WARM_SLOTS)
        .table_keep_resident(KEEP_RESIDENT_BYTES);

    // GC, exceptions, threads and component-model async are not even compiled
    // in (those wasmtime cargo features are off); the rest are switched off here.
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(if pooling {
            InstanceAllocationStrategy::Pooling(pool)
        } else {
            InstanceAllocationStrategy::OnDemand
        })
        .memory_init_cow(true)
        // Interpreters (Python's ~20 MB heap snapshot) have sparse initial
        // memories that the default heuristic would initialise eagerly on
        // every instantiation: ~4000 page faults, 2.4 ms per call. Up to
        // this size a copy-on-write image is always made; it bounds what a
        // sparse hostile component can add to its compiled artefact.
        .memory_guaranteed_dense_image_size(DENSE_IMAGE_BYTES as u64)
        .max_wasm_stack(1 << 20)
        .wasm_component_model(true)
        .wasm_gc(false)
        .wasm_memory64(false)
        .wasm_stack_switching(false)
        .concurrency_support(false)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .module_version(version)?;
    Ok(config)
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
