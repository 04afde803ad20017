//! The reliability suite: the release promise, "nothing lost, nothing twice",
//! checked by doing to the real binary what operators and networks do to it:
//! kill -9 and SIGTERM under load, providers that fail in every way for longer
//! than a retry budget of seconds would survive, a second gateway on the same
//! data, clients that never finish their requests. Loopback only; every loop
//! is bounded. Run with `--nocapture` for the counts.

#[path = "../common/mod.rs"]
mod common;

mod crash;
mod disk;
mod edge;
mod faults;
mod shutdown;

use std::collections::HashMap;
use std::time::Duration;

use common::Gateway;

/// Runs the tests of this binary one at a time (they measure and kill processes).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// A `builtin:http` backend named `name` sending to `origin`, with the gateway's
/// message id as `id` (so a provider can count each message's deliveries).
pub fn http_backend(name: &str, origin: &str, limits: &str) -> String {
    format!(
        "[[backends]]\nname = \"{name}\"\ncomponent = \"builtin:http\"\nallowed_hosts = [\"{origin}\"]\n\
         [backends.config]\nsendsms_url = \"{origin}/send\"\noutgoing_id_name = \"id\"\n[backends.limits]\n{limits}\n"
    )
}

/// Queues `n` one-recipient messages on `backend`; returns their ids.
pub async fn enqueue(gw: &Gateway, backend: &str, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = serde_json::json!({"backend": backend, "to": [format!("+{i}")], "text": format!("m{i}")});
        let (status, created) = gw.post_json("/api/v1/messages", &body).await;
        assert_eq!(status, 202, "{created}");
        ids.push(created["id"].as_i64().unwrap());
    }
    ids
}

/// How many times the provider got each gateway message id.
pub fn deliveries(received: &[common::Received]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in received {
        if let Some(id) = r.param("id") {
            *counts.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// Waits until every id in `ids` is `sent` (or panics after `within`).
pub async fn wait_all_sent(gw: &Gateway, ids: &[i64], within: Duration) {
    for id in ids {
        gw.wait_message(*id, within, |m| m["status"] == "sent").await;
    }
}
