//! Memory held through several linear memories: a component may declare one
//! per core instance (four in all), each grown to the per-backend limit. The
//! limit holds for their sum. Shown with real wasmtime memories: four
//! instances of a module that grows its memory, in one store, as a
//! component's core instances are.

use smsgw::wasm::limiter::CallLimiter;
use wasmtime::{Engine, Instance, Module, Store, StoreLimitsBuilder};

/// `(module (memory 1) (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))`.
const GROWER: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1 page
    0x07, 0x08, 0x01, 0x04, b'g', b'r', b'o', b'w', 0x00, 0x00, // export "grow"
    0x0a, 0x08, 0x01, 0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b, // local.get 0; memory.grow 0; end
];

const LIMIT: usize = 64 << 20;
/// 32 MiB in 64 KiB pages.
const HALF_THE_LIMIT_IN_PAGES: i32 = 512;

/// How many of four memories could each grow by half the limit.
fn grown<T: 'static>(store: &mut Store<T>, module: &Module) -> usize {
    let mut grown = 0;
    for _ in 0..4 {
        let instance = Instance::new(&mut *store, module, &[]).unwrap();
        let grow = instance.get_typed_func::<i32, i32>(&mut *store, "grow").unwrap();
        if grow.call(&mut *store, HALF_THE_LIMIT_IN_PAGES).unwrap() != -1 {
            grown += 1;
        }
    }
    grown
}

#[test]
fn the_memory_limit_holds_for_the_sum_of_a_calls_memories() {
    let engine = Engine::default();
    let module = Module::new(&engine, GROWER).unwrap();

    // What a limit per memory allows: four times 32 MiB against a 64 MiB limit.
    let mut per_memory = Store::new(&engine, StoreLimitsBuilder::new().memory_size(LIMIT).build());
    per_memory.limiter(|l| l);
    assert_eq!(grown(&mut per_memory, &module), 4, "the flaw this guards against");

    // The gateway's limiter: the first memory grows, the second would pass 64 MiB.
    let mut summed = Store::new(&engine, CallLimiter::new(LIMIT));
    summed.limiter(|l| l);
    assert_eq!(grown(&mut summed, &module), 1, "memories share one budget");
}
