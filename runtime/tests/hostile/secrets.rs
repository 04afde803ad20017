//! Secret reflection: the component asks for every error the host can give
//! about a request carrying `{{secret:pw}}`, and for providers echoing it back;
//! no form of the secret may reach the guest, its stored messages, its errors,
//! the provider-facing reply, the admin dry run or the gateway's log.

use std::time::Duration;

use serde_json::json;

use super::common::{Gateway, MockProvider, Received, free_port, test_guest};
use super::{TOKEN, serial, with_admin};

/// The secret: characters that every escaping (URL, form, JSON) changes.
pub const SECRET: &str = "Zq9+/\"&w sECRET%";
/// [`SECRET`] as a TOML basic string's content.
pub const SECRET_TOML: &str = "Zq9+/\\\"&w sECRET%";

/// Every form in which the host writes the secret into a request.
fn forms() -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let form: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    let percent = percent_encoding::utf8_percent_encode(SECRET, percent_encoding::NON_ALPHANUMERIC).to_string();
    let json = serde_json::to_string(SECRET).unwrap();
    vec![
        SECRET.to_string(),
        form,
        percent,
        json[1..json.len() - 1].to_string(),
        b64.encode(SECRET),
        b64.encode(format!("user:{SECRET}")),
    ]
}

/// Panics when `text` holds the secret in any form.
pub fn assert_no_leak(text: &str, what: &str) {
    for form in forms() {
        assert!(!text.contains(&form), "{what}: the secret leaked as {form:?} in:\n{text}");
    }
}

/// True when the provider got the filled-in secret (so it was really used).
pub fn carries_secret(r: &Received) -> bool {
    let body = String::from_utf8_lossy(&r.body);
    forms().iter().any(|f| body.contains(f.as_str()) || r.query.iter().any(|(_, v)| v == SECRET))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_error_path_or_echo_hands_a_secret_to_the_guest() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let echo = MockProvider::echo().await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    let config = format!(
        r#"
[apps]
order = []
[outbound]
retry_base_ms = 60000
[[backends]]
name = "evil"
component = "{evil}"
allowed_hosts = ["{echo}", "{closed}"]
[backends.secrets]
pw = "{SECRET_TOML}"
"#,
        evil = test_guest("hostile").display(),
        echo = echo.origin(),
    );
    let gw = Gateway::start_with(with_admin(), dir.path(), &config).await;
    let query = format!("identity=x&echo={}&closed={closed}", echo.origin());

    // Inbound: what the guest saw, stored as the message text.
    let (status, _) = gw.inbound_get(&format!("/backends/evil/?text=reflect&{query}")).await;
    assert_eq!(status, 200);
    let seen = super::last_evil_text(&gw).await;
    assert_no_leak(&seen, "what the guest saw");
    assert!(seen.matches("[redacted]").count() >= 5, "the echoes came back redacted: {seen}");
    assert!(seen.contains("Connection refused") || seen.contains("connect"), "{seen}");
    assert!(seen.contains("is not allowed"), "TRACE is refused: {seen}");
    assert!(echo.received().iter().any(carries_secret), "the provider got the real secret");

    // The same collection as the reason of a refusal, which the provider reads.
    let (status, body) = gw.inbound_get(&format!("/backends/evil/?text=reflect-refused&{query}")).await;
    assert_eq!(status, 400);
    assert_no_leak(&body, "the provider-facing reply");

    // Outbound: the guest's error becomes the message's last_error.
    let text = format!("reflect {} {closed}", echo.origin());
    let (status, created) =
        gw.post_json("/api/v1/messages", &json!({"backend": "evil", "to": ["1"], "text": text})).await;
    assert_eq!(status, 202);
    let id = created["id"].as_i64().unwrap();
    let m = gw.wait_message(id, Duration::from_secs(20), |m| m["attempts"].as_i64() >= Some(1)).await;
    assert_no_leak(&m.to_string(), "the stored message");
    assert!(m["last_error"].as_str().unwrap_or("").contains("[redacted]"), "{m}");

    // The admin dry run shows the requests as the guest wrote them.
    let tried = gw
        .http
        .post(gw.url("/api/v1/admin/backends/evil/try"))
        .bearer_auth(TOKEN)
        .json(&json!({"message": {"text": text, "identities": ["1"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(tried.status(), 200);
    let tried = tried.text().await.unwrap();
    assert_no_leak(&tried, "the dry run");
    assert!(tried.contains("{{secret:pw}}"), "the dry run shows the reference: {tried}");

    assert_no_leak(&gw.log(), "the gateway log");
}
