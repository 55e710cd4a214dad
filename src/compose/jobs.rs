//! `JobRegistry`: background jobs by media (the 409 of spec A3).

use std::sync::Arc;

use adapters::jobs::InMemoryJobRegistry;
use ports::JobRegistry;

/// One replica's jobs, in memory (a cluster's registry would be chosen here).
pub fn build() -> Arc<dyn JobRegistry> {
    Arc::new(InMemoryJobRegistry::default())
}
