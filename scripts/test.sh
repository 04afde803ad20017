#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, checks
# formatting and lints, builds the guest components (Rust via cargo, Python,
# JavaScript and C via their own toolchains) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --exclude smsgw --exclude smsgw-guest-build --exclude bench --exclude smsgw-test-support --target wasm32-wasip2 -- -D warnings

# Backends in other languages, each with its own pinned toolchain.
for lang in python js c; do
    bash "backends/examples/$lang/build.sh"
done
export SMSGW_EXAMPLES_DIR="$PWD/target/examples"
# Their helpers' unit tests: lib.js on Node (installed by the JS build), the
# Python SDK on the machine's CPython.
node --test backends/examples/js/
python3 -m unittest discover -s backends/examples/python/tests

cargo test --workspace --no-fail-fast
# The benchmark suite, very briefly, so it cannot rot (the full run is manual).
cargo run -q -p bench -- smoke > /dev/null
