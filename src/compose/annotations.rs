//! `AnnotationSink` and `MediaCatalog`: where annotations and media records go. Every
//! sink sits behind the outbox (the journal: nothing accepted is lost, spec B); in a
//! cluster the outbox holds only what waits for the broker (`compose::cluster`).

use std::sync::Arc;

use adapters::annotations::file::JsonLinesSink;
use adapters::annotations::http::AnnotationsClient;
use adapters::annotations::outbox::Outbox;
use adapters::annotations::webhook::WebhookSink;
use adapters::media::LocalMediaCatalog;
use ports::{AnnotationSink, MediaCatalog};

use super::SetupError;
use crate::config::{AnnotationsConfig, Config};

/// The receiver and the media catalogue: the Annotations service is both; the other
/// sinks keep media records in local folders.
pub struct Annotations {
    /// Who receives annotations (the Annotations service, a webhook, a file).
    pub receiver: Arc<dyn AnnotationSink>,
    pub catalog: Arc<dyn MediaCatalog>,
    outbox: crate::config::OutboxConfig,
}

impl Annotations {
    /// The outbox (the local journal) in front of `next`: the receiver on one process,
    /// the broker's stream in a cluster.
    pub fn journal_before(
        &self,
        next: Arc<dyn AnnotationSink>,
    ) -> Result<Arc<dyn AnnotationSink>, SetupError> {
        let outbox: Arc<dyn AnnotationSink> =
            Outbox::start(next, (&self.outbox).into()).map_err(|e| SetupError::Adapter {
                port: "annotations",
                reason: format!(
                    "cannot open the annotation journal {}: {e}",
                    self.outbox.spool_dir.display()
                ),
            })?;
        Ok(outbox)
    }
}

pub fn build(config: &Config) -> Result<Annotations, SetupError> {
    let adapter = |e: adapters::client_setup::ClientSetupError| SetupError::Adapter {
        port: "annotations",
        reason: e.to_string(),
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
    Ok(Annotations {
        receiver: sink,
        catalog,
        outbox: config.outbox.clone(),
    })
}
