//! Video (spec A11, A6, A7): decode → batch → detect → accept → report. The decoder runs
//! ahead of inference ([`feed`]), so the engine does not wait on the decoder.

use std::collections::VecDeque;
use std::sync::Arc;

use domain::detection::Detection;
use domain::job::Percent;
use domain::media::MediaId;
use domain::settings::RecognitionSettings;
use domain::tracking::{Tracked, Verdict};
use ports::{
    DecodeOptions, DetectError, DetectionDto, InferenceEngine, JobStep, MediaEventStatus,
    VideoError, VideoFrame, VideoSource,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Collaborators, frame_error, lifecycle, publish_at, unavailable};

mod feed;
mod so_far;
use feed::FrameFeed;
use so_far::SoFar;

/// Progress without detections is reported at least this often (percent points).
const PROGRESS_STEP: u8 = 5;

/// Video frames that went through the engine (every `frame_period_recognition`-th).
pub(crate) const FRAMES_INFERRED_TOTAL: &str = "detections_video_frames_inferred_total";

/// The id events carry: the content id once known, else the upload's provisional id.
#[derive(Clone)]
pub(crate) struct EventId {
    provisional: MediaId,
    content: watch::Receiver<Option<MediaId>>,
}

impl EventId {
    pub fn known(id: MediaId) -> Self {
        let (_, content) = watch::channel(Some(id.clone()));
        Self {
            provisional: id,
            content,
        }
    }

    pub fn pending(provisional: MediaId, content: watch::Receiver<Option<MediaId>>) -> Self {
        Self {
            provisional,
            content,
        }
    }

    fn now(&self) -> MediaId {
        self.content
            .borrow()
            .clone()
            .unwrap_or_else(|| self.provisional.clone())
    }

    /// The content id, once the upload has ended (annotations need it).
    async fn content(&self) -> Option<MediaId> {
        let mut content = self.content.clone();
        content
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|v| v.clone())
    }
}

/// Why a video stopped early.
pub(crate) enum VideoStop {
    Cancelled,
    Failed(DetectError),
}

/// One video's run.
pub(crate) struct VideoRun<'a> {
    pub parts: &'a Collaborators,
    pub settings: RecognitionSettings,
    pub id: EventId,
    /// The client's `Authorization` header: with it, accepted annotations go to the sink.
    pub authorization: Option<String>,
    pub cancel: CancellationToken,
    /// The keys of the run's job, whose percent rises with it (none for a
    /// synchronous request).
    pub job_keys: &'a [MediaId],
    /// Annotation deliveries run here (waited for at shutdown).
    pub tracker: &'a tokio_util::task::TaskTracker,
    /// The job's run, which keys its annotations by frame (a job that may be run
    /// again elsewhere); `None`: the sink keys them.
    pub run: Option<domain::job::RunId>,
}

/// How a finished video ended.
pub(crate) struct VideoOutcome {
    /// Every accepted annotation's detections, in order.
    pub detections: Vec<DetectionDto>,
    /// Set when decoding broke off after some frames (a truncated file).
    pub broken: Option<String>,
}

impl VideoRun<'_> {
    /// Room in the memory budget for every frame this video can hold at once (waiting in
    /// the channel, in the batches in flight, the one being read), each the size of
    /// `first`; a video with no room stops as busy.
    fn reserve_frames(
        &self,
        first: &VideoFrame,
        batch: usize,
    ) -> Result<ports::MemoryLease, VideoStop> {
        let frame_bytes = first.frame.pixels().len();
        let held = (batch * 2 + 2) + IN_FLIGHT * batch + 1;
        self.parts
            .memory
            .reserve(frame_bytes.saturating_mul(held))
            .ok_or(VideoStop::Failed(DetectError::Busy {
                retry_after_secs: 2,
            }))
    }

    pub async fn run(self, source: VideoSource) -> Result<VideoOutcome, VideoStop> {
        let (engine, stream) = self.open(source).await?;
        let info = stream.info();
        let batch = self.settings.model_batch_size().max(1) as usize;
        let mut feed = FrameFeed::start(stream, batch * 2 + 2);
        let mut so_far = SoFar::new(&self.settings, info);
        // Two batches in flight: the next one is with the batcher while this one's
        // results are published, so the engine never waits for the loop.
        let mut in_flight = VecDeque::with_capacity(IN_FLIGHT);
        // The frames this video holds at most, in the memory budget from its first frame.
        let mut frames_held: Option<ports::MemoryLease> = None;
        loop {
            while feed.is_open() && in_flight.len() < IN_FLIGHT {
                let frames = feed.next_batch(batch, &self.cancel).await?;
                if let (None, Some(first)) = (&frames_held, frames.first()) {
                    frames_held = Some(self.reserve_frames(first, batch)?);
                }
                if !frames.is_empty() {
                    in_flight.push_back(self.infer(frames, &engine));
                }
            }
            let Some(inference) = in_flight.pop_front() else {
                break;
            };
            let (frames, detections) = self.inferred(inference).await?;
            for (frame, detections) in frames.into_iter().zip(detections) {
                self.publish_frame(&mut so_far, frame, detections).await;
            }
            if self.cancel.is_cancelled() {
                return Err(VideoStop::Cancelled);
            }
        }
        // Every frame decoded before a failure has been inferred and published.
        so_far.outcome(feed.into_failure())
    }

    /// The engine and the decoder, started together (either may take a while).
    async fn open(
        &self,
        source: VideoSource,
    ) -> Result<(Arc<dyn InferenceEngine>, Box<dyn ports::FrameStream>), VideoStop> {
        let every_nth = self.settings.frame_period_recognition().max(1);
        let opening = self.parts.video.open(source, DecodeOptions { every_nth });
        let (engine, stream) = tokio::select! {
            () = self.cancel.cancelled() => return Err(VideoStop::Cancelled),
            both = async { tokio::join!(self.parts.engines.ensure(), opening) } => both,
        };
        let stream = stream.map_err(|e| VideoStop::Failed(video_error(e)))?;
        let engine = engine.map_err(|e| VideoStop::Failed(unavailable(e)))?;
        Ok((engine, stream))
    }

    /// A batch's frames and detections, once the engine is done with them.
    async fn inferred(
        &self,
        inference: Inference,
    ) -> Result<(Vec<SharedFrame>, Vec<Vec<Detection>>), VideoStop> {
        let (frames, results) = inference.await.map_err(|e| {
            VideoStop::Failed(DetectError::Internal(format!("detection aborted: {e}")))
        })?;
        let results = results.map_err(|e| VideoStop::Failed(frame_error(e)))?;
        metrics::counter!(FRAMES_INFERRED_TOTAL).increment(results.len() as u64);
        // A cancel that came while the batch was inferred: its frames publish and
        // annotate nothing (no annotation after the cancel's answer).
        if self.cancel.is_cancelled() {
            return Err(VideoStop::Cancelled);
        }
        Ok((frames, results))
    }

    /// One inferred frame: accepted (published with its detections and annotated) or
    /// not (progress only, every [`PROGRESS_STEP`] points).
    async fn publish_frame(
        &self,
        so_far: &mut SoFar,
        frame: SharedFrame,
        detections: Vec<Detection>,
    ) {
        so_far.processed += 1;
        let percent = so_far.percent_at(&frame);
        let tracked: Vec<Tracked> = detections.iter().map(Tracked::from).collect();
        if so_far.gate.offer(frame.timestamp, &tracked) == Verdict::Accepted {
            let dtos = self.parts.detector.to_dtos(&detections);
            so_far.reported = percent;
            self.progress(percent, dtos.clone());
            so_far.accepted.extend(dtos.iter().cloned());
            if let Some(authorization) = &self.authorization {
                self.deliver(frame, dtos, authorization.clone());
            }
        } else if percent >= so_far.reported.saturating_add(PROGRESS_STEP) {
            so_far.reported = percent;
            self.progress(percent, vec![]);
        }
        // The job's record changes with the percent, not with every accepted frame: at
        // most a hundred writes per video (a round trip each on a broker).
        if percent > so_far.recorded {
            so_far.recorded = percent;
            let percent = Percent::new(percent).unwrap_or(Percent::HUNDRED);
            for key in self.job_keys {
                self.parts
                    .jobs
                    .advance(key, JobStep::Progress(percent))
                    .await;
            }
        }
    }

    /// An `AIProcessing` event at `percent`, with an accepted frame's detections or
    /// none for plain progress.
    fn progress(&self, percent: u8, annotations: Vec<DetectionDto>) {
        publish_at(
            self.parts.events.as_ref(),
            &self.id.now(),
            MediaEventStatus::AiProcessing,
            percent,
            annotations,
            None,
        );
    }

    /// Detects a batch of frames on a blocking thread (through the batcher).
    fn infer(&self, frames: Vec<VideoFrame>, engine: &Arc<dyn InferenceEngine>) -> Inference {
        let detector = Arc::clone(&self.parts.detector);
        let engine = Arc::clone(engine);
        let settings = self.settings.clone();
        let frames: Vec<SharedFrame> = frames.into_iter().map(SharedFrame::from).collect();
        tokio::task::spawn_blocking(move || {
            let _active = super::ActiveInference::enter();
            let images: Vec<_> = frames.iter().map(|f| Arc::clone(&f.image)).collect();
            let results = detector.detect_frames(&engine, &images, &settings);
            (frames, results)
        })
    }

    /// Hands the annotation to the sink in a task of its own: JPEG encoding and the
    /// content id (known only when an upload has ended) never hold up detection.
    fn deliver(&self, frame: SharedFrame, dtos: Vec<DetectionDto>, authorization: String) {
        let sink = Arc::clone(&self.parts.sink);
        let detector = Arc::clone(&self.parts.detector);
        let id = self.id.clone();
        let at_seconds = frame.timestamp;
        let key = self.run.map(|run| run.annotation_key(frame.index));
        let image = frame.image;
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            let Some(media_id) = id.content().await else {
                return;
            };
            // Cancelled while waiting for the content id: nothing more is annotated.
            if cancel.is_cancelled() {
                return;
            }
            let annotation = lifecycle::FrameAnnotation {
                media_id,
                at_seconds,
                frame: image,
                detections: dtos,
                authorization: Some(authorization),
                key,
            };
            lifecycle::deliver_annotation(sink.as_ref(), &detector, annotation, Some(&cancel))
                .await;
        });
    }
}

/// Batches of a video with the batcher at once.
const IN_FLIGHT: usize = 2;

type Inference = tokio::task::JoinHandle<(
    Vec<SharedFrame>,
    Result<Vec<Vec<Detection>>, crate::detect::FrameError>,
)>;

/// A decoded frame, shared between the batcher and the annotation it may become.
struct SharedFrame {
    index: u64,
    timestamp: f64,
    image: Arc<ports::RgbFrame>,
}

impl From<VideoFrame> for SharedFrame {
    fn from(frame: VideoFrame) -> Self {
        Self {
            index: frame.index,
            timestamp: frame.timestamp,
            image: Arc::new(frame.frame),
        }
    }
}

pub(crate) fn video_error(error: VideoError) -> DetectError {
    match error {
        VideoError::Unreadable(_) => DetectError::BadInput(error.to_string()),
        VideoError::Broken(_) | VideoError::Stalled(_) => {
            DetectError::Unprocessable(error.to_string())
        }
        VideoError::Unavailable(_) => DetectError::Internal(error.to_string()),
    }
}
