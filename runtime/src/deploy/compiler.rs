//! Compiling an uploaded component: untrusted input to a compiler, so it runs
//! in a child process (this executable re-run as `smsgw compile-component`)
//! that is killed at the deadline. A compile bomb then costs at most
//! `compile_timeout_ms` of one core, never a thread that keeps burning after
//! the upload was refused. Nothing is cached here: the caller stores the
//! artefact only once every check has passed.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;
use wasmtime::component::Component;

use super::DeployError;
use crate::wasm::engine::WasmEngine;
use crate::wasm::validate;

/// The subcommand the child runs.
pub const SUBCOMMAND: &str = "compile-component";

/// Largest artefact read back from the child.
const MAX_ARTEFACT_BYTES: u64 = 1 << 30;

/// Runs compilations in child processes, one at a time.
pub struct Compiler {
    exe: PathBuf,
    timeout: Duration,
    slot: Semaphore,
}

/// A compiled upload, not yet accepted or cached.
pub struct Artefact {
    pub component: Component,
    pub bytes: Vec<u8>,
    pub elapsed: Duration,
}

impl Compiler {
    /// Compiles with this executable, each within `timeout`.
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        Ok(Compiler { exe: std::env::current_exe()?, timeout, slot: Semaphore::new(1) })
    }

    /// The deadline of one compilation.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Compiles `wasm` for `engine` in a child process and loads the result.
    pub async fn compile(&self, engine: &WasmEngine, wasm: &[u8]) -> Result<Artefact, DeployError> {
        let started = Instant::now();
        let _slot = tokio::time::timeout(self.timeout, self.slot.acquire())
            .await
            .map_err(|_| DeployError::Busy("another upload is compiling; try again".into()))?
            .map_err(|_| DeployError::Internal("compiler closed".into()))?;
        let deadline = self.timeout.saturating_sub(started.elapsed());
        let bytes = match tokio::time::timeout(deadline, self.run_child(wasm)).await {
            Err(_) => {
                return Err(DeployError::Invalid(format!(
                    "the component did not compile within {} ms (compile_timeout_ms)",
                    self.timeout.as_millis()
                )));
            }
            Ok(result) => result?,
        };
        // SAFETY: the artefact was produced by this same executable, with the
        // same engine settings, in a child process this gateway started;
        // wasmtime refuses artefacts of an incompatible engine.
        let component = unsafe { Component::deserialize(engine.engine(), &bytes) }
            .map_err(|e| DeployError::Internal(format!("the compiler's output cannot be loaded: {e:#}")))?;
        Ok(Artefact { component, bytes, elapsed: started.elapsed() })
    }

    /// Starts the child, feeds it `wasm`, and reads its artefact. Dropping
    /// this future (the deadline) kills the child.
    async fn run_child(&self, wasm: &[u8]) -> Result<Vec<u8>, DeployError> {
        let internal = |what: &str, e: std::io::Error| DeployError::Internal(format!("compiler {what}: {e}"));
        let mut child = tokio::process::Command::new(&self.exe)
            .arg(SUBCOMMAND)
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| internal("cannot start", e))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout").take(MAX_ARTEFACT_BYTES);
        let mut stderr = child.stderr.take().expect("piped stderr").take(64 << 10);
        let feed = async {
            let written = stdin.write_all(wasm).await;
            drop(stdin);
            written
        };
        let mut artefact = Vec::new();
        let mut errors = Vec::new();
        let read_out = stdout.read_to_end(&mut artefact);
        let read_err = stderr.read_to_end(&mut errors);
        let (fed, out, _) = tokio::join!(feed, read_out, read_err);
        let status = child.wait().await.map_err(|e| internal("did not finish", e))?;
        if !status.success() {
            let reason = String::from_utf8_lossy(&errors).trim().to_string();
            return Err(DeployError::Invalid(format!("not accepted: {reason}")));
        }
        fed.map_err(|e| internal("input", e))?;
        out.map_err(|e| internal("output", e))?;
        Ok(artefact)
    }
}

/// The child's side: a `.wasm` on stdin, native code on stdout, the reason
/// on stderr (and exit code 1) when it is not a component that compiles.
pub fn child_main() -> anyhow::Result<()> {
    let mut wasm = Vec::new();
    std::io::stdin().read_to_end(&mut wasm)?;
    let result = validate::check_header(&wasm).map_err(anyhow::Error::from).and_then(|()| {
        let engine = WasmEngine::new()?;
        engine
            .engine()
            .precompile_component(&wasm)
            .map_err(|e| anyhow::anyhow!("the component does not compile: {e:#}"))
    });
    match result {
        Ok(artefact) => {
            std::io::stdout().write_all(&artefact)?;
            Ok(())
        }
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
    }
}
