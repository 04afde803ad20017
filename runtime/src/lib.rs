//! smsgw: an SMS gateway whose provider backends are sandboxed WebAssembly components.
//!
//! A request from a provider arrives at [`server`], a backend component parses
//! it inside the [`wasm`] sandbox, the [`store`] commits it, the [`router`]
//! hands it to the [`apps`], and replies leave through the [`outbound`] queue,
//! calling the backend's `send`, which reaches the provider only through the
//! host's policed HTTP client ([`egress`], [`secrets`], [`limits`]).

pub mod admin_client;
pub mod apps;
pub mod backends;
pub mod builtin;
pub mod cli;
pub mod config;
pub mod deploy;
pub mod egress;
pub mod fixtures;
pub mod gateway;
pub mod limits;
pub mod native_kannel;
pub mod outbound;
pub mod router;
pub mod secrets;
pub mod server;
pub mod store;
pub mod templates;
pub mod tools;
pub mod wasm;
