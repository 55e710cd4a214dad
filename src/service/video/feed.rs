//! The decoded frames of a run: a task pulls them from the decoder into a bounded
//! channel while the engine works on the previous batch, so the engine does not wait
//! on the decoder.

use ports::{FrameStream, VideoError, VideoFrame};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::VideoStop;

/// Frames as they are decoded, taken a batch at a time.
pub(super) struct FrameFeed {
    frames: mpsc::Receiver<Result<VideoFrame, VideoError>>,
    /// The decoder has no more frames.
    ended: bool,
    /// The decoder failed; the frames before it still count.
    failure: Option<VideoError>,
    /// Dropping the feed ends the task, which drops the stream (stopping the decoder).
    _pump: AbortOnDrop,
}

impl FrameFeed {
    /// Starts pulling from `stream`, holding up to `capacity` frames ahead.
    pub(super) fn start(mut stream: Box<dyn FrameStream>, capacity: usize) -> FrameFeed {
        let (frames_tx, frames) = mpsc::channel::<Result<VideoFrame, VideoError>>(capacity);
        let pump = tokio::spawn(async move {
            while let Some(item) = stream.next_frame().await {
                let failed = item.is_err();
                if frames_tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        FrameFeed {
            frames,
            ended: false,
            failure: None,
            _pump: AbortOnDrop(pump),
        }
    }

    /// More frames may come.
    pub(super) fn is_open(&self) -> bool {
        !self.ended && self.failure.is_none()
    }

    /// Up to `batch` frames: waits for the first, then takes what is already decoded.
    /// Empty when the video ended or failed (see [`FrameFeed::into_failure`]).
    pub(super) async fn next_batch(
        &mut self,
        batch: usize,
        cancel: &CancellationToken,
    ) -> Result<Vec<VideoFrame>, VideoStop> {
        let first = tokio::select! {
            () = cancel.cancelled() => return Err(VideoStop::Cancelled),
            next = self.frames.recv() => next,
        };
        let mut frames = Vec::with_capacity(batch);
        match first {
            None => self.ended = true,
            Some(Ok(frame)) => frames.push(frame),
            Some(Err(e)) => self.failure = Some(e),
        }
        while self.is_open() && frames.len() < batch {
            match self.frames.try_recv() {
                Ok(Ok(frame)) => frames.push(frame),
                Ok(Err(e)) => self.failure = Some(e),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.ended = true,
            }
        }
        Ok(frames)
    }

    /// How decoding failed, if it did.
    pub(super) fn into_failure(self) -> Option<VideoError> {
        self.failure
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
