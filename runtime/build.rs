//! Builds the guest components (built-in backends and test guests) to
//! `wasm32-wasip2` so `cargo run` and `cargo test` need no extra step.

use std::path::Path;

/// Built-in backends, embedded in the binary: (package, name after `builtin:`).
const BUILTINS: &[(&str, &str)] = &[
    ("smsgw-backend-http", "http"),
    ("smsgw-backend-kannel", "kannel"),
    ("smsgw-backend-vumi", "vumi"),
    ("smsgw-backend-twilio", "twilio"),
];

/// Components used only by tests; their directory is exported as `SMSGW_TEST_GUESTS`.
const TEST_GUESTS: &[&str] = &["smsgw-test-guest-trap", "smsgw-test-guest-hostile"];

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let root = Path::new(&manifest).parent().unwrap();
    smsgw_guest_build::rerun_if_changed(root, &["wit", "guest-sdk", "backends", "tests/guests", "tests/hostile"]);

    let mut packages: Vec<&str> = BUILTINS.iter().map(|(p, _)| *p).collect();
    packages.extend(TEST_GUESTS);
    let built = smsgw_guest_build::build(root, &packages);

    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut table =
        String::from("/// Built-in components: (name, wasm bytes).\npub static BUILTINS: &[(&str, &[u8])] = &[\n");
    for (package, name) in BUILTINS {
        let (_, path) = built.iter().find(|(p, _)| p == package).unwrap();
        let dest = out.join(format!("{name}.wasm"));
        std::fs::copy(path, &dest).unwrap();
        table.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", dest.display().to_string()));
    }
    table.push_str("];\n");
    std::fs::write(out.join("builtins.rs"), table).unwrap();

    let guests = out.join("test-guests");
    std::fs::create_dir_all(&guests).unwrap();
    for package in TEST_GUESTS {
        let (_, path) = built.iter().find(|(p, _)| p == package).unwrap();
        let name = package.trim_start_matches("smsgw-test-guest-");
        std::fs::copy(path, guests.join(format!("{name}.wasm"))).unwrap();
    }
    println!("cargo:rustc-env=SMSGW_TEST_GUESTS={}", guests.display());
}
