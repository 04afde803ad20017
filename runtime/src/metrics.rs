//! Prometheus metrics, served at `GET /metrics` in the text exposition format.
//! Labels are backend names and small fixed sets of words, never message ids,
//! so the number of series stays bounded by the number of backends.
//!
//! Metrics are process-wide (one registry, like a process's own counters), so
//! every part records where the event happens without threading a handle
//! through; the gauges that describe state (queue depth, breakers, versions)
//! are set when a scrape asks.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Backend {
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendStatus {
    backend: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendOutcome {
    backend: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendCall {
    backend: String,
    call: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendKind {
    backend: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

/// Histograms of durations from 100 µs to about 100 s.
#[derive(Clone)]
struct Seconds;

impl MetricConstructor<Histogram> for Seconds {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.0001, 2.5, 16))
    }
}

/// One backend's most frequent metrics, looked up once (when its sandbox is
/// built) rather than by label on every call.
#[derive(Clone)]
pub struct BackendMetrics {
    backend: String,
    parse_wall: Histogram,
    parse_cpu: Histogram,
    send_wall: Histogram,
    send_cpu: Histogram,
    inbound_ok: Counter,
}

impl BackendMetrics {
    /// One sandboxed call (`parse-incoming` or `send`): wall and running time.
    pub fn call(&self, call: &str, wall: Duration, cpu: Duration) {
        let (w, c) =
            if call == "send" { (&self.send_wall, &self.send_cpu) } else { (&self.parse_wall, &self.parse_cpu) };
        w.observe(wall.as_secs_f64());
        c.observe(cpu.as_secs_f64());
    }

    /// One provider request answered with `status`.
    pub fn inbound_request(&self, status: u16) {
        if status == 200 {
            self.inbound_ok.inc();
        } else {
            metrics().inbound_request(&self.backend, status);
        }
    }
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    inbound_requests: Family<BackendStatus, Counter>,
    inbound_messages: Family<Backend, Counter>,
    inbound_reports: Family<Backend, Counter>,
    inbound_duplicates: Family<Backend, Counter>,
    send_attempts: Family<BackendOutcome, Counter>,
    provider_request_seconds: Family<Backend, Histogram, Seconds>,
    call_seconds: Family<BackendCall, Histogram, Seconds>,
    guest_cpu_seconds: Family<BackendCall, Histogram, Seconds>,
    call_failures: Family<BackendKind, Counter>,
    egress_denials: Family<Backend, Counter>,
    breaker_open: Family<Backend, Gauge>,
    backend_version: Family<Backend, Gauge>,
    queue_messages: Family<Status, Gauge>,
    queue_oldest_seconds: Family<Status, Gauge>,
    uptime_seconds: Gauge,
    store_commit_seconds: Histogram,
    open_connections: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

fn b(backend: &str) -> Backend {
    Backend { backend: backend.to_string() }
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("smsgw");
        let m = Metrics {
            registry: Registry::default(),
            started: Instant::now(),
            inbound_requests: Family::default(),
            inbound_messages: Family::default(),
            inbound_reports: Family::default(),
            inbound_duplicates: Family::default(),
            send_attempts: Family::default(),
            provider_request_seconds: Family::new_with_constructor(Seconds),
            call_seconds: Family::new_with_constructor(Seconds),
            guest_cpu_seconds: Family::new_with_constructor(Seconds),
            call_failures: Family::default(),
            egress_denials: Family::default(),
            breaker_open: Family::default(),
            backend_version: Family::default(),
            queue_messages: Family::default(),
            queue_oldest_seconds: Family::default(),
            uptime_seconds: Gauge::default(),
            store_commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.5, 16)),
            open_connections: Gauge::default(),
        };
        let r = &mut registry;
        r.register("inbound_requests", "Provider requests answered, by HTTP status", m.inbound_requests.clone());
        r.register("inbound_messages", "Inbound messages stored", m.inbound_messages.clone());
        r.register("inbound_reports", "Delivery reports received", m.inbound_reports.clone());
        r.register(
            "inbound_duplicates",
            "Repeated provider callbacks acknowledged, not stored",
            m.inbound_duplicates.clone(),
        );
        r.register("send_attempts", "Send attempts by outcome", m.send_attempts.clone());
        r.register("provider_request_seconds", "Provider HTTP exchanges", m.provider_request_seconds.clone());
        r.register("call_seconds", "Sandboxed calls, wall time", m.call_seconds.clone());
        r.register("guest_cpu_seconds", "Sandboxed calls, time spent running", m.guest_cpu_seconds.clone());
        r.register("call_failures", "Calls that trapped, timed out or hit a limit, by kind", m.call_failures.clone());
        r.register("egress_denials", "Provider requests the egress policy refused", m.egress_denials.clone());
        r.register("breaker_open", "1 while the circuit breaker pauses the backend", m.breaker_open.clone());
        r.register(
            "backend_version",
            "Active uploaded version (0: from the configuration file)",
            m.backend_version.clone(),
        );
        r.register("queue_messages", "Messages waiting, by status", m.queue_messages.clone());
        r.register(
            "queue_oldest_seconds",
            "Age of the oldest message waiting, by status",
            m.queue_oldest_seconds.clone(),
        );
        r.register("uptime_seconds", "Seconds since the gateway started", m.uptime_seconds.clone());
        r.register("store_commit_seconds", "Store transactions (group commits)", m.store_commit_seconds.clone());
        r.register("open_connections", "HTTP connections open", m.open_connections.clone());
        Metrics { registry, ..m }
    }

    /// The handles of `backend`'s most frequent metrics.
    pub fn for_backend(&self, backend: &str) -> BackendMetrics {
        let call = |family: &Family<BackendCall, Histogram, Seconds>, call: &str| {
            family.get_or_create(&BackendCall { backend: backend.to_string(), call: call.to_string() }).clone()
        };
        let ok = BackendStatus { backend: backend.to_string(), status: "200".into() };
        BackendMetrics {
            backend: backend.to_string(),
            parse_wall: call(&self.call_seconds, "parse-incoming"),
            parse_cpu: call(&self.guest_cpu_seconds, "parse-incoming"),
            send_wall: call(&self.call_seconds, "send"),
            send_cpu: call(&self.guest_cpu_seconds, "send"),
            inbound_ok: self.inbound_requests.get_or_create(&ok).clone(),
        }
    }

    /// One provider request answered with `status`.
    pub fn inbound_request(&self, backend: &str, status: u16) {
        let labels = BackendStatus { backend: backend.to_string(), status: status.to_string() };
        self.inbound_requests.get_or_create(&labels).inc();
    }

    /// What one provider request stored.
    pub fn inbound_stored(&self, backend: &str, messages: usize, reports: usize, duplicates: usize) {
        self.inbound_messages.get_or_create(&b(backend)).inc_by(messages as u64);
        self.inbound_reports.get_or_create(&b(backend)).inc_by(reports as u64);
        self.inbound_duplicates.get_or_create(&b(backend)).inc_by(duplicates as u64);
    }

    /// One send attempt: `sent`, `partial`, `permanent`, `retryable`, `throttled` or `failed`.
    pub fn send_attempt(&self, backend: &str, outcome: &str) {
        let labels = BackendOutcome { backend: backend.to_string(), outcome: outcome.to_string() };
        self.send_attempts.get_or_create(&labels).inc();
    }

    /// One provider HTTP exchange took `took`.
    pub fn provider_request(&self, backend: &str, took: Duration) {
        self.provider_request_seconds.get_or_create(&b(backend)).observe(took.as_secs_f64());
    }

    /// One call failed or hit a limit: `trap`, `cpu`, `wall`, `instantiate`,
    /// `busy`, `http-limit` (too many or too large provider requests) or
    /// `log-budget` (a log line over the backend's budget).
    pub fn call_failure(&self, backend: &str, kind: &str) {
        let labels = BackendKind { backend: backend.to_string(), kind: kind.to_string() };
        self.call_failures.get_or_create(&labels).inc();
    }

    /// One provider request refused by the egress policy.
    pub fn egress_denial(&self, backend: &str) {
        self.egress_denials.get_or_create(&b(backend)).inc();
    }

    /// One store transaction committed (or failed) after `took`.
    pub fn store_commit(&self, took: Duration) {
        self.store_commit_seconds.observe(took.as_secs_f64());
    }

    /// A connection opened (+1) or closed (-1).
    pub fn connections(&self, delta: i64) {
        self.open_connections.inc_by(delta);
    }

    /// The state of one mounted backend, at scrape time.
    pub fn backend_state(&self, backend: &str, version: Option<i64>, paused: bool) {
        self.backend_version.get_or_create(&b(backend)).set(version.unwrap_or(0));
        self.breaker_open.get_or_create(&b(backend)).set(i64::from(paused));
    }

    /// Forgets the state gauges (before a scrape sets them for the backends mounted now).
    pub fn clear_backend_state(&self) {
        self.backend_version.clear();
        self.breaker_open.clear();
    }

    /// Messages waiting with `status` and the age of the oldest, at scrape time.
    pub fn queue(&self, status: &str, count: u64, oldest: Option<Duration>) {
        let labels = Status { status: status.to_string() };
        self.queue_messages.get_or_create(&labels).set(count as i64);
        self.queue_oldest_seconds.get_or_create(&labels).set(oldest.map_or(0, |d| d.as_secs() as i64));
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        self.uptime_seconds.set(self.started.elapsed().as_secs() as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}
