//! Processes and ports on this machine.

use std::time::Duration;

/// A free loopback port (the listener is closed before the port is used, so
/// a port can rarely be handed out twice: callers that race retry).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// CPU time (user + system) process `pid` has used so far, 10 ms resolution.
pub fn process_cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th,
    // in USER_HZ (100 on every architecture Linux supports).
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// Minor page faults of the calling thread so far, or `None` without
/// `/proc`: copy-on-write and first-touch faults are what a fresh instance
/// costs beyond its code, and calls run on the thread that makes them.
pub fn thread_minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name (which may contain spaces);
    // minflt is the 10th field overall.
    stat.rsplit_once(')')?.1.split_whitespace().nth(7)?.parse().ok()
}
