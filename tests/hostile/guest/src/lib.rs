//! A backend that attacks the host that runs it. The attack is chosen by the
//! inbound `text` parameter (`parse-incoming`) or the message text (`send`);
//! any other text is handled like a well-behaved backend would, so the same
//! component also proves it still works after each attack.
//!
//! Each attack must end in a clean error for that one call, never in harm to
//! the gateway: that is what `runtime/tests/hostile.rs` checks.

use smsgw_guest::http::{Error, Request, describe};
use smsgw_guest::*;

struct Hostile;

/// Recurses without end; `black_box` stops the optimiser turning it into a loop.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    std::hint::black_box(recurse(std::hint::black_box(depth + 1)) + 1)
}

/// Grows linear memory a page at a time until the host refuses.
fn grow_memory() -> usize {
    let mut pages = 0;
    loop {
        #[cfg(target_arch = "wasm32")]
        let grown = core::arch::wasm32::memory_grow(0, 1);
        #[cfg(not(target_arch = "wasm32"))]
        let grown = usize::MAX;
        if grown == usize::MAX {
            return pages;
        }
        pages += 1;
    }
}

/// Describes an HTTP outcome in one word the tests can check.
fn outcome(result: Result<http::Response, Error>) -> String {
    match result {
        Ok(r) => format!("status {}", r.status),
        Err(Error::Denied(r)) => format!("denied: {r}"),
        Err(e) => format!("error: {}", describe(&e)),
    }
}

/// Runs one attack and reports what it achieved as the message text.
fn attack(kind: &str, params: &Params) -> Result<String, ParseError> {
    Ok(match kind {
        "loop" => loop {
            std::hint::black_box(0);
        },
        "recurse" => recurse(0).to_string(),
        "grow" => format!("grew {} pages", grow_memory()),
        "alloc" => {
            // Ask for far more than any limit allows; a refused allocation aborts.
            let huge: Vec<u8> = vec![7; 1 << 30];
            huge.len().to_string()
        }
        "huge-text" => "x".repeat(10 << 20),
        "many-calls" => {
            let url = params.get("url").unwrap_or("http://127.0.0.1:9/");
            let mut denied = 0;
            for _ in 0..5000 {
                if let Err(Error::LimitExceeded(_)) = Request::new("GET", url).send() {
                    denied += 1;
                }
            }
            format!("limit hit {denied} times")
        }
        "fetch" => outcome(Request::new("GET", params.required("url")?).send()),
        "host-header" => outcome(Request::new("GET", params.required("url")?).header("Host", "evil.example").send()),
        "env" => {
            let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
            let file = std::fs::read_to_string("/etc/passwd").map(|s| s.len()).map_err(|e| e.kind());
            let dir = std::fs::read_dir("/").map(|d| d.count()).map_err(|e| e.kind());
            format!("env={vars:?} file={file:?} dir={dir:?}")
        }
        "trap" => panic!("hostile trap"),
        _ => return Ok(String::new()),
    })
}

impl Backend for Hostile {
    fn parse_incoming(_ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
        let params = Params::from_query(&req);
        let text = params.required("text")?;
        let identity = params.required("identity")?;
        let report = attack(&text, &params)?;
        let text = if report.is_empty() { text } else { report };
        Ok(Incoming::messages(vec![IncomingMessage::new(identity, text)]))
    }

    fn send(_ctx: BackendContext, msg: OutgoingMessage) -> Result<Vec<SentIdentity>, SendError> {
        match msg.text.as_str() {
            // Half of a batch goes out, then the component dies.
            "trap-mid-batch" => {
                let _ = Request::new("GET", "http://127.0.0.1:9/").send();
                panic!("trap in the middle of a batch")
            }
            "loop" => loop {
                std::hint::black_box(0);
            },
            _ => Ok(SentIdentity::all(&msg.identities)),
        }
    }
}

export_backend!(Hostile);
