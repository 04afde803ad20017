//! smsgw: an SMS gateway whose provider backends are sandboxed WebAssembly components.
//!
//! A provider's request arrives at the [`server`]; the mounted [`backend`]
//! parses it inside the [`wasm`] sandbox; [`dispatch`] commits it to the
//! [`store`] and hands it to the [`apps`]; their replies leave through the
//! [`outbound`] queue, which calls the backend's `send`, reaching the provider
//! only through the host's policed HTTP client ([`egress`], [`secrets`],
//! [`limits`]). Backends are added and replaced while the gateway runs by
//! [`deploy`]; [`authoring`] holds what backend authors use; [`gateway`]
//! assembles the parts from the [`config`]; [`cli`] is the `smsgw` command.

pub mod apps;
pub mod authoring;
pub mod backend;
pub mod channel_log;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod deploy;
pub mod dispatch;
pub mod egress;
pub mod gateway;
pub mod limits;
pub mod metrics;
pub mod outbound;
pub mod secrets;
pub mod server;
pub mod store;
pub mod wasm;
