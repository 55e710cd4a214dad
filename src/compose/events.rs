//! `EventPublisher`: the SSE stream's bus.

use std::sync::Arc;

use adapters::events::EventBus;
use ports::EventPublisher;

use crate::config::EventsConfig;

pub fn build(config: &EventsConfig) -> Arc<dyn EventPublisher> {
    Arc::new(EventBus::new(config.into()))
}
