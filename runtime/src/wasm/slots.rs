//! Instance slots. The pool of instances is process-wide and fails rather than
//! waits when it is empty, so calls take a slot first. Each mounted backend
//! holds a reserve of slots no other backend can take; the rest is shared,
//! first come, first served, each backend capped by its `concurrency`. So no
//! set of backends, however many names they are uploaded under, can take a
//! mounted backend's last slot.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use super::engine::MAX_LIVE_INSTANCES;

/// Slots not reserved by any backend.
static SHARED: Semaphore = Semaphore::const_new(MAX_LIVE_INSTANCES as usize);

/// One backend version's access to instance slots.
pub struct Slots {
    /// At most `concurrency` calls of this backend at once.
    cap: Arc<Semaphore>,
    /// Slots taken out of [`SHARED`] for this backend alone.
    reserve: Arc<Semaphore>,
    reserved: u32,
}

/// A slot held for one call.
pub struct Slot {
    _cap: OwnedSemaphorePermit,
    _slot: Held,
}

enum Held {
    Reserved(#[allow(dead_code)] OwnedSemaphorePermit),
    Shared(#[allow(dead_code)] SemaphorePermit<'static>),
}

impl Slots {
    /// Slots for a backend running `concurrency` calls at most, reserving up to
    /// `reserve` of them (fewer when the pool cannot spare them: see [`Slots::reserved`]).
    pub fn new(concurrency: usize, reserve: u32) -> Self {
        let concurrency = concurrency.clamp(1, MAX_LIVE_INSTANCES as usize);
        let wanted = reserve.min(concurrency as u32);
        let reserved = match SHARED.try_acquire_many(wanted) {
            Ok(permits) => {
                permits.forget();
                wanted
            }
            Err(_) => 0,
        };
        Slots {
            cap: Arc::new(Semaphore::new(concurrency)),
            reserve: Arc::new(Semaphore::new(reserved as usize)),
            reserved,
        }
    }

    /// Slots this backend holds for itself.
    pub fn reserved(&self) -> u32 {
        self.reserved
    }

    /// Slots nobody has reserved, in use or not (for the admin API and tests).
    pub fn unreserved_total() -> usize {
        SHARED.available_permits()
    }

    /// A slot within `wait`, or `None`. The common case, everything free, arms no timer.
    pub async fn acquire(&self, wait: Duration) -> Option<Slot> {
        if let Ok(cap) = self.cap.clone().try_acquire_owned()
            && let Some(slot) = self.try_slot()
        {
            return Some(Slot { _cap: cap, _slot: slot });
        }
        tokio::time::timeout(wait, async {
            let cap = self.cap.clone().acquire_owned().await.ok()?;
            if let Some(slot) = self.try_slot() {
                return Some(Slot { _cap: cap, _slot: slot });
            }
            let slot = tokio::select! {
                own = self.reserve.clone().acquire_owned() => Held::Reserved(own.ok()?),
                shared = SHARED.acquire() => Held::Shared(shared.ok()?),
            };
            Some(Slot { _cap: cap, _slot: slot })
        })
        .await
        .ok()
        .flatten()
    }

    fn try_slot(&self) -> Option<Held> {
        if let Ok(own) = self.reserve.clone().try_acquire_owned() {
            return Some(Held::Reserved(own));
        }
        SHARED.try_acquire().ok().map(Held::Shared)
    }
}

impl Drop for Slots {
    /// The reserve goes back to everyone once the last call of this version is done.
    fn drop(&mut self) {
        SHARED.add_permits(self.reserved as usize);
    }
}
