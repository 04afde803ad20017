//! Attacks through the admin API: a component that takes minutes to compile,
//! and fixtures that take long to run. Neither may outlive its deadline, leave
//! native code behind, or hold up other changes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{Gateway, test_guest};
use super::{TOKEN, neighbour, serial, with_admin};

fn leb(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, payload: &[u8]) -> Vec<u8> {
    [vec![id], leb(payload.len()), payload.to_vec()].concat()
}

/// A valid component whose one core module has `functions` functions of
/// `adds` additions each: seconds of Cranelift for a megabyte of input.
fn compile_bomb(functions: usize, adds: usize) -> Vec<u8> {
    let mut body = vec![0x00, 0x20, 0x00]; // no locals; local.get 0
    for _ in 0..adds {
        body.extend([0x41, 0x01, 0x6a]); // i32.const 1; i32.add
    }
    body.push(0x0b);
    let mut code = leb(functions);
    for _ in 0..functions {
        code.extend(leb(body.len()));
        code.extend(&body);
    }
    let mut funcs = leb(functions);
    funcs.extend(std::iter::repeat_n(0u8, functions));
    let module = [
        b"\0asm\x01\0\0\0".to_vec(),
        section(1, &[0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f]),
        section(3, &funcs),
        section(10, &code),
    ]
    .concat();
    [b"\0asm\x0d\0\x01\0".to_vec(), section(1, &module)].concat()
}

async fn upload(gw: &Gateway, name: &str, wasm: Vec<u8>, fixtures: Option<&Value>) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new().part("component", reqwest::multipart::Part::bytes(wasm));
    if let Some(f) = fixtures {
        form = form.text("fixtures", f.to_string());
    }
    let url = gw.url(&format!("/api/v1/admin/backends/{name}"));
    let r = gw.http.put(url).bearer_auth(TOKEN).multipart(form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Processes whose parent is `pid` and whose command line mentions `what`.
fn children(pid: u32, what: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(pid) && cmdline.contains(what) {
            found.push(child);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compile_bomb_is_killed_at_its_deadline_and_leaves_nothing() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let config =
        "compile_timeout_ms = 300\n[apps]\norder = []\n[[backends]]\nname = \"good\"\ncomponent = \"builtin:http\"\n";
    let gw = Gateway::start_with(with_admin(), dir.path(), config).await;
    let baseline = super::baseline(&gw).await;
    let bomb = compile_bomb(300, 2000);
    let mut answer = (0, Value::Null);
    let mut took = Duration::ZERO;
    let during = neighbour(&gw, async {
        let started = Instant::now();
        answer = upload(&gw, "bomb", bomb.clone(), None).await;
        took = started.elapsed();
    })
    .await;
    let (status, body) = answer;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("did not compile within 300 ms"), "{body}");
    assert!(took < Duration::from_secs(3), "the refusal took {took:?}");

    // The compiler child is gone, and with it the CPU it was burning.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !children(gw.pid(), "compile-component").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(children(gw.pid(), "compile-component").is_empty(), "the compiler child outlived its deadline");
    let cpu_before = gw.cpu_time();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let burnt = gw.cpu_time().saturating_sub(cpu_before);
    assert!(burnt < Duration::from_millis(300), "the gateway kept burning CPU after the refusal: {burnt:?} in 1 s");

    // Nothing refused reached the native-code cache.
    let cached: Vec<_> = std::fs::read_dir(gw.data_dir.join("compiled")).unwrap().flatten().collect();
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&bomb))
    };
    assert!(
        !cached.iter().any(|e| e.file_name().to_string_lossy().starts_with(&sha)),
        "a refused component's native code was cached"
    );
    // A component that passes the import checks is also refused when it does not export the adapter...
    let (status, body) = upload(&gw, "bomb", compile_bomb(1, 1), None).await;
    assert_eq!(status, 422, "{body}");
    // ...and leaves no native code behind either.
    let after: Vec<_> = std::fs::read_dir(gw.data_dir.join("compiled")).unwrap().flatten().collect();
    assert_eq!(after.len(), cached.len(), "a refused component's native code was cached");

    println!("| compile bomb, 300 ms deadline | refused after {took:?} | good ratio {:.2} |", during.rate() / baseline);
    assert_eq!(during.failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_fixtures_do_not_hold_up_other_changes() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(with_admin(), dir.path(), "[apps]\norder = []\n").await;
    let hostile = std::fs::read(test_guest("hostile")).unwrap();
    let (status, body) = upload(&gw, "victim", hostile.clone(), None).await;
    assert_eq!(status, 200, "{body}");

    // Each case spins until its 1000 ms CPU limit: seconds of fixtures.
    let case = json!({"name": "spins", "request": {"query": "identity=x&text=loop"}, "expect": {"status": 200}});
    let slow = json!({"incoming": vec![case.clone(); 5]});
    let uploading = {
        let (http, url) = (gw.http.clone(), gw.url("/api/v1/admin/backends/slowfix"));
        let form = reqwest::multipart::Form::new()
            .part("component", reqwest::multipart::Part::bytes(hostile.clone()))
            .text("fixtures", slow.to_string());
        tokio::spawn(async move { http.put(url).bearer_auth(TOKEN).multipart(form).send().await.unwrap().status() })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let deleted =
        gw.http.delete(gw.url("/api/v1/admin/backends/victim")).bearer_auth(TOKEN).send().await.unwrap().status();
    let took = started.elapsed();
    assert_eq!(deleted, 200);
    println!("| delete beside an upload with 5 spinning fixture cases | {took:?} |");
    assert!(took < Duration::from_millis(1500), "the delete waited {took:?} for the upload's fixtures");
    assert_eq!(uploading.await.unwrap(), 422, "the spinning fixtures fail");

    // The number of cases is bounded.
    let many = json!({"incoming": vec![case; 501]});
    let (status, body) = upload(&gw, "many", hostile, Some(&many)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("at most 500"), "{body}");
}
