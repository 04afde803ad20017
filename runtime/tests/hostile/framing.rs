//! Response framing: a component's reply may not set the headers that frame
//! the connection, nor switch protocols. The attack pipelines a request whose
//! reply claims `content-length: 0` (or chunked encoding) with a body that is
//! itself an HTTP response, then a second request: the second answer must be
//! the gateway's own.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::{Gateway, test_guest};
use super::serial;

/// Sends two pipelined requests on one connection; returns both responses as
/// (status line, headers, body).
async fn pipelined(gw: &Gateway, first: &str) -> Vec<(String, String, String)> {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
    let requests = format!(
        "GET {first} HTTP/1.1\r\nhost: gw\r\n\r\nGET /healthz HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n"
    );
    socket.write_all(requests.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut raw))
        .await
        .expect("the gateway closes the connection after the second answer")
        .unwrap();
    let mut rest = String::from_utf8_lossy(&raw).into_owned();
    let mut responses = Vec::new();
    while let Some(end) = rest.find("\r\n\r\n") {
        let head = rest[..end].to_string();
        let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
        let length = headers
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(rest.len() - end - 4);
        let body = rest[end + 4..end + 4 + length].to_string();
        responses.push((status.to_string(), headers.to_ascii_lowercase(), body));
        rest = rest[end + 4 + length..].to_string();
    }
    responses
}

#[tokio::test]
async fn a_reply_cannot_frame_the_connection_or_switch_protocols() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[[backends]]\nname = \"evil\"\ncomponent = \"{}\"\n", test_guest("hostile").display());
    let gw = Gateway::start(dir.path(), &config).await;

    for kind in ["split", "chunked"] {
        let responses = pipelined(&gw, &format!("/backends/evil/?identity=x&text={kind}")).await;
        assert_eq!(responses.len(), 2, "{kind}: exactly two answers: {responses:?}");
        let (status, headers, body) = &responses[0];
        assert!(status.ends_with("200 OK"), "{kind}: {status}");
        assert!(body.contains("SMUGGLED!"), "{kind}: the guest's bytes stay inside its own body: {body:?}");
        assert!(
            !headers.contains("transfer-encoding") && !headers.contains("content-length: 0\r"),
            "{kind}: {headers}"
        );
        let (status, _, body) = &responses[1];
        assert!(
            status.ends_with("200 OK") && body == "ok",
            "{kind}: the second answer is the gateway's: {responses:?}"
        );
    }
    let (status, _) = gw.inbound_get("/backends/evil/?identity=x&text=split").await;
    assert_eq!(status, 200);

    for kind in ["switch", "early-hints"] {
        let (status, body) = gw.inbound_get(&format!("/backends/evil/?identity=x&text={kind}")).await;
        assert_eq!(status, 500, "{kind}: {body}");
    }
    assert!(gw.log().contains("not allowed (200-599)"), "the refusal is logged with its reason");
}
