//! Providers failing for longer than a retry budget of seconds would survive:
//! 500s, 429 with Retry-After, connections reset, requests never answered.
//! When the provider comes back, every message ends `sent`; throttled answers
//! never count as attempts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::Gateway;
use super::{enqueue, http_backend, serial, wait_all_sent};

/// How a provider fails until it recovers.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Status500,
    Throttle429,
    Reset,
    Hang,
}

/// A provider on loopback that fails with `fault` until `until`, then accepts.
struct FaultyProvider {
    port: u16,
    accepted: Arc<Mutex<Vec<String>>>,
}

impl FaultyProvider {
    async fn start(fault: Fault, until: Instant) -> FaultyProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let record = accepted.clone();
        tokio::spawn(async move {
            let stop = until + Duration::from_secs(120);
            while Instant::now() < stop {
                let Ok((mut socket, _)) = listener.accept().await else { continue };
                let record = record.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let answer = if Instant::now() < until {
                        match fault {
                            Fault::Status500 => {
                                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops"
                            }
                            Fault::Throttle429 => {
                                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-length: 4\r\nconnection: close\r\n\r\nslow"
                            }
                            Fault::Reset => {
                                // A zero linger resets at once instead of blocking: the fault itself.
                                #[allow(deprecated)]
                                let _ = socket.set_linger(Some(Duration::ZERO));
                                return;
                            }
                            Fault::Hang => {
                                tokio::time::sleep_until(until.into()).await;
                                return;
                            }
                        }
                    } else {
                        let id = head.split_once("id=").map(|(_, rest)| rest.split(['&', ' ']).next().unwrap_or(""));
                        record.lock().unwrap().push(id.unwrap_or("").to_string());
                        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    };
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        FaultyProvider { port, accepted }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_sent_after_an_outage_longer_than_seconds() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    // Longer than the 7.5-15 s an attempt-counted budget used to allow.
    let outage = Duration::from_secs(16);
    let until = Instant::now() + outage;
    let faults = [Fault::Status500, Fault::Throttle429, Fault::Reset, Fault::Hang];
    let mut providers = Vec::new();
    let mut config = String::from("[apps]\norder = []\n[outbound]\nretry_base_ms = 200\nretry_max_ms = 1000\n");
    for (i, fault) in faults.iter().enumerate() {
        let provider = FaultyProvider::start(*fault, until).await;
        config +=
            &http_backend(&format!("f{i}"), &format!("http://127.0.0.1:{}", provider.port), "http_timeout_ms = 1000");
        providers.push(provider);
    }
    let gw = Gateway::start(dir.path(), &config).await;
    let mut ids = Vec::new();
    for i in 0..faults.len() {
        ids.push(enqueue(&gw, &format!("f{i}"), 5).await);
    }
    for (i, fault) in faults.iter().enumerate() {
        wait_all_sent(&gw, &ids[i], outage + Duration::from_secs(30)).await;
        let accepted = providers[i].accepted.lock().unwrap().len();
        let (_, m) = gw.get_json(&format!("/api/v1/messages/{}", ids[i][0])).await;
        println!("| {fault:?} for {outage:?} | all 5 sent | {accepted} accepted | attempts {} |", m["attempts"]);
        if matches!(fault, Fault::Throttle429) {
            assert_eq!(m["attempts"], 1, "throttled answers counted as attempts: {m}");
        }
    }
}
