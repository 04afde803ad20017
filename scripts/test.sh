#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, checks
# formatting and lints, builds the guest components and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --exclude smsgw --exclude smsgw-guest-build --target wasm32-wasip2 -- -D warnings
cargo test --workspace --no-fail-fast
