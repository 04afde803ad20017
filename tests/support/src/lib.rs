//! What smsgw's integration tests and benchmarks share: the real `smsgw`
//! binary as a child process on loopback (stopped by its PID), and a real
//! HTTP server standing in for an SMS provider.

mod gateway;
mod process;
mod provider;

pub use gateway::{Gateway, GatewayOptions};
pub use process::{free_port, process_cpu_time, thread_minor_faults};
pub use provider::{MockProvider, Received};
