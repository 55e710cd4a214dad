//! Engines that refused a batched call: from then on the batcher gives them one view per
//! call. Held weakly, so a replaced engine is forgotten with it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use ports::InferenceEngine;

#[derive(Default)]
pub(super) struct SingleView {
    engines: Mutex<Vec<Weak<dyn InferenceEngine>>>,
}

impl SingleView {
    pub fn contains(&self, engine: &Arc<dyn InferenceEngine>) -> bool {
        self.live().iter().any(|e| same(e, engine))
    }

    /// Remembers `engine`; `true` only the first time (the caller logs it once).
    pub fn insert(&self, engine: &Arc<dyn InferenceEngine>) -> bool {
        let mut engines = self.live();
        if engines.iter().any(|e| same(e, engine)) {
            return false;
        }
        engines.push(Arc::downgrade(engine));
        true
    }

    /// The entries whose engine still exists: a dropped one could share its address
    /// with a new engine.
    fn live(&self) -> MutexGuard<'_, Vec<Weak<dyn InferenceEngine>>> {
        let mut engines = self.engines.lock().unwrap_or_else(PoisonError::into_inner);
        engines.retain(|e| e.strong_count() > 0);
        engines
    }
}

fn same(entry: &Weak<dyn InferenceEngine>, engine: &Arc<dyn InferenceEngine>) -> bool {
    std::ptr::addr_eq(entry.as_ptr(), Arc::as_ptr(engine))
}
