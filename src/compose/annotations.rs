//! `AnnotationSink` and `MediaCatalog`: where annotations and media records go. Every
//! sink sits behind the outbox (the journal: nothing accepted is lost, spec B).

use std::sync::Arc;

use adapters::annotations::file::JsonLinesSink;
use adapters::annotations::http::AnnotationsClient;
use adapters::annotations::outbox::Outbox;
use adapters::annotations::webhook::WebhookSink;
use adapters::media::LocalMediaCatalog;
use ports::{AnnotationSink, MediaCatalog};

use super::SetupError;
use crate::config::{AnnotationsConfig, Config};

/// The sink (behind the outbox) and the media catalogue: the Annotations service is
/// both; the other sinks keep media records in local folders.
pub struct Annotations {
    /// The outbox: the local journal in front of the receiver.
    pub sink: Arc<dyn AnnotationSink>,
    /// Who receives annotations (the Annotations service, a webhook, a file).
    pub receiver: Arc<dyn AnnotationSink>,
    pub catalog: Arc<dyn MediaCatalog>,
}

pub fn build(config: &Config) -> Result<Annotations, SetupError> {
    let adapter = |reason: String| SetupError::Adapter {
        port: "annotations",
        reason,
    };
    let media = &config.media;
    let local_catalog =
        || Arc::new(LocalMediaCatalog::new(&media.images_dir, &media.videos_dir)) as Arc<_>;
    let (sink, catalog): (Arc<dyn AnnotationSink>, Arc<dyn MediaCatalog>) = match &config
        .annotations
    {
        AnnotationsConfig::File { path } => (Arc::new(JsonLinesSink::new(path)), local_catalog()),
        AnnotationsConfig::Http(http) => {
            let client = Arc::new(AnnotationsClient::new(http.into()).map_err(adapter)?);
            (client.clone(), client)
        }
        AnnotationsConfig::Webhook(webhook) => (
            Arc::new(WebhookSink::new(webhook.into()).map_err(adapter)?),
            local_catalog(),
        ),
    };
    let outbox = &config.outbox;
    let receiver = Arc::clone(&sink);
    let sink = Outbox::start(sink, outbox.into()).map_err(|e| {
        adapter(format!(
            "cannot open the annotation journal {}: {e}",
            outbox.spool_dir.display()
        ))
    })?;
    Ok(Annotations {
        sink,
        receiver,
        catalog,
    })
}
