//! Ports of the Detections hexagon.
//!
//! Driven ports (the core calls them, adapters implement them): [`ModelSource`],
//! [`EngineFactory`] and [`InferenceEngine`], [`GpuProbe`], [`FrameCodec`] and [`Preprocessor`],
//! [`AnnotationSink`], [`EventPublisher`], [`JobRegistry`], [`MediaStore`] and
//! [`MediaCatalog`], [`VideoDecoder`]. The driving port ([`DetectionService`])
//! is what the inbound HTTP adapter calls; the core implements it.
//!
//! Every type crossing a port is ours: no `ort`, `axum`, `reqwest` or `image`
//! type appears in a signature, so adapters can be swapped without touching the core.

pub mod annotations;
pub mod cluster;
pub mod driving;
pub mod engine;
pub mod events;
pub mod frame;
pub mod gpu;
pub mod jobs;
pub mod media;
pub mod memory;
pub mod model_source;
pub mod video;

pub use annotations::{Annotation, AnnotationError, AnnotationSink};
pub use cluster::{ClusterStatus, Membership};
pub use driving::{
    DetectError, DetectRequest, DetectionService, Health, JobView, MediaJobRequest, StagedUpload,
    UploadContent, UploadSink, UploadStarted, VideoUpload,
};
pub use engine::{
    BatchSize, ComputePrecision, Conversion, ElementType, EngineError, EngineFactory, EngineKind,
    InferenceEngine, InputTensor, ModelSpec, RawOutput, TensorSlot,
};
pub use events::{
    DetectionDto, DetectionEvent, EventPublisher, EventReceiver, EventSubscription,
    MediaEventStatus, Sequenced, StreamEvent, StreamItem, SubscribeRequest,
};
pub use frame::{
    AnnotateError, DecodeError, DrawnBox, FrameAnnotator, FrameCodec, PreprocessError,
    Preprocessor, RgbFrame,
};
pub use gpu::{GpuInfo, GpuProbe, GpuUnavailable, Precision};
pub use jobs::{JobClaimError, JobOrder, JobRegistry, JobStep};
pub use media::{
    CatalogError, MediaCatalog, MediaRecord, MediaStore, MediaStoreError, STAGED_HEAD_BYTES,
    StagingFile,
};
pub use memory::{MemoryBudget, MemoryLease};
pub use model_source::{ModelArtifact, ModelSource, ModelSourceError};
pub use video::{
    ByteStream, DecodeOptions, FrameStream, UploadBrokeOff, VideoDecoder, VideoError, VideoFrame,
    VideoInfo, VideoSource,
};
