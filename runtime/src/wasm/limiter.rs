//! One budget for everything a call's instance holds in linear memory and
//! tables. A component may declare several memories and tables; a limit per
//! memory (wasmtime's `StoreLimits`) would let it hold a multiple of its share.

use wasmtime::{ResourceLimiter, Result};

/// Bytes a table element costs (wasmtime stores a pointer per element).
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// Limits for one call's store.
pub struct CallLimiter {
    budget: usize,
    used: usize,
    /// The last growth granted, taken back if it then fails.
    last_grant: usize,
}

impl CallLimiter {
    /// A limiter allowing `budget` bytes of memories and tables together.
    pub fn new(budget: usize) -> Self {
        CallLimiter { budget, used: 0, last_grant: 0 }
    }

    fn grant(&mut self, bytes: usize) -> bool {
        match self.used.checked_add(bytes) {
            Some(total) if total <= self.budget => {
                self.used = total;
                self.last_grant = bytes;
                true
            }
            _ => false,
        }
    }

    fn take_back(&mut self) {
        self.used -= std::mem::take(&mut self.last_grant);
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool> {
        Ok(self.grant(desired.saturating_sub(current)))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> Result<()> {
        self.take_back();
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool> {
        Ok(self.grant(desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES)))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> Result<()> {
        self.take_back();
        Ok(())
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut limiter = CallLimiter::new(4 << 20);
        assert!(limiter.memory_growing(0, 2 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 2 << 20, None).unwrap(), "a second memory gets the rest");
        assert!(!limiter.memory_growing(0, 64 << 10, None).unwrap(), "a third memory gets nothing");
        assert!(!limiter.table_growing(0, 1, None).unwrap(), "tables count too");
        limiter.memory_grow_failed(wasmtime::Error::msg("failed")).unwrap();
        assert!(limiter.table_growing(0, 1000, None).unwrap(), "a failed growth is given back");
    }
}
