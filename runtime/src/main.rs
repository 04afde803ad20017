/// mimalloc for everything, SQLite's and libc's own allocations included (the
/// `override` feature): the gateway allocates per request on every thread,
/// and glibc's malloc took a tenth of its CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A user's mistake gets its reason, not a backtrace (even with
/// `RUST_BACKTRACE` set: these are errors, not panics).
fn main() {
    if let Err(e) = smsgw::cli::main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
