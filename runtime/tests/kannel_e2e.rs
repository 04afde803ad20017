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

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Gateway;
use serde_json::Value;

/// Upper bound for every wait; normally each step takes 10 ms to about 1 s.
const WAIT: Duration = Duration::from_secs(30);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(25);
/// How long a process gets to exit after SIGTERM before it is SIGKILLed.
const STOP_GRACE: Duration = Duration::from_secs(10);

const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";
const TEMPLATE: &str = include_str!("../../tests/kannel/kannel.conf.template");

/// The phone that sends the MOs and gets the replies.
const PHONE: &str = "4915550001";
/// The gateway's short code: the MOs' receiver and the MTs' sender.
const SHORTCODE: &str = "12345";
const SENDSMS_USER: &str = "smsgw";
/// Given to the gateway only as a secret; must never show up in its log.
const SENDSMS_PASSWORD: &str = "e2e-Kannel-pw-71d3c9";
const ADMIN_PASSWORD: &str = "e2e-admin";
const STATUS_PASSWORD: &str = "e2e-status";

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
    if let Err(why) = ensure_kannel_installed() {
        let bar = "!".repeat(78);
        eprintln!("\n{bar}\nSKIPPED: kannel packages not installable: {why}\n{bar}\n");
        return;
    }
    let started = Instant::now();
    let dir = WorkDir(Some(tempfile::tempdir().unwrap()));
    let sendsms_port = common::free_port();
    let gateway_config = render(
        GATEWAY_CONFIG,
        &[
            ("SENDSMS_PORT", sendsms_port.to_string()),
            ("SENDSMS_USER", SENDSMS_USER.into()),
            ("SHORTCODE", SHORTCODE.into()),
            ("SENDSMS_PASSWORD", SENDSMS_PASSWORD.into()),
        ],
    );
    // The gateway first: smsbox does not retry a failed get-url.
    let gw = Gateway::start(dir.path(), &gateway_config).await;
    let kannel = Kannel::start(dir.path(), gw.port, sendsms_port).await;
    let rig = Rig { kannel, gw };
    let ready = started.elapsed();

    // 1. Plain ASCII: MO → get-url → echo app → sendsms → MT.
    let inbound = rig.inject_mo(&format!("{PHONE} {SHORTCODE} text echo hello kannel"), 0).await;
    assert_eq!(inbound["text"], "echo hello kannel", "{inbound:#}");
    assert_eq!(inbound["identity"], PHONE, "{inbound:#}");
    let ascii_reply = rig.reply_to(&inbound).await;
    assert_eq!(ascii_reply["text"], "hello kannel", "{ascii_reply:#}");
    let mt = rig.next_mt(0).await;
    assert_eq!(
        mt,
        format!("{SHORTCODE} {PHONE} text hello kannel"),
        "the reply reaches the original sender as 7-bit text\n{}",
        rig.logs()
    );

    // 3. Kannel's delivery reports reach the kannel backend's dlr-url.
    rig.wait_delivered(&ascii_reply).await;

    // 2. Accents and emoji, UCS-2 both ways.
    let text = "echo héllo ✓ 😀";
    let line = format!("{PHONE} {SHORTCODE} ucs2 {}", percent_encode_all(&utf16be(text)));
    let inbound_ucs2 = rig.inject_mo(&line, inbound["id"].as_i64().unwrap()).await;
    let id = inbound_ucs2["id"].as_i64().unwrap();
    let (status, stored) = rig.gw.get_json(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(status, 200, "{stored:#}");
    assert_eq!(stored["text"], text, "{stored:#}\n{}", rig.logs());
    assert!(
        has_field(&stored, "coding", "2") && has_field(&stored, "charset", "UTF-16BE"),
        "Kannel delivered it as UCS-2: {stored:#}"
    );
    let ucs2_reply = rig.reply_to(&inbound_ucs2).await;
    assert_eq!(ucs2_reply["text"], "héllo ✓ 😀", "{ucs2_reply:#}");
    let mt = rig.next_mt(1).await;
    let fields: Vec<&str> = mt.splitn(4, ' ').collect();
    assert_eq!(fields.len(), 4, "MT line {mt:?}");
    assert_eq!(fields[..3], [SHORTCODE, PHONE, "ucs-2"], "MT line {mt:?}\n{}", rig.logs());
    assert_eq!(decode_utf16be(&url_decode(fields[3])), Ok("héllo ✓ 😀".to_string()), "MT payload of {mt:?}");

    // 3. again, for the UCS-2 reply.
    let ucs2_reply = rig.wait_delivered(&ucs2_reply).await;
    // Both DLRs for the first reply (type 8 "submitted" and type 1
    // "delivered", in either order) were handled long before the UCS-2 round
    // trip ended: whichever came last did not move it backwards.
    let id = ascii_reply["id"].as_i64().unwrap();
    let (_, ascii_reply) = rig.gw.get_json(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(ascii_reply["recipients"][0]["status"], "delivered", "{ascii_reply:#}\n{}", rig.logs());

    // The secret was really used (Kannel answers 403 to a wrong password, so
    // no MT would exist), and the gateway never logged it.
    let log = rig.gw.log();
    assert!(log.contains("send attempt"), "the log is the right one:\n{log}");
    assert!(!log.contains(SENDSMS_PASSWORD), "the sendsms password leaked into the gateway log:\n{log}");

    rig.print_observations(ready, started.elapsed(), &[&ascii_reply, &ucs2_reply]);
}

/// The test's temporary directory (configs, Kannel's logs and spool, the
/// gateway's data). Kept, and named on stderr, when the test fails: the panic
/// message only holds the tails of Kannel's debug logs.
struct WorkDir(Option<tempfile::TempDir>);

impl WorkDir {
    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            eprintln!("kannel e2e: logs kept in {}", dir.keep().display());
        }
    }
}

/// The gateway and Kannel together. Fields drop in order: Kannel's processes
/// are stopped before the gateway, as NOTES.md recommends.
struct Rig {
    kannel: Kannel,
    gw: Gateway,
}

impl Rig {
    /// Everything worth reading when a step times out: which hop lost the
    /// message is only visible in the logs.
    fn logs(&self) -> String {
        format!(
            "==== gateway log ({})\n{}\n{}",
            self.gw.log_path.display(),
            tail(&self.gw.log(), 80),
            self.kannel.logs()
        )
    }

    /// Polls `probe` until it yields a value, for at most [`WAIT`]; a timeout
    /// panics naming `what`, with every log.
    async fn wait_for<T>(&self, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if Instant::now() >= deadline {
                panic!("timed out after {WAIT:?} waiting for {what}\n{}", self.logs());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types one MO into fakesmsc and waits until the gateway stored it as an
    /// inbound message newer than `after` (waiting for the effect is what
    /// keeps fakesmsc from holding back the next line).
    async fn inject_mo(&self, line: &str, after: i64) -> Value {
        self.kannel.type_mo(line);
        self.wait_for(&format!("the gateway to store the MO {line:?}"), async || {
            let (_, list) = self.gw.get_json("/api/v1/messages?direction=in&backend=kannel&limit=1").await;
            let newest = list["messages"].get(0)?;
            (newest["id"].as_i64()? > after).then(|| newest.clone())
        })
        .await
    }

    /// The outbound reply the apps queued for `inbound`.
    async fn reply_to(&self, inbound: &Value) -> Value {
        let id = inbound["id"].as_i64().unwrap();
        self.wait_for(&format!("a reply to message {id}"), async || {
            let (_, list) = self.gw.get_json("/api/v1/messages?direction=out&backend=kannel&limit=100").await;
            list["messages"].as_array()?.iter().find(|m| m["in_response_to"] == id).cloned()
        })
        .await
    }

    /// The MT line number `index` (0-based) that fakesmsc printed.
    async fn next_mt(&self, index: usize) -> String {
        self.wait_for(&format!("MT number {} at fakesmsc", index + 1), async || {
            self.kannel.mt_lines().get(index).cloned()
        })
        .await
    }

    /// Waits until `reply`'s only recipient is `delivered`, i.e. the kannel
    /// backend's dlr-url was called by Kannel with DLR type 1.
    async fn wait_delivered(&self, reply: &Value) -> Value {
        let id = reply["id"].as_i64().unwrap();
        let message = self
            .wait_for(&format!("a delivery report marking message {id} delivered"), async || {
                let (_, m) = self.gw.get_json(&format!("/api/v1/messages/{id}")).await;
                (m["recipients"][0]["status"] == "delivered").then_some(m)
            })
            .await;
        let recipients = message["recipients"].as_array().unwrap();
        assert_eq!(recipients.len(), 1, "{message:#}");
        assert_eq!(recipients[0]["identity"], PHONE, "{message:#}");
        message
    }

    /// What the run showed, for the reader of `--nocapture` output.
    fn print_observations(&self, ready: Duration, total: Duration, replies: &[&Value]) {
        eprintln!("---- Kannel and gateway ready after {ready:?}; all steps done after {total:?}");
        eprintln!("---- URLs smsbox fetched (get-url, then the kannel backend's dlr-url):");
        for url in self.kannel.fetched_urls() {
            eprintln!("  {url}");
        }
        eprintln!("---- bearerbox access log (MOs, MTs from sendsms, DLRs):");
        for line in read_lossy(&self.kannel.dir.join("kannel-log/bearerbox-access.log")).lines() {
            eprintln!("  {line}");
        }
        eprintln!("---- MT lines printed by fakesmsc:");
        for line in self.kannel.mt_lines() {
            eprintln!("  <{line}>");
        }
        for reply in replies {
            eprintln!("---- reply as the API shows it: {reply}");
        }
    }
}

/// bearerbox, smsbox and fakesmsc, started from the rendered template with
/// logs and spool in `dir`, and stopped by PID when dropped.
struct Kannel {
    dir: PathBuf,
    admin_port: u16,
    fake_port: u16,
    http: reqwest::Client,
    bearerbox: Option<Proc>,
    smsbox: Option<Proc>,
    fakesmsc: Option<Proc>,
}

impl Kannel {
    /// Starts the three processes in the order NOTES.md verified, each only
    /// after `status.txt` shows the previous one ready.
    async fn start(dir: &Path, gateway_port: u16, sendsms_port: u16) -> Kannel {
        let ports = free_ports(3, &[gateway_port, sendsms_port]);
        let (admin_port, smsbox_port, fake_port) = (ports[0], ports[1], ports[2]);
        let log_dir = dir.join("kannel-log");
        let store_dir = dir.join("kannel-store");
        std::fs::create_dir_all(&log_dir).unwrap();
        std::fs::create_dir_all(&store_dir).unwrap();
        let get_url = format!(
            // %b, not %a: %a re-joins whitespace-split words, which corrupts UTF-16.
            "http://127.0.0.1:{gateway_port}/backends/kannel/?id=%p&text=%b&charset=%C&coding=%c&smsc=%i&to=%P"
        );
        let conf = render(
            TEMPLATE,
            &[
                ("ADMIN_PORT", admin_port.to_string()),
                ("ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
                ("STATUS_PASSWORD", STATUS_PASSWORD.into()),
                ("SMSBOX_PORT", smsbox_port.to_string()),
                ("FAKE_PORT", fake_port.to_string()),
                ("SENDSMS_PORT", sendsms_port.to_string()),
                ("SENDSMS_USER", SENDSMS_USER.into()),
                ("SENDSMS_PASSWORD", SENDSMS_PASSWORD.into()),
                ("GATEWAY_URL", get_url),
                ("LOG_DIR", log_dir.display().to_string()),
                ("STORE_DIR", store_dir.display().to_string()),
            ],
        );
        let conf_path = dir.join("kannel.conf");
        std::fs::write(&conf_path, conf).unwrap();

        let mut kannel = Kannel {
            dir: dir.to_path_buf(),
            admin_port,
            fake_port,
            http: reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap(),
            bearerbox: None,
            smsbox: None,
            fakesmsc: None,
        };
        kannel.bearerbox = Some(Proc::spawn(
            "bearerbox",
            Command::new(BEARERBOX).arg("-v").arg("1").arg(&conf_path),
            &dir.join("bearerbox.out"),
        ));
        kannel.wait_status("bearerbox to run", |s| s.lines().any(|l| l.starts_with("Status: running"))).await;
        kannel.smsbox = Some(Proc::spawn(
            "smsbox",
            Command::new(SMSBOX).arg("-v").arg("1").arg(&conf_path),
            &dir.join("smsbox.out"),
        ));
        // Not the sendsms port: it opens before smsbox reaches bearerbox.
        kannel
            .wait_status("smsbox to connect to bearerbox", |s| {
                s.lines().any(|l| l.starts_with(' ') && l.trim_start().starts_with("smsbox:"))
            })
            .await;
        // Interactive mode (no message arguments): one MO per stdin line. The
        // default log level is needed: MTs are printed as DEBUG lines.
        kannel.fakesmsc = Some(Proc::spawn(
            "fakesmsc",
            Command::new(FAKESMSC)
                .args(["-H", "127.0.0.1", "-r", &fake_port.to_string(), "-i", "0"])
                .stdin(Stdio::piped()),
            &dir.join("fakesmsc.out"),
        ));
        let online = format!("FAKE:{fake_port} (online");
        kannel.wait_status("fakesmsc to connect to the fake SMSC", |s| s.contains(&online)).await;
        kannel
    }

    /// bearerbox's `status.txt`, or `None` while it does not answer.
    async fn status_txt(&self) -> Option<String> {
        let url = format!("http://127.0.0.1:{}/status.txt?password={STATUS_PASSWORD}", self.admin_port);
        let response = self.http.get(url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.text().await.ok()
    }

    /// Polls `status.txt` until `ready` holds; fails at once if a process
    /// died (e.g. a port was taken), and after [`WAIT`] otherwise.
    async fn wait_status(&mut self, what: &str, ready: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self.status_txt().await;
            if status.as_deref().is_some_and(&ready) {
                return;
            }
            if let Some(died) = self.exited_process() {
                panic!("{died} while waiting for {what}\n{}", self.logs());
            }
            if Instant::now() >= deadline {
                panic!("timed out after {WAIT:?} waiting for {what}; status.txt: {status:?}\n{}", self.logs());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first of the started processes that has exited, described.
    fn exited_process(&mut self) -> Option<String> {
        [&mut self.bearerbox, &mut self.smsbox, &mut self.fakesmsc]
            .into_iter()
            .flatten()
            .find_map(|p| p.exit_status().map(|s| format!("{} exited ({s})", p.name)))
    }

    /// Writes one MO line to fakesmsc's stdin. It reads with `fgets` into 256
    /// bytes, so a longer line would be split into two MOs.
    fn type_mo(&self, line: &str) {
        assert!(line.len() < 255, "fakesmsc would split {line:?}");
        let proc = self.fakesmsc.as_ref().expect("fakesmsc runs");
        let mut stdin = proc.child.stdin.as_ref().expect("fakesmsc's stdin");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The MTs fakesmsc received so far, as `sender receiver type payload`,
    /// from its stderr lines `... DEBUG: Got message N: <LINE>`. A line still
    /// being written (no closing `>` yet) is not counted.
    fn mt_lines(&self) -> Vec<String> {
        read_lossy(&self.dir.join("fakesmsc.out"))
            .lines()
            .filter_map(|l| {
                let rest = &l[l.find("Got message ")?..];
                let start = rest.find(": <")? + 3;
                Some(rest[start..].strip_suffix('>')?.to_string())
            })
            .collect()
    }

    /// Every URL smsbox fetched, from its debug log (`Parsing URL `...'`).
    fn fetched_urls(&self) -> Vec<String> {
        read_lossy(&self.dir.join("kannel-log/smsbox.log"))
            .lines()
            .filter_map(|l| {
                let rest = &l[l.find("Parsing URL `")? + "Parsing URL `".len()..];
                Some(rest.strip_suffix("':")?.to_string())
            })
            .collect()
    }

    /// The tails of Kannel's log files, the boxes' stderr and fakesmsc's output.
    fn logs(&self) -> String {
        let files = [
            "kannel-log/bearerbox.log",
            "kannel-log/smsbox.log",
            "kannel-log/smsbox-access.log",
            "bearerbox.out",
            "smsbox.out",
            "fakesmsc.out",
        ];
        let mut out = String::new();
        for name in files {
            let path = self.dir.join(name);
            out.push_str(&format!("==== {}\n{}\n", path.display(), tail(&read_lossy(&path), 60)));
        }
        out.push_str(&format!("(fake SMSC port {})\n", self.fake_port));
        out
    }
}

impl Drop for Kannel {
    /// fakesmsc, then smsbox, then bearerbox: smsbox would keep reconnecting
    /// to a bearerbox that went first.
    fn drop(&mut self) {
        for proc in [&mut self.fakesmsc, &mut self.smsbox, &mut self.bearerbox].into_iter().flatten() {
            proc.stop();
        }
    }
}

/// A child process stopped by PID when dropped, also during a panic.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    /// Spawns `command` with stdout and stderr going to `output`.
    fn spawn(name: &'static str, command: &mut Command, output: &Path) -> Proc {
        let out = File::create(output).unwrap();
        let child = command
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child }
    }

    fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM (Kannel's clean shutdown; fakesmsc must not be stopped by
    /// closing its stdin, it then aborts with a double free), then SIGKILL if
    /// it has not exited within [`STOP_GRACE`].
    fn stop(&mut self) {
        if self.exit_status().is_some() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} (pid {pid}) still runs {STOP_GRACE:?} after SIGTERM; SIGKILL", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes sure the Kannel binaries exist, installing `kannel` and
/// `kannel-extras` when they do not (`apt-get update` only if that fails).
/// `Err` says why they are still missing.
fn ensure_kannel_installed() -> Result<(), String> {
    let present = || [BEARERBOX, SMSBOX, FAKESMSC].iter().all(|p| Path::new(p).exists());
    if present() {
        return Ok(());
    }
    let apt = |args: &[&str]| -> String {
        match Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").stdin(Stdio::null()).output()
        {
            Ok(o) if o.status.success() => String::new(),
            Ok(o) => format!(
                "apt-get {} failed ({}): {}",
                args.join(" "),
                o.status,
                tail(&String::from_utf8_lossy(&o.stderr), 5)
            ),
            Err(e) => format!("cannot run apt-get: {e}"),
        }
    };
    let install = ["install", "-y", "kannel", "kannel-extras"];
    let mut problems = apt(&install);
    if !problems.is_empty() {
        problems = format!("{problems}; {}; {}", apt(&["update"]), apt(&install));
    }
    if present() { Ok(()) } else { Err(problems) }
}

/// `n` free loopback ports, distinct from each other and from `taken`
/// ([`common::free_port`] closes its listener, so it may hand out a port twice).
fn free_ports(n: usize, taken: &[u16]) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < n {
        let port = common::free_port();
        if !taken.contains(&port) && !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// Replaces each `@NAME@` by its value (plain replacement: the get-url holds
/// `%` and `&`), and checks that no placeholder is left outside comments.
fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (name, value) in values {
        text = text.replace(&format!("@{name}@"), value);
    }
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(!line.contains('@'), "unrendered placeholder in {line:?}");
    }
    text
}

/// True when a stored message has the field `name` = `value`.
fn has_field(message: &Value, name: &str, value: &str) -> bool {
    message["fields"].as_array().is_some_and(|f| f.iter().any(|p| p[0] == name && p[1] == value))
}

/// `text` as UTF-16BE bytes, what fakesmsc's `ucs2` MO payload decodes to.
fn utf16be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Every byte as `%XX`: safe inside fakesmsc's space-separated line.
fn percent_encode_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Kannel's url-decoding of an MT payload: `+` is a space, `%XX` a byte.
fn url_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (other, _) => out.push(other),
        }
        i += 1;
    }
    out
}

/// UTF-16BE bytes as text, or the bytes in hex when they are not UTF-16BE.
fn decode_utf16be(bytes: &[u8]) -> Result<String, String> {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|pair| match pair {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(()),
        })
        .collect::<Result<_, _>>()
        .map_err(|_| format!("odd length: {}", hex::encode(bytes)))?;
    String::from_utf16(&units).map_err(|_| format!("not UTF-16: {}", hex::encode(bytes)))
}

/// A file's content, empty when it does not exist (yet).
fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
