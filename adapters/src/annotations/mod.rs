//! Annotation sinks: where accepted annotations go. [`http::AnnotationsClient`] speaks to
//! the Annotations service (and is its media catalogue too), [`file::JsonLinesSink`]
//! writes a local file, [`webhook::WebhookSink`] posts to any webhook (the worked
//! example of adding an adapter), and [`outbox::Outbox`] wraps either so that delivery never
//! blocks detection and nothing is lost:
//! each annotation is first written to the [`journal::Journal`] on disk.

pub mod file;
pub mod http;
pub mod journal;
pub mod outbox;
pub mod webhook;
pub mod wire;
