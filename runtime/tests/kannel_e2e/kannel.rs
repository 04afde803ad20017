//! Kannel's three processes on loopback, started from the config template and
//! stopped by PID, and the Debian packages they come from.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common;
use super::{SENDSMS_PASSWORD, SENDSMS_USER};

/// Upper bound for every wait; normally each step takes 10 ms to about 1 s.
pub const WAIT: Duration = Duration::from_secs(30);
/// How often a condition is polled.
pub const POLL: Duration = Duration::from_millis(25);
/// How long a process gets to exit after SIGTERM before it is SIGKILLed.
const STOP_GRACE: Duration = Duration::from_secs(10);

const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";
const TEMPLATE: &str = include_str!("../../../tests/kannel/kannel.conf.template");
const ADMIN_PASSWORD: &str = "e2e-admin";
const STATUS_PASSWORD: &str = "e2e-status";

/// bearerbox, smsbox and fakesmsc, started from the rendered template with
/// logs and spool in `dir`, and stopped by PID when dropped.
pub struct Kannel {
    pub dir: PathBuf,
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
    pub async fn start(dir: &Path, gateway_port: u16, sendsms_port: u16) -> Kannel {
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
    pub fn type_mo(&self, line: &str) {
        assert!(line.len() < 255, "fakesmsc would split {line:?}");
        let proc = self.fakesmsc.as_ref().expect("fakesmsc runs");
        let mut stdin = proc.child.stdin.as_ref().expect("fakesmsc's stdin");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The MTs fakesmsc received so far, as `sender receiver type payload`,
    /// from its stderr lines `... DEBUG: Got message N: <LINE>`. A line still
    /// being written (no closing `>` yet) is not counted.
    pub fn mt_lines(&self) -> Vec<String> {
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
    pub fn fetched_urls(&self) -> Vec<String> {
        read_lossy(&self.dir.join("kannel-log/smsbox.log"))
            .lines()
            .filter_map(|l| {
                let rest = &l[l.find("Parsing URL `")? + "Parsing URL `".len()..];
                Some(rest.strip_suffix("':")?.to_string())
            })
            .collect()
    }

    /// The tails of Kannel's log files, the boxes' stderr and fakesmsc's output.
    pub fn logs(&self) -> String {
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
pub fn ensure_installed() -> Result<(), String> {
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
pub fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (name, value) in values {
        text = text.replace(&format!("@{name}@"), value);
    }
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(!line.contains('@'), "unrendered placeholder in {line:?}");
    }
    text
}

/// A file's content, empty when it does not exist (yet).
pub fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
