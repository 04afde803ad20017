//! Element segments applied lazily (vendor/README.md, change 3), on the
//! gateway's own engine: a segment of functions written at an offset known
//! only at instantiation (an imported global, as dynamically linked guests
//! such as CPython do) is recorded, and each element's funcref is made on
//! its first use. Whatever reads the table must see exactly what eager
//! application would have written: calls, `table.get`, `table.copy`, the
//! host's `Table::get`, later segments and writes over earlier ones, traps
//! for segments out of bounds, and nothing left over in a reused pool slot.

use smsgw::wasm::engine::WasmEngine;
use wasmtime::{Extern, Global, GlobalType, Instance, Module, Mutability, Store, Table, Val, ValType};

/// Owns the table (10 funcrefs) and reads it in every way wasm can.
const MAIN: &str = r#"(module
  (type $t (func (result i32)))
  (table $table (export "table") 10 funcref)
  (func (export "call") (param i32) (result i32) (call_indirect (type $t) (local.get 0)))
  (func (export "is_null") (param i32) (result i32) (ref.is_null (table.get (local.get 0))))
  (func (export "set") (param $dst i32) (param $src i32) (table.set (local.get $dst) (table.get (local.get $src))))
  (func (export "copy") (param i32 i32 i32) (table.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "null") (param i32) (table.set (local.get 0) (ref.null func))))"#;

/// A library putting three functions (1, 2, 3) into the imported table at `base`.
const LIB_123: &str = r#"(module
  (import "env" "table" (table 10 funcref))
  (import "env" "base" (global $base i32))
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func $three (result i32) (i32.const 3))
  (elem (table 0) (global.get $base) func $one $two $three))"#;

/// A second library: two functions (10, 20) at `base`.
const LIB_10_20: &str = r#"(module
  (import "env" "table" (table 10 funcref))
  (import "env" "base" (global $base i32))
  (func $ten (result i32) (i32.const 10))
  (func $twenty (result i32) (i32.const 20))
  (elem (table 0) (global.get $base) func $ten $twenty))"#;

/// A module whose segment goes into its own table at an imported offset.
const OWN_TABLE: &str = r#"(module
  (type $t (func (result i32)))
  (import "env" "base" (global $base i32))
  (table 10 funcref)
  (func $seven (result i32) (i32.const 7))
  (elem (table 0) (global.get $base) func $seven $seven)
  (func (export "call") (param i32) (result i32) (call_indirect (type $t) (local.get 0))))"#;

struct Harness {
    engine: WasmEngine,
    main: Module,
    lib_123: Module,
    lib_10_20: Module,
}

impl Harness {
    fn new() -> Self {
        let engine = WasmEngine::new().unwrap();
        let (main, lib_123, lib_10_20) = (module(&engine, MAIN), module(&engine, LIB_123), module(&engine, LIB_10_20));
        Harness { engine, main, lib_123, lib_10_20 }
    }

    /// `text` compiled by the gateway's engine.
    fn module(&self, text: &str) -> Module {
        module(&self.engine, text)
    }

    fn store(&self) -> Store<()> {
        let mut store = Store::new(self.engine.engine(), ());
        store.set_epoch_deadline(1_000);
        store
    }
}

fn module(engine: &WasmEngine, text: &str) -> Module {
    Module::new(engine.engine(), wat::parse_str(text).unwrap()).unwrap()
}

/// An immutable `i32` global holding `base`, as a linker provides `__table_base`.
fn base_global(store: &mut Store<()>, base: i32) -> Global {
    Global::new(&mut *store, GlobalType::new(ValType::I32, Mutability::Const), Val::I32(base)).unwrap()
}

/// The main module's instance and its table.
fn main_instance(h: &Harness, store: &mut Store<()>) -> (Instance, Table) {
    let instance = Instance::new(&mut *store, &h.main, &[]).unwrap();
    let table = instance.get_table(&mut *store, "table").unwrap();
    (instance, table)
}

/// Instantiates `lib` with its segment at `base` in `table`.
fn link(store: &mut Store<()>, lib: &Module, table: Table, base: i32) -> wasmtime::Result<Instance> {
    let base = base_global(store, base);
    Instance::new(&mut *store, lib, &[Extern::Table(table), Extern::Global(base)])
}

/// What `call_indirect` on element `i` returns; `None` when it traps.
fn call(store: &mut Store<()>, main: &Instance, i: i32) -> Option<i32> {
    let f = main.get_typed_func::<i32, i32>(&mut *store, "call").unwrap();
    f.call(&mut *store, i).ok()
}

/// Every element as `call` sees it (`main`: any instance exporting `call`).
fn calls(store: &mut Store<()>, main: &Instance) -> Vec<Option<i32>> {
    (0..10).map(|i| call(store, main, i)).collect()
}

#[test]
fn calls_see_the_segment_at_its_offset_and_nothing_else() {
    let h = Harness::new();
    let mut store = h.store();
    let (main, table) = main_instance(&h, &mut store);
    link(&mut store, &h.lib_123, table, 4).unwrap();
    let is_null = main.get_typed_func::<i32, i32>(&mut store, "is_null").unwrap();
    let nulls: Vec<i32> = (0..10).map(|i| is_null.call(&mut store, i).unwrap()).collect();
    assert_eq!(nulls, [1, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
    let none = None;
    assert_eq!(calls(&mut store, &main), [none, none, none, none, Some(1), Some(2), Some(3), none, none, none]);
}

#[test]
fn the_host_reads_the_segment_through_the_table() {
    let h = Harness::new();
    let mut store = h.store();
    let (_main, table) = main_instance(&h, &mut store);
    link(&mut store, &h.lib_123, table, 2).unwrap();
    let func = table.get(&mut store, 3).unwrap().unwrap_func().copied().expect("element 3 is a function");
    let results = &mut [Val::I32(0)];
    func.call(&mut store, &[], results).unwrap();
    assert_eq!(results[0].unwrap_i32(), 2);
    assert!(table.get(&mut store, 5).unwrap().unwrap_func().is_none(), "element 5 is past the segment");
}

#[test]
fn a_later_segment_overrides_an_earlier_one_and_a_later_write_overrides_both() {
    let h = Harness::new();
    let mut store = h.store();
    let (main, table) = main_instance(&h, &mut store);
    link(&mut store, &h.lib_123, table, 4).unwrap();
    link(&mut store, &h.lib_10_20, table, 5).unwrap();
    assert_eq!(&calls(&mut store, &main)[4..8], [Some(1), Some(10), Some(20), None]);
    // A write after both segments (element 4 := element 6) wins over them.
    let set = main.get_typed_func::<(i32, i32), ()>(&mut store, "set").unwrap();
    set.call(&mut store, (4, 6)).unwrap();
    let null = main.get_typed_func::<i32, ()>(&mut store, "null").unwrap();
    null.call(&mut store, 5).unwrap();
    assert_eq!(&calls(&mut store, &main)[4..7], [Some(20), None, Some(20)]);
}

#[test]
fn a_segment_overrides_what_was_written_before_it() {
    let h = Harness::new();
    let mut store = h.store();
    let (main, table) = main_instance(&h, &mut store);
    link(&mut store, &h.lib_10_20, table, 0).unwrap();
    // Elements 3 and 4 hold 10 and 20 by writes, then a segment covers 4..7.
    let set = main.get_typed_func::<(i32, i32), ()>(&mut store, "set").unwrap();
    set.call(&mut store, (3, 0)).unwrap();
    set.call(&mut store, (4, 1)).unwrap();
    link(&mut store, &h.lib_123, table, 4).unwrap();
    assert_eq!(&calls(&mut store, &main)[3..8], [Some(10), Some(1), Some(2), Some(3), None]);
}

#[test]
fn table_copy_takes_elements_never_used_before() {
    let h = Harness::new();
    let mut store = h.store();
    let (main, table) = main_instance(&h, &mut store);
    link(&mut store, &h.lib_123, table, 7).unwrap();
    let copy = main.get_typed_func::<(i32, i32, i32), ()>(&mut store, "copy").unwrap();
    copy.call(&mut store, (0, 7, 3)).unwrap();
    // Overlapping: 6..9 := 7..10 (1, 2, 3).
    copy.call(&mut store, (6, 7, 3)).unwrap();
    assert_eq!(
        calls(&mut store, &main),
        [Some(1), Some(2), Some(3), None, None, None, Some(1), Some(2), Some(3), Some(3)]
    );
}

#[test]
fn a_segment_out_of_bounds_traps_and_writes_nothing() {
    let h = Harness::new();
    let mut store = h.store();
    let (main, table) = main_instance(&h, &mut store);
    let err = link(&mut store, &h.lib_123, table, 8).expect_err("3 elements at 8 do not fit in 10");
    assert_eq!(err.downcast_ref::<wasmtime::Trap>(), Some(&wasmtime::Trap::TableOutOfBounds), "{err:?}");
    assert_eq!(calls(&mut store, &main), [None; 10]);
    // A negative offset is a huge unsigned one.
    assert!(link(&mut store, &h.lib_123, table, -1).is_err());
    assert_eq!(calls(&mut store, &main), [None; 10]);
}

#[test]
fn a_segment_into_the_modules_own_table() {
    let h = Harness::new();
    let module = h.module(OWN_TABLE);
    let mut store = h.store();
    let base = base_global(&mut store, 8);
    let instance = Instance::new(&mut store, &module, &[Extern::Global(base)]).unwrap();
    assert_eq!(calls(&mut store, &instance), [None, None, None, None, None, None, None, None, Some(7), Some(7)]);
}

#[test]
fn a_reused_pool_slot_keeps_no_segment_of_its_last_store() {
    let h = Harness::new();
    for round in 0..20 {
        let mut store = h.store();
        let (main, table) = main_instance(&h, &mut store);
        if round % 2 == 0 {
            link(&mut store, &h.lib_123, table, round % 8).unwrap();
            assert_eq!(call(&mut store, &main, round % 8), Some(1), "round {round}");
        } else {
            // The same slots, no library linked this time: an empty table.
            assert_eq!(calls(&mut store, &main), [None; 10], "round {round}");
        }
    }
}

/// A library applying `count` one-element segments at `base` (function `k`
/// returns `k`, the last one wins), after a first segment of two elements.
fn many_segments(count: usize) -> String {
    let mut text = String::from(
        "(module (import \"env\" \"table\" (table 10 funcref)) (import \"env\" \"base\" (global $base i32))\n",
    );
    text.push_str("(func $first (result i32) (i32.const -1)) (func $second (result i32) (i32.const -2))\n");
    text.push_str("(elem (table 0) (global.get $base) func $first $second)\n");
    for k in 1..=count {
        text.push_str(&format!(
            "(func $f{k} (result i32) (i32.const {k})) (elem (table 0) (global.get $base) func $f{k})\n"
        ));
    }
    text.push(')');
    text
}

#[test]
fn past_the_bound_on_records_segments_are_applied_eagerly_and_the_last_still_wins() {
    let h = Harness::new();
    // More segments than an instance records (256 in vendor/wasmtime).
    let lib = h.module(&many_segments(300));
    let mut store = h.store();
    let (main, table) = main_instance(&h, &mut store);
    link(&mut store, &lib, table, 3).unwrap();
    assert_eq!(&calls(&mut store, &main)[2..6], [None, Some(300), Some(-2), None]);
    // The table's instance is past the bound: another library's segment is
    // applied eagerly, over elements that records still cover.
    link(&mut store, &h.lib_10_20, table, 3).unwrap();
    assert_eq!(&calls(&mut store, &main)[2..6], [None, Some(10), Some(20), None]);
}
