//! Running backend components: the engine, the contract, the host side of
//! each imported interface, compilation with an on-disk cache, and one sandboxed
//! call at a time.

pub mod bindings;
pub mod cache;
pub mod engine;
pub mod http_client;
pub mod log;
pub mod sandbox;
pub mod validate;
