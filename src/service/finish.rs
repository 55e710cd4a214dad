//! The one end of a media's run, for every kind of run (a job, an uploaded video, a
//! video in a synchronous request): the final event, the media status, the job
//! registry and the log line, the same way each time.

use domain::job::MediaStatus;
use domain::media::MediaId;
use ports::MediaEventStatus;

use super::lifecycle::StatusTrail;
use ports::{JobRegistry, JobStep};
use tokio_util::sync::CancellationToken;

use super::publish_at;

/// How a media's run ended.
pub(crate) enum RunEnd {
    /// Done; `note` tells of a video that broke off after some frames.
    Processed {
        note: Option<String>,
    },
    /// Stopped by `DELETE` or by shutdown.
    Cancelled,
    Failed(String),
}

/// Where the end is reported.
pub(crate) struct Finish<'a> {
    /// The service's shutdown token: a cancel while it is set is the shutdown's.
    pub stopping: &'a CancellationToken,
    pub registry: &'a dyn JobRegistry,
    pub events: &'a dyn ports::EventPublisher,
    /// The id events and the status carry.
    pub media: &'a MediaId,
    /// The keys the run's job is registered under (none for a synchronous request).
    pub jobs: &'a [MediaId],
    pub trail: Option<&'a StatusTrail>,
    /// What the log line calls the media ("media", "uploaded video").
    pub what: &'static str,
}

impl Finish<'_> {
    /// Reports `end`; returns the reason when the run did not succeed.
    pub(crate) async fn report(&self, end: RunEnd) -> Option<String> {
        let registry = self.registry;
        match end {
            RunEnd::Processed { note } => {
                for key in self.jobs {
                    registry.advance(key, JobStep::Finish).await;
                }
                publish_at(
                    self.events,
                    self.media,
                    MediaEventStatus::AiProcessed,
                    100,
                    vec![],
                    note,
                );
                if let Some(trail) = self.trail {
                    trail.report(MediaStatus::AiProcessed);
                }
                tracing::info!(media = %self.media, "{} processed", self.what);
                None
            }
            RunEnd::Cancelled | RunEnd::Failed(_) => {
                let reason = match end {
                    RunEnd::Failed(reason) => {
                        for key in self.jobs {
                            registry.advance(key, JobStep::Fail(reason.clone())).await;
                        }
                        reason
                    }
                    _ if self.stopping.is_cancelled() => "the service is shutting down".to_string(),
                    _ => "cancelled".to_string(),
                };
                // A cancel from DELETE already marked the job; shutdown marks it here.
                for key in self.jobs {
                    registry.advance(key, JobStep::Cancel).await;
                }
                publish_at(
                    self.events,
                    self.media,
                    MediaEventStatus::Error,
                    0,
                    vec![],
                    Some(reason.clone()),
                );
                if let Some(trail) = self.trail {
                    trail.report(MediaStatus::Error);
                }
                tracing::warn!(media = %self.media, %reason, "{} not processed", self.what);
                Some(reason)
            }
        }
    }
}
