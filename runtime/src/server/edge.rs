//! The listener: HTTP/1.1 connections with a deadline for each request's
//! headers (which is also how long an idle keep-alive connection lives), a cap
//! on connections with a few kept for `/healthz`, and a stop that waits for
//! requests in flight only as long as it is allowed to.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::metrics::metrics;

/// Connections beyond `max_connections` that are still accepted, to answer
/// `/healthz` (and a 503 to anything else): a load balancer can tell "busy"
/// from "down".
const HEALTH_RESERVE: usize = 16;

/// Time a connection in the reserve has to send its request's headers.
const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// How the edge defends itself.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Counts a connection while it lives.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        metrics().connections(-1);
    }
}

/// Serves `app` until `stop` completes, then lets requests in flight finish
/// for at most `drain`; returns how many connections were still open then.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: EdgeLimits,
    stop: impl std::future::Future<Output = ()>,
    drain: Duration,
) -> usize {
    let healthz_only = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], "too many connections\n") });
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    // The reserve is for a quick probe: whoever sits on it is dropped fast.
    let mut reserve_builder = builder.clone();
    reserve_builder.header_read_timeout(limits.header_timeout.min(RESERVE_HEADER_TIMEOUT)).keep_alive(false);
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let count = open.fetch_add(1, Ordering::Relaxed) + 1;
        let counted = Counted(open.clone());
        metrics().connections(1);
        if count > limits.max_connections + HEALTH_RESERVE {
            continue; // closed at once: the cap protects everyone already connected
        }
        let (service, builder) = if count > limits.max_connections {
            (healthz_only.clone(), &reserve_builder)
        } else {
            (app.clone(), &builder)
        };
        let _ = stream.set_nodelay(true);
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(counted);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        let left = open.load(Ordering::Relaxed);
        tracing::warn!("{left} connection(s) still open after {drain:?}: stopping anyway");
        return left;
    }
    0
}
