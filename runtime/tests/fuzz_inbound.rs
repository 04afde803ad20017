//! Property test of the inbound path: arbitrary provider requests into every
//! built-in component, in the real sandbox. A component may refuse a request,
//! but it must never trap, time out or return something the host would reject.

use std::sync::Arc;

use proptest::prelude::*;
use smsgw::authoring::fixtures::mock::MockTransport;
use smsgw::egress::EgressPolicy;
use smsgw::limits::Limits;
use smsgw::secrets::Secrets;
use smsgw::wasm::bindings::types::HttpRequest;
use smsgw::wasm::engine::WasmEngine;
use smsgw::wasm::{Sandbox, SandboxFactory, SandboxSpec};
use wasmtime::component::Component;

/// One sandbox per built-in backend, with a config that enables every feature.
fn sandboxes() -> Vec<(String, Sandbox)> {
    let factory = SandboxFactory::new(Arc::new(WasmEngine::new().unwrap())).unwrap();
    smsgw::backend::builtin::names()
        .map(|name| {
            let wasm = smsgw::backend::builtin::component(name).unwrap();
            let component = Component::new(factory.engine().engine(), wasm).unwrap();
            let config = r#"{"auth_token": "0123456789abcdef", "account_sid": "AC1", "from": "+1",
                "sendsms_url": "http://127.0.0.1:1/send", "delivery_report_url": true}"#;
            let spec = SandboxSpec {
                name: name.to_string(),
                policy: EgressPolicy::default(),
                secrets: Secrets::default(),
                limits: Limits::default(),
                config_json: config.into(),
                base_url: "http://gw/".into(),
                reserved_slots: 0,
                rate: None,
                channel_log: None,
            };
            let sandbox = factory.build(&component, spec, Arc::new(MockTransport::new(Vec::new()))).unwrap();
            (name.to_string(), sandbox)
        })
        .collect()
}

fn request() -> impl Strategy<Value = HttpRequest> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        Just("DELETE".to_string()),
        "[A-Z]{1,8}"
    ];
    let path = prop_oneof![Just("/".to_string()), Just("/status/".to_string()), "/[a-z/%0-9]{0,20}"];
    let query = prop_oneof![
        "[a-zA-Z_=&%0-9+]{0,80}",
        "(id|text|charset|coding|status|message_id|identity|From|Body)=[%0-9A-Fa-f+a-z]{0,40}(&(id|text|charset|coding|status|message_id|identity)=[%0-9A-Fa-f+]{0,40}){0,5}",
    ];
    let content_type = prop_oneof![
        Just("application/json".to_string()),
        Just("application/x-www-form-urlencoded".to_string()),
        "[a-z/;=-]{0,30}"
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "\\{\"(message_id|to_addr|from_addr|transport_name|transport_type|content|event_type)\": (\"[^\"]{0,20}\"|null|1|\\[\\]|\\{\\})\\}".prop_map(String::into_bytes),
        "(From|Body|MessageSid|MessageStatus|To)=[a-zA-Z0-9%+]{0,30}(&(From|Body|MessageSid|MessageStatus)=[a-zA-Z0-9%+]{0,30}){0,4}".prop_map(String::into_bytes),
    ];
    (method, path, query, content_type, body, proptest::option::of("[A-Za-z0-9+/=]{0,40}")).prop_map(
        |(method, path, query, content_type, body, signature)| {
            let mut headers = vec![("content-type".to_string(), content_type)];
            if let Some(sig) = signature {
                headers.push(("x-twilio-signature".to_string(), sig));
            }
            HttpRequest { url: format!("http://gw/backends/x{path}?{query}"), method, path, query, headers, body }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn components_never_trap_on_arbitrary_requests(req in request()) {
        thread_local! {
            static STATE: (tokio::runtime::Runtime, Vec<(String, Sandbox)>) =
                (tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(), sandboxes());
        }
        STATE.with(|(runtime, sandboxes)| {
            for (name, sandbox) in sandboxes {
                let out = runtime.block_on(sandbox.parse_incoming(&req));
                prop_assert!(out.result.is_ok(), "{name} failed on {req:?}: {:?}", out.result.err());
                if let Ok(Ok(incoming)) = &out.result {
                    for m in &incoming.messages {
                        prop_assert!(!m.identity.trim().is_empty(), "{name} returned an empty identity for {req:?}");
                    }
                }
            }
            Ok(())
        })?;
    }
}
