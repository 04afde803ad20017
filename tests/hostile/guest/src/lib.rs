//! A backend that attacks the host that runs it. The attack is chosen by the
//! inbound `text` parameter (`parse-incoming`) or the message text (`send`);
//! any other text is handled like a well-behaved backend would, so the same
//! component also proves it still works after each attack.
//!
//! Each attack must end in a clean error for that one call, never in harm to
//! the gateway: that is what `runtime/tests/hostile.rs` checks.

use smsgw_guest::http::{Error, Request, describe};
use smsgw_guest::log;
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

/// Everything an exchange handed back: status, headers and body, or the
/// error's whole text. The secret-reflection attack collects these.
fn everything(result: Result<http::Response, Error>) -> String {
    match result {
        Ok(r) => format!("status {} headers {:?} body {}", r.status, r.headers, r.text()),
        Err(e) => format!("{e:?}"),
    }
}

/// Every way this component knows to make the host hand back a filled-in
/// secret: in errors about its own request and in what a provider echoes.
/// `echo` is a granted provider that echoes requests; `closed` a granted
/// origin where nothing listens.
fn reflect(echo: &str, closed: &str) -> String {
    let secret = "{{secret:pw}}";
    let attempts = [
        // Transport errors quote the URL (connection refused).
        Request::new("GET", format!("{closed}/x?pw={secret}")),
        // Invalid port, credentials, a secret as the host or the path.
        Request::new("GET", format!("http://127.0.0.1:99999/?pw={secret}")),
        Request::new("GET", format!("http://user:{secret}@127.0.0.1:1/")),
        Request::new("GET", format!("http://{secret}.example/")),
        Request::new("GET", format!("{echo}/{secret}/x")),
        // A provider echoing the query, a header, a Basic credential, JSON and form bodies.
        Request::new("GET", format!("{echo}/q?pw={secret}")),
        Request::new("GET", format!("{echo}/h")).header("X-Token", secret),
        Request::new("GET", format!("{echo}/b")).basic_auth("user", secret),
        Request::new("POST", format!("{echo}/j"))
            .header("content-type", "application/json")
            .body(format!("{{\"pw\":\"{secret}\"}}")),
        Request::new("POST", format!("{echo}/f"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("pw={secret}")),
        // A header value the filled-in secret makes invalid, a method refused.
        Request::new("GET", format!("{echo}/n")).header("X-Token", &format!("{secret}\r\nX-Evil: 1")),
        Request::new("TRACE", format!("{echo}/t?pw={secret}")),
    ];
    attempts.into_iter().map(|r| everything(r.send())).collect::<Vec<_>>().join(" | ")
}

/// Spins through `iterations` rounds of arithmetic: CPU work of a known size.
fn burn(iterations: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..iterations {
        x = std::hint::black_box(x.rotate_left(7) ^ i).wrapping_mul(0x2545_f491_4f6c_dd1d);
    }
    x
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
            // A thousand: well past the 16 allowed, and within the test
            // backend's 200 ms of CPU in a debug build on a slow machine
            // (5000 were not, on some days).
            for _ in 0..1000 {
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
        "reflect" => reflect(&params.required("echo")?, &params.required("closed")?),
        "burn" => {
            let iterations = params.get("iterations").and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
            format!("burnt {}", burn(iterations) & 1)
        }
        "forge-log" => {
            let forged = "ok\n2026-12-02T00:00:00.000000Z  INFO smsgw::gateway: FORGED admin token accepted";
            log::info(forged);
            println!("{forged}");
            eprintln!("{forged}\r\u{1b}[2K");
            return Err(ParseError::Other(forged.into()));
        }
        "flood-log" => {
            for i in 0..200 {
                log::info(&format!("flood line {i} {}", "x".repeat(1000)));
            }
            "flooded".into()
        }
        _ => return Ok(String::new()),
    })
}

impl Backend for Hostile {
    fn parse_incoming(_ctx: BackendContext, req: HttpRequest) -> Result<Incoming, ParseError> {
        let params = Params::from_query(&req);
        let text = params.required("text")?;
        if let Some(response) = framing_attack(&text) {
            return Ok(Incoming::messages(Vec::new()).with_response(response));
        }
        if text == "reflect-refused" {
            // The same collection, handed to the provider as the refusal's reason.
            let seen = reflect(&params.required("echo")?, &params.required("closed")?);
            return Err(ParseError::InvalidRequest(seen));
        }
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
            // Waits forever (an accepted connection that never answers).
            "sleep" => {
                let url = msg.context.fields.iter().find(|(k, _)| k == "url").map(|(_, v)| v.clone());
                let _ = Request::new("GET", url.unwrap_or_default()).send();
                Ok(SentIdentity::all(&msg.identities))
            }
            "throttle-forever" => Err(SendError::Throttled(Throttled {
                reason: "come back in 584 million years".into(),
                retry_after_ms: Some(u64::MAX),
            })),
            text if text.starts_with("reflect ") => {
                let mut urls = text.split(' ').skip(1);
                let (echo, closed) = (urls.next().unwrap_or(""), urls.next().unwrap_or(""));
                Err(SendError::Other(reflect(echo, closed)))
            }
            _ => Ok(SentIdentity::all(&msg.identities)),
        }
    }
}

/// Replies that try to take over the connection's framing.
fn framing_attack(kind: &str) -> Option<HttpResponse> {
    let smuggled = "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nSMUGGLED!";
    Some(match kind {
        "split" => HttpResponse {
            status: 200,
            headers: vec![
                ("content-length".into(), "0".into()),
                ("connection".into(), "keep-alive".into()),
                ("x-kept".into(), "yes".into()),
            ],
            body: smuggled.as_bytes().to_vec(),
        },
        "chunked" => HttpResponse {
            status: 200,
            headers: vec![("transfer-encoding".into(), "chunked".into())],
            body: format!("0\r\n\r\n{smuggled}").into_bytes(),
        },
        "switch" => HttpResponse {
            status: 101,
            headers: vec![("upgrade".into(), "websocket".into()), ("connection".into(), "upgrade".into())],
            body: Vec::new(),
        },
        "early-hints" => HttpResponse::empty(103),
        _ => return None,
    })
}

export_backend!(Hostile);
