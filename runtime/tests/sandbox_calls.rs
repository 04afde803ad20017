//! One sandbox in process, against a real loopback server: what happens to a
//! backend's HTTP exchange when its call is cut short.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smsgw::egress::EgressPolicy;
use smsgw::limits::Limits;
use smsgw::secrets::Secrets;
use smsgw::wasm::bindings::types::{MessageContext, OutgoingMessage};
use smsgw::wasm::engine::WasmEngine;
use smsgw::wasm::transport::NetworkTransport;
use smsgw::wasm::{CallError, SandboxFactory, SandboxSpec};
use tokio::io::AsyncReadExt;
use wasmtime::component::Component;

/// A provider that accepts one connection, never answers, and reports when
/// the client closed it.
async fn silent_provider() -> (u16, tokio::sync::oneshot::Receiver<Instant>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (closed, closed_at) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        // Bounded: the test fails long before this gives up.
        let deadline = tokio::time::sleep(Duration::from_secs(60));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                read = socket.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                },
                _ = &mut deadline => return,
            }
        }
        let _ = closed.send(Instant::now());
    });
    (port, closed_at)
}

#[tokio::test]
async fn a_call_cut_by_its_wall_limit_abandons_its_provider_request() {
    let (port, closed_at) = silent_provider().await;
    let factory = SandboxFactory::new(Arc::new(WasmEngine::new().unwrap())).unwrap();
    let wasm = smsgw::backend::builtin::component("kannel").unwrap();
    let component = Component::new(factory.engine().engine(), wasm).unwrap();
    let spec = SandboxSpec {
        name: "kannel".into(),
        policy: EgressPolicy::new(&[format!("http://127.0.0.1:{port}")]).unwrap(),
        secrets: Secrets::default(),
        // The call may take 300 ms; its HTTP request alone would be allowed 30 s.
        limits: Limits { wall_ms: 300, http_timeout_ms: 30_000, ..Limits::default() },
        config_json: format!(r#"{{"sendsms_url": "http://127.0.0.1:{port}/cgi-bin/sendsms"}}"#),
        base_url: "http://gw/".into(),
        reserved_slots: 0,
        rate: None,
        channel_log: None,
    };
    let sandbox = factory.build(&component, spec, Arc::new(NetworkTransport::new().unwrap())).unwrap();
    let message = OutgoingMessage {
        id: "1".into(),
        text: "hello".into(),
        identities: vec!["+255700000001".into()],
        context: MessageContext { in_response_to: None, external_id: None, fields: Vec::new() },
    };

    let output = sandbox.send(message).await;
    let returned = Instant::now();
    assert!(
        matches!(output.result, Err(CallError::WallLimit(300))),
        "expected the wall limit, got {:?}",
        output.result
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), closed_at)
        .await
        .expect("the provider request outlived its call by more than 5 s")
        .unwrap();
    assert!(closed.saturating_duration_since(returned) < Duration::from_secs(5));
}
