//! The pool's slot reset on the gateway's own engine: what a call dirtied is
//! reset in place and stays resident, however scattered, so that the next
//! call in the slot does not fault it in again. Interpreters (CPython,
//! QuickJS) dirty hundreds of scattered pages per call; wasmtime 48 stopped
//! scanning after 32 runs of dirty pages and decommitted the rest, which cost
//! Python about 190 page faults per call (vendor/README.md).

use smsgw::wasm::engine::WasmEngine;
use wasmtime::{Instance, Module, Store};

/// Runs of dirty pages one call leaves: one page every 64 KiB.
const SCATTERED_PAGES: i32 = 128;

/// `(module (memory 256) (func (export "scatter") (param $n i32) (local $i i32)
///   loop  local.get $i  i32.const 16  i32.shl  i32.const 1  i32.store8
///         local.get $i  i32.const 1  i32.add  local.tee $i  local.get $n  i32.lt_u  br_if 0
///   end))`: writes a byte at every 64 KiB of its 16 MiB memory, `$n` times.
const SCATTER: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x05, 0x01, 0x60, 0x01, 0x7f, 0x00, // type: (i32) -> ()
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x05, 0x04, 0x01, 0x00, 0x80, 0x02, // memory: min 256 pages
    0x07, 0x0b, 0x01, 0x07, b's', b'c', b'a', b't', b't', b'e', b'r', 0x00, 0x00, // export "scatter"
    0x0a, 0x1f, 0x01, 0x1d, // code: one body of 29 bytes
    0x01, 0x01, 0x7f, // one i32 local
    0x03, 0x40, // loop
    0x20, 0x01, 0x41, 0x10, 0x74, // (local.get 1) << 16
    0x41, 0x01, 0x3a, 0x00, 0x00, // i32.store8 1
    0x20, 0x01, 0x41, 0x01, 0x6a, 0x22, 0x01, // local.tee 1 (local.get 1 + 1)
    0x20, 0x00, 0x49, 0x0d, 0x00, // br_if 0 (local 1 < local 0)
    0x0b, 0x0b, // end loop, end function
];

/// Minor page faults of the calling thread so far.
fn thread_minor_faults() -> u64 {
    smsgw_test_support::thread_minor_faults().expect("/proc/thread-self/stat")
}

/// `PAGEMAP_SCAN` came with Linux 6.7.
fn kernel_has_pagemap_scan() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u32>().ok());
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (6, 7)
}

/// Instantiates in a fresh store, as every sandbox call does, scatters, drops.
fn one_call(engine: &wasmtime::Engine, module: &Module) {
    let mut store = Store::new(engine, ());
    store.set_epoch_deadline(1_000);
    let instance = Instance::new(&mut store, module, &[]).unwrap();
    let scatter = instance.get_typed_func::<i32, ()>(&mut store, "scatter").unwrap();
    scatter.call(&mut store, SCATTERED_PAGES).unwrap();
}

#[test]
fn scattered_dirty_pages_stay_resident_between_calls() {
    if !kernel_has_pagemap_scan() {
        eprintln!("SKIPPED: a kernel before 6.7 has no PAGEMAP_SCAN; every reset decommits");
        return;
    }
    let engine = WasmEngine::new().unwrap();
    let module = Module::new(engine.engine(), SCATTER).unwrap();
    // The first calls fault the pages in and leave them resident in the slot.
    for _ in 0..3 {
        one_call(engine.engine(), &module);
    }
    let calls = 10;
    let before = thread_minor_faults();
    for _ in 0..calls {
        one_call(engine.engine(), &module);
    }
    let per_call = (thread_minor_faults() - before) / calls;
    // Unpatched: the 96 pages after the 32nd run fault in on every call.
    assert!(
        per_call < u64::try_from(SCATTERED_PAGES).unwrap() / 8,
        "{per_call} page faults per call: the slot reset threw away what the last call dirtied"
    );
}
