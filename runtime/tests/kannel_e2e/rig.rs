//! The gateway and Kannel together, and the waits every step is made of.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::PHONE;
use super::common::Gateway;
use super::kannel::{Kannel, POLL, WAIT, read_lossy, tail};

/// The test's temporary directory (configs, Kannel's logs and spool, the
/// gateway's data). Kept, and named on stderr, when the test fails: the panic
/// message only holds the tails of Kannel's debug logs.
pub struct WorkDir(Option<tempfile::TempDir>);

impl WorkDir {
    /// A fresh temporary directory.
    pub fn new() -> Self {
        WorkDir(Some(tempfile::tempdir().unwrap()))
    }

    pub fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            eprintln!("kannel e2e: logs kept in {}", dir.keep().display());
        }
    }
}

/// The gateway and Kannel together. Fields drop in order: Kannel's processes
/// are stopped before the gateway, as NOTES.md recommends.
pub struct Rig {
    pub kannel: Kannel,
    pub gw: Gateway,
}

impl Rig {
    /// Everything worth reading when a step times out: which hop lost the
    /// message is only visible in the logs.
    pub fn logs(&self) -> String {
        format!(
            "==== gateway log ({})\n{}\n{}",
            self.gw.log_path.display(),
            tail(&self.gw.log(), 80),
            self.kannel.logs()
        )
    }

    /// Polls `probe` until it yields a value, for at most [`WAIT`]; a timeout
    /// panics naming `what`, with every log.
    async fn wait_for<T>(&self, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if Instant::now() >= deadline {
                panic!("timed out after {WAIT:?} waiting for {what}\n{}", self.logs());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types one MO into fakesmsc and waits until the gateway stored it as an
    /// inbound message newer than `after` (waiting for the effect is what
    /// keeps fakesmsc from holding back the next line).
    pub async fn inject_mo(&self, line: &str, after: i64) -> Value {
        self.kannel.type_mo(line);
        self.wait_for(&format!("the gateway to store the MO {line:?}"), async || {
            let (_, list) = self.gw.get_json("/api/v1/messages?direction=in&backend=kannel&limit=1").await;
            let newest = list["messages"].get(0)?;
            (newest["id"].as_i64()? > after).then(|| newest.clone())
        })
        .await
    }

    /// The outbound reply the apps queued for `inbound`.
    pub async fn reply_to(&self, inbound: &Value) -> Value {
        let id = inbound["id"].as_i64().unwrap();
        self.wait_for(&format!("a reply to message {id}"), async || {
            let (_, list) = self.gw.get_json("/api/v1/messages?direction=out&backend=kannel&limit=100").await;
            list["messages"].as_array()?.iter().find(|m| m["in_response_to"] == id).cloned()
        })
        .await
    }

    /// The MT line number `index` (0-based) that fakesmsc printed.
    pub async fn next_mt(&self, index: usize) -> String {
        self.wait_for(&format!("MT number {} at fakesmsc", index + 1), async || {
            self.kannel.mt_lines().get(index).cloned()
        })
        .await
    }

    /// Waits until `reply`'s only recipient is `delivered`, i.e. the kannel
    /// backend's dlr-url was called by Kannel with DLR type 1.
    pub async fn wait_delivered(&self, reply: &Value) -> Value {
        let id = reply["id"].as_i64().unwrap();
        let message = self
            .wait_for(&format!("a delivery report marking message {id} delivered"), async || {
                let (_, m) = self.gw.get_json(&format!("/api/v1/messages/{id}")).await;
                (m["recipients"][0]["status"] == "delivered").then_some(m)
            })
            .await;
        let recipients = message["recipients"].as_array().unwrap();
        assert_eq!(recipients.len(), 1, "{message:#}");
        assert_eq!(recipients[0]["identity"], PHONE, "{message:#}");
        message
    }

    /// What the run showed, for the reader of `--nocapture` output.
    pub fn print_observations(&self, ready: Duration, total: Duration, replies: &[&Value]) {
        eprintln!("---- Kannel and gateway ready after {ready:?}; all steps done after {total:?}");
        eprintln!("---- URLs smsbox fetched (get-url, then the kannel backend's dlr-url):");
        for url in self.kannel.fetched_urls() {
            eprintln!("  {url}");
        }
        eprintln!("---- bearerbox access log (MOs, MTs from sendsms, DLRs):");
        for line in read_lossy(&self.kannel.dir.join("kannel-log/bearerbox-access.log")).lines() {
            eprintln!("  {line}");
        }
        eprintln!("---- MT lines printed by fakesmsc:");
        for line in self.kannel.mt_lines() {
            eprintln!("  <{line}>");
        }
        for reply in replies {
            eprintln!("---- reply as the API shows it: {reply}");
        }
    }
}
