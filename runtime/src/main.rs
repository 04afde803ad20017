/// A user's mistake gets its reason, not a backtrace (even with
/// `RUST_BACKTRACE` set: these are errors, not panics).
fn main() {
    if let Err(e) = smsgw::cli::main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
