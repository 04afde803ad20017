//! Test harness: the shared support crate (the real `smsgw` binary on
//! loopback, a real mock provider), plus the test-only guest components this
//! package builds.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

pub use smsgw_test_support::{Gateway, GatewayOptions, MockProvider, Received, free_port};

/// A test-only guest component built by `runtime/build.rs`.
pub fn test_guest(name: &str) -> PathBuf {
    Path::new(env!("SMSGW_TEST_GUESTS")).join(format!("{name}.wasm"))
}
