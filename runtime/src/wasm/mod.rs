//! Running backend components: the engine, the contract's generated bindings,
//! compilation (validated, cached on disk), the sandbox around each call, and
//! the host side of each interface a component imports.

pub mod bindings;
pub mod cache;
pub mod cpu;
pub mod engine;
pub mod guest_log;
pub mod host_state;
pub mod http_client;
pub mod limiter;
pub mod log;
pub mod rate;
pub mod request_policy;
pub mod sandbox;
pub mod slots;
pub mod transport;
pub mod validate;

pub use sandbox::{CallError, CallOutput, Sandbox, SandboxFactory, SandboxSpec};
