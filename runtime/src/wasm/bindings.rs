//! Host bindings for the `smsgw:backend@0.1.0` world, generated from `wit/`.

wasmtime::component::bindgen!({
    world: "backend",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::exports::smsgw::backend::adapter;
pub use self::smsgw::backend::{http_client, log, types};

/// The interface name and version a backend must export.
pub const ADAPTER_EXPORT: &str = "smsgw:backend/adapter@0.1.0";

/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.1.0";
