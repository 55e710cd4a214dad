//! One memory budget for what requests hold in flight: their bodies, and the frames a
//! video decode holds (ARCHITECTURE.md "The memory plan").
//!
//! A `POST /detect` reserves, before it reads its body, the most it may hold in memory:
//! its declared length, or the in-memory limit when that is smaller or nothing is
//! declared (beyond it the body goes to a staged file). A video reserves its frames in
//! flight when the first one arrives. Whatever does not fit is refused at once (503 with
//! `Retry-After`); what was admitted is never slowed: it already holds what it uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The budget and the per-body in-memory limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    in_memory_max: usize,
    reserved: AtomicUsize,
}

impl MemoryBudget {
    /// `limit` bytes for everything in flight together; one body may hold
    /// `in_memory_max` of them at most (never more than `limit`).
    pub fn new(limit: usize, in_memory_max: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            in_memory_max: in_memory_max.min(limit),
            reserved: AtomicUsize::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most one body holds in memory; above it, it goes to a staged file.
    pub fn in_memory_max(&self) -> usize {
        self.in_memory_max
    }

    /// Reserves room for a body that declares `declared` bytes (None: unknown), or
    /// `None` when the budget has no room for it (the caller sheds the request).
    pub fn admit(self: &Arc<Self>, declared: Option<u64>) -> Option<MemoryLease> {
        let want = declared.map_or(self.in_memory_max, |d| {
            usize::try_from(d)
                .unwrap_or(usize::MAX)
                .min(self.in_memory_max)
        });
        self.reserve(want)
    }

    /// Reserves `bytes` when they fit under the limit.
    pub fn reserve(self: &Arc<Self>, bytes: usize) -> Option<MemoryLease> {
        let mut current = self.reserved.load(Ordering::Relaxed);
        loop {
            let next = current.checked_add(bytes).filter(|n| *n <= self.limit)?;
            match self.reserved.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(MemoryLease {
                        budget: Arc::clone(self),
                        bytes,
                    });
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }
}

/// Room held in the budget; given back when dropped.
#[derive(Debug)]
pub struct MemoryLease {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl MemoryLease {
    /// The bytes this lease holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        self.budget.reserved.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_limit_and_come_back_when_dropped() {
        let budget = MemoryBudget::new(100, 40);
        let a = budget.admit(Some(30)).unwrap();
        assert_eq!(a.bytes(), 30);
        // Unknown or larger bodies reserve the in-memory limit.
        let b = budget.admit(None).unwrap();
        assert_eq!(b.bytes(), 40);
        let c = budget.admit(Some(1 << 40)).map(|l| l.bytes());
        assert_eq!(c, None, "30 + 40 + 40 > 100");
        assert_eq!(budget.reserved(), 70);
        drop(a);
        assert_eq!(budget.admit(Some(1 << 40)).unwrap().bytes(), 40);
        drop(b);
        assert_eq!(budget.reserved(), 0);
        // The in-memory limit never exceeds the budget.
        assert_eq!(MemoryBudget::new(10, 40).in_memory_max(), 10);
        assert!(budget.reserve(101).is_none());
    }
}
