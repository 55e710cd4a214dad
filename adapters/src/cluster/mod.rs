//! State that many replicas share, on a broker: the event stream, the job registry.
//! One process needs none of it (the in-memory adapters serve); `[cluster] kind =
//! "nats"` moves it to NATS JetStream ([`nats`]).

pub mod nats;
