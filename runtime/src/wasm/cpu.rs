//! CPU time as CPU time: a guest is billed only while its call is being polled
//! (running on an executor thread), not while it waits for a thread, for the
//! provider, or for anything else. A noisy neighbour that keeps the executor
//! busy makes a call slower, never makes it fail its `cpu_ms`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Running time of one call, shared by the future that polls it and the
/// epoch callback that enforces the limit from inside a poll.
#[derive(Debug)]
pub struct CpuMeter {
    origin: Instant,
    /// Nanoseconds of completed polls.
    spent: AtomicU64,
    /// When the current poll began (ns after `origin`, plus one), or 0 between polls.
    poll_began: AtomicU64,
}

impl CpuMeter {
    /// A meter at zero.
    pub fn new() -> Arc<Self> {
        Arc::new(CpuMeter { origin: Instant::now(), spent: AtomicU64::new(0), poll_began: AtomicU64::new(0) })
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64 + 1
    }

    /// Time spent running so far, the current poll included.
    pub fn used(&self) -> Duration {
        let began = self.poll_began.load(Ordering::Relaxed);
        let current = if began == 0 { 0 } else { self.now().saturating_sub(began) };
        Duration::from_nanos(self.spent.load(Ordering::Relaxed) + current)
    }

    /// Forgets what was spent (instantiation is not the guest's call).
    pub fn restart(&self) {
        self.spent.store(0, Ordering::Relaxed);
        if self.poll_began.load(Ordering::Relaxed) != 0 {
            self.poll_began.store(self.now(), Ordering::Relaxed);
        }
    }
}

/// Wraps `inner` so that the time spent inside its `poll` is counted in `meter`.
pub fn metered<F: Future>(meter: Arc<CpuMeter>, inner: F) -> Metered<F> {
    Metered { meter, inner }
}

pin_project_lite::pin_project! {
    /// A future whose polls are timed (pinned in place: the wrapped call's
    /// future is large, and a box would copy it on every call).
    pub struct Metered<F> {
        meter: Arc<CpuMeter>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let meter: &CpuMeter = this.meter;
        meter.poll_began.store(meter.now(), Ordering::Relaxed);
        let result = this.inner.poll(cx);
        let began = meter.poll_began.swap(0, Ordering::Relaxed);
        meter.spent.fetch_add(meter.now().saturating_sub(began), Ordering::Relaxed);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_is_not_counted_and_running_is() {
        let meter = CpuMeter::new();
        metered(meter.clone(), tokio::time::sleep(Duration::from_millis(50))).await;
        assert!(meter.used() < Duration::from_millis(10), "sleeping counted: {:?}", meter.used());
        metered(meter.clone(), async {
            let until = Instant::now() + Duration::from_millis(30);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        })
        .await;
        assert!(meter.used() >= Duration::from_millis(30), "running not counted: {:?}", meter.used());
    }
}
