//! End to end through a real Kannel 1.4.5 on loopback: the real `fakesmsc`
//! client (kannel-extras) plays the phone network against bearerbox's fake
//! SMSC, smsbox calls the real gateway binary at `/backends/kannel/`, the echo
//! app replies, and the `builtin:kannel` component sends the reply back through
//! smsbox's sendsms, asking for delivery reports on its own `status/` route.
//!
//! How Kannel behaves here (start order, readiness, fakesmsc's line format and
//! pitfalls) is written down in `tests/kannel/NOTES.md`; the config is
//! `tests/kannel/kannel.conf.template`.
//!
//! Needs the Debian packages `kannel` and `kannel-extras`. They are installed
//! when missing; only when that fails is the test skipped, loudly.

#[path = "../common/mod.rs"]
mod common;
mod kannel;
mod rig;
mod text;

use std::time::Instant;

use serde_json::Value;

use common::Gateway;
use kannel::Kannel;
use rig::{Rig, WorkDir};
use text::{decode_utf16be, has_field, percent_encode_all, url_decode, utf16be};

/// The phone that sends the MOs and gets the replies.
const PHONE: &str = "4915550001";
/// The gateway's short code: the MOs' receiver and the MTs' sender.
const SHORTCODE: &str = "12345";
const SENDSMS_USER: &str = "smsgw";
/// Given to the gateway only as a secret; must never show up in its log.
const SENDSMS_PASSWORD: &str = "e2e-Kannel-pw-71d3c9";

/// The gateway's configuration: the kannel backend sending through smsbox,
/// the sendsms password only as a secret reference, delivery reports on.
const GATEWAY_CONFIG: &str = r#"
[outbound]
retry_base_ms = 200
retry_max_ms = 1000

[[backends]]
name = "kannel"
component = "builtin:kannel"
allowed_hosts = ["http://127.0.0.1:@SENDSMS_PORT@"]
[backends.config]
sendsms_url = "http://127.0.0.1:@SENDSMS_PORT@/cgi-bin/sendsms"
sendsms_params = { username = "@SENDSMS_USER@", password = "{{secret:kannel_password}}", from = "@SHORTCODE@" }
delivery_report_url = true
[backends.secrets]
kannel_password = "@SENDSMS_PASSWORD@"
"#;

#[tokio::test]
async fn kannel_round_trip_ascii_ucs2_and_delivery_reports() {
    if let Err(why) = kannel::ensure_installed() {
        let bar = "!".repeat(78);
        eprintln!("\n{bar}\nSKIPPED: kannel packages not installable: {why}\n{bar}\n");
        return;
    }
    let started = Instant::now();
    let dir = WorkDir::new();
    let rig = start_gateway_then_kannel(&dir).await;
    let ready = started.elapsed();

    let (inbound, ascii_reply) = ascii_round_trip(&rig).await;
    rig.wait_delivered(&ascii_reply).await;
    let ucs2_reply = ucs2_round_trip(&rig, &inbound).await;
    let ucs2_reply = rig.wait_delivered(&ucs2_reply).await;
    late_reports_never_move_a_recipient_backwards(&rig, &ascii_reply).await;
    the_secret_was_used_and_never_logged(&rig);

    rig.print_observations(ready, started.elapsed(), &[&ascii_reply, &ucs2_reply]);
}

/// The gateway first: smsbox does not retry a failed get-url.
async fn start_gateway_then_kannel(dir: &WorkDir) -> Rig {
    let sendsms_port = common::free_port();
    let gateway_config = kannel::render(
        GATEWAY_CONFIG,
        &[
            ("SENDSMS_PORT", sendsms_port.to_string()),
            ("SENDSMS_USER", SENDSMS_USER.into()),
            ("SHORTCODE", SHORTCODE.into()),
            ("SENDSMS_PASSWORD", SENDSMS_PASSWORD.into()),
        ],
    );
    let gw = Gateway::start(dir.path(), &gateway_config).await;
    let kannel = Kannel::start(dir.path(), gw.port, sendsms_port).await;
    Rig { kannel, gw }
}

/// Plain ASCII: MO → get-url → echo app → sendsms → MT as 7-bit text.
async fn ascii_round_trip(rig: &Rig) -> (Value, Value) {
    let inbound = rig.inject_mo(&format!("{PHONE} {SHORTCODE} text echo hello kannel"), 0).await;
    assert_eq!(inbound["text"], "echo hello kannel", "{inbound:#}");
    assert_eq!(inbound["identity"], PHONE, "{inbound:#}");
    let reply = rig.reply_to(&inbound).await;
    assert_eq!(reply["text"], "hello kannel", "{reply:#}");
    let mt = rig.next_mt(0).await;
    assert_eq!(
        mt,
        format!("{SHORTCODE} {PHONE} text hello kannel"),
        "the reply reaches the original sender as 7-bit text\n{}",
        rig.logs()
    );
    (inbound, reply)
}

/// Accents and emoji, UCS-2 both ways.
async fn ucs2_round_trip(rig: &Rig, previous: &Value) -> Value {
    let text = "echo héllo ✓ 😀";
    let line = format!("{PHONE} {SHORTCODE} ucs2 {}", percent_encode_all(&utf16be(text)));
    let inbound = rig.inject_mo(&line, previous["id"].as_i64().unwrap()).await;
    let id = inbound["id"].as_i64().unwrap();
    let (status, stored) = rig.gw.get_json(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(status, 200, "{stored:#}");
    assert_eq!(stored["text"], text, "{stored:#}\n{}", rig.logs());
    assert!(
        has_field(&stored, "coding", "2") && has_field(&stored, "charset", "UTF-16BE"),
        "Kannel delivered it as UCS-2: {stored:#}"
    );
    let reply = rig.reply_to(&inbound).await;
    assert_eq!(reply["text"], "héllo ✓ 😀", "{reply:#}");
    let mt = rig.next_mt(1).await;
    let fields: Vec<&str> = mt.splitn(4, ' ').collect();
    assert_eq!(fields.len(), 4, "MT line {mt:?}");
    assert_eq!(fields[..3], [SHORTCODE, PHONE, "ucs-2"], "MT line {mt:?}\n{}", rig.logs());
    assert_eq!(decode_utf16be(&url_decode(fields[3])), Ok("héllo ✓ 😀".to_string()), "MT payload of {mt:?}");
    reply
}

/// Both DLRs for the first reply (type 8 "submitted" and type 1 "delivered",
/// in either order) were handled long before the UCS-2 round trip ended:
/// whichever came last did not move it backwards.
async fn late_reports_never_move_a_recipient_backwards(rig: &Rig, reply: &Value) {
    let id = reply["id"].as_i64().unwrap();
    let (_, reply) = rig.gw.get_json(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(reply["recipients"][0]["status"], "delivered", "{reply:#}\n{}", rig.logs());
}

/// Kannel answers 403 to a wrong password, so an MT proves the secret was
/// filled in; the gateway's log never shows it.
fn the_secret_was_used_and_never_logged(rig: &Rig) {
    let log = rig.gw.log();
    assert!(log.contains("send attempt"), "the log is the right one:\n{log}");
    assert!(!log.contains(SENDSMS_PASSWORD), "the sendsms password leaked into the gateway log:\n{log}");
}
