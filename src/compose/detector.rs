//! `ImageDecoder` and `Preprocessor`: how bytes become model input, in front of the
//! engine (the frame detector and its batcher).

use std::sync::Arc;

use adapters::image::{ImageCodec, LetterboxPreprocessor};
use detections::detect::FrameDetector;
use domain::classes::ClassTable;

use crate::config::Config;

pub fn build(config: &Config, classes: Arc<ClassTable>) -> Arc<FrameDetector> {
    Arc::new(
        FrameDetector::new(
            Arc::new(ImageCodec::default()),
            Arc::new(LetterboxPreprocessor::new()),
            classes,
            config.engine.nms_iou(),
            config.detection.batching(),
        )
        .with_view_rules(config.view_rules()),
    )
}
