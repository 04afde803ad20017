//! Backends compiled into the gateway binary, referred to as `builtin:<name>`.

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The wasm bytes of a built-in backend.
pub fn component(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}

/// Names of every built-in backend.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}
