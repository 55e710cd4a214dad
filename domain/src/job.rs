//! Lifecycle of one media detection job (spec A3, A7, A8 and Part B job
//! control), with explicit transitions.

/// A progress percentage, 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Percent(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("percent must be between 0 and 100, got {0}")]
pub struct PercentError(pub u8);

impl Percent {
    pub const ZERO: Percent = Percent(0);
    pub const HUNDRED: Percent = Percent(100);

    pub fn new(value: u8) -> Result<Percent, PercentError> {
        if value <= 100 {
            Ok(Percent(value))
        } else {
            Err(PercentError(value))
        }
    }

    /// `done` of `total` as a whole percentage, rounded down and clamped to
    /// 0..=100; an unknown total (0) reads as 0 % so progress never jumps.
    pub fn of(done: u64, total: u64) -> Percent {
        if total == 0 {
            return Percent(0);
        }
        let p = (u128::from(done) * 100 / u128::from(total)).min(100);
        // p <= 100 so the cast is lossless.
        Percent(p as u8)
    }

    pub fn value(self) -> u8 {
        self.0
    }
}

/// Where a detection job is, without its details (what `GET /detect/{media_id}` says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Processed,
    Failed,
    Cancelled,
}

impl JobStatus {
    /// The wire name (docs/service.md): lower case.
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Processed => "processed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

/// State of a detection job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running { percent: Percent },
    Processed,
    Failed { reason: String },
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobTransitionError {
    #[error("cannot {action} a job that is {state}")]
    Illegal {
        state: &'static str,
        action: &'static str,
    },
    #[error("progress cannot go back from {current}% to {requested}%")]
    Backwards { current: u8, requested: u8 },
}

impl JobState {
    pub fn status(&self) -> JobStatus {
        match self {
            JobState::Queued => JobStatus::Queued,
            JobState::Running { .. } => JobStatus::Running,
            JobState::Processed => JobStatus::Processed,
            JobState::Failed { .. } => JobStatus::Failed,
            JobState::Cancelled => JobStatus::Cancelled,
        }
    }

    pub fn name(&self) -> &'static str {
        self.status().name()
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Processed | JobState::Failed { .. } | JobState::Cancelled
        )
    }

    /// Percent done: 0 while queued, 100 once processed.
    pub fn percent(&self) -> Option<Percent> {
        match self {
            JobState::Queued => Some(Percent::ZERO),
            JobState::Running { percent } => Some(*percent),
            JobState::Processed => Some(Percent::HUNDRED),
            _ => None,
        }
    }

    fn illegal(&self, action: &'static str) -> JobTransitionError {
        JobTransitionError::Illegal {
            state: self.name(),
            action,
        }
    }

    /// Queued → Running(0).
    pub fn start(&self) -> Result<JobState, JobTransitionError> {
        match self {
            JobState::Queued => Ok(JobState::Running {
                percent: Percent::ZERO,
            }),
            _ => Err(self.illegal("start")),
        }
    }

    /// Running → Running with a percentage that never goes down.
    pub fn progress(&self, p: Percent) -> Result<JobState, JobTransitionError> {
        match self {
            JobState::Running { percent } if p >= *percent => Ok(JobState::Running { percent: p }),
            JobState::Running { percent } => Err(JobTransitionError::Backwards {
                current: percent.value(),
                requested: p.value(),
            }),
            _ => Err(self.illegal("report progress on")),
        }
    }

    /// Running → Processed.
    pub fn finish(&self) -> Result<JobState, JobTransitionError> {
        match self {
            JobState::Running { .. } => Ok(JobState::Processed),
            _ => Err(self.illegal("finish")),
        }
    }

    /// Queued | Running → Failed.
    pub fn fail(&self, reason: impl Into<String>) -> Result<JobState, JobTransitionError> {
        match self {
            JobState::Queued | JobState::Running { .. } => Ok(JobState::Failed {
                reason: reason.into(),
            }),
            _ => Err(self.illegal("fail")),
        }
    }

    /// Queued | Running → Cancelled.
    pub fn cancel(&self) -> Result<JobState, JobTransitionError> {
        match self {
            JobState::Queued | JobState::Running { .. } => Ok(JobState::Cancelled),
            _ => Err(self.illegal("cancel")),
        }
    }
}

/// Media status in the Annotations service (spec A8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStatus {
    New = 1,
    AiProcessing = 2,
    AiProcessed = 3,
    Error = 6,
}

impl MediaStatus {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The `mediaStatus` string of SSE events (spec A7).
    pub fn name(self) -> &'static str {
        match self {
            MediaStatus::New => "New",
            MediaStatus::AiProcessing => "AIProcessing",
            MediaStatus::AiProcessed => "AIProcessed",
            MediaStatus::Error => "Error",
        }
    }
}

/// Kind of media (spec A2, A9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
}

impl MediaKind {
    /// The `MediaType` value sent to Annotations.
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Image => "Image",
            MediaKind::Video => "Video",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: u8) -> Percent {
        Percent::new(v).unwrap()
    }

    #[test]
    fn percent_bounds() {
        assert!(Percent::new(100).is_ok());
        assert_eq!(
            Percent::new(101).unwrap_err().to_string(),
            "percent must be between 0 and 100, got 101"
        );
        assert_eq!(Percent::of(1, 3).value(), 33);
        assert_eq!(Percent::of(5, 3).value(), 100);
        assert_eq!(Percent::of(5, 0).value(), 0);
        assert_eq!(Percent::of(u64::MAX, u64::MAX).value(), 100);
    }

    #[test]
    fn happy_path() {
        let s = JobState::Queued.start().unwrap();
        assert_eq!(s, JobState::Running { percent: p(0) });
        let s = s.progress(p(40)).unwrap().progress(p(40)).unwrap();
        assert_eq!(s.percent(), Some(p(40)));
        let s = s.finish().unwrap();
        assert!(s.is_terminal());
        assert_eq!(s.percent(), Some(p(100)));
    }

    #[test]
    fn progress_is_monotonic() {
        let s = JobState::Running { percent: p(50) };
        assert_eq!(
            s.progress(p(10)).unwrap_err(),
            JobTransitionError::Backwards {
                current: 50,
                requested: 10
            }
        );
        assert!(JobState::Queued.progress(p(10)).is_err());
    }

    #[test]
    fn fail_and_cancel_from_live_states_only() {
        for live in [JobState::Queued, JobState::Running { percent: p(3) }] {
            assert!(matches!(live.fail("x"), Ok(JobState::Failed { .. })));
            assert_eq!(live.cancel(), Ok(JobState::Cancelled));
        }
        assert!(JobState::Queued.finish().is_err());
    }

    #[test]
    fn terminal_states_refuse_everything() {
        for t in [
            JobState::Processed,
            JobState::Failed { reason: "r".into() },
            JobState::Cancelled,
        ] {
            assert!(t.is_terminal());
            assert!(t.start().is_err());
            assert!(t.progress(p(100)).is_err());
            assert!(t.finish().is_err());
            assert!(t.fail("again").is_err());
            assert!(t.cancel().is_err());
        }
        assert_eq!(
            JobState::Cancelled.start().unwrap_err().to_string(),
            "cannot start a job that is cancelled"
        );
    }

    #[test]
    fn media_codes() {
        assert_eq!(MediaStatus::New.code(), 1);
        assert_eq!(MediaStatus::AiProcessing.code(), 2);
        assert_eq!(MediaStatus::AiProcessed.code(), 3);
        assert_eq!(MediaStatus::Error.code(), 6);
        assert_eq!(MediaStatus::AiProcessed.name(), "AIProcessed");
        assert_eq!(MediaKind::Video.name(), "Video");
    }
}

/// One run of a job, from which its annotations' idempotency keys derive: the same
/// frame of the same run has the same key on whichever replica made it, so a job run
/// again after a takeover sends what both runs annotated under one key, and the
/// receiver keeps one. A new job for the same media is a new run, with new keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunId(u128);

impl RunId {
    pub fn from_u128(value: u128) -> Self {
        Self(value)
    }

    /// Reads [`to_hex`](Self::to_hex) back.
    pub fn parse(hex: &str) -> Option<Self> {
        (hex.len() == 32)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .map(Self)
    }

    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    /// The idempotency key of the annotation of frame `frame` (0 for a photo), shaped
    /// like a UUID (version 8: custom) for receivers that expect one.
    pub fn annotation_key(self, frame: u64) -> String {
        let seed = (self.0 as u64) ^ ((self.0 >> 64) as u64);
        let high = xxhash_rust::xxh64::xxh64(&frame.to_le_bytes(), seed);
        let low = xxhash_rust::xxh64::xxh64(&self.0.to_le_bytes(), frame);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&high.to_be_bytes());
        bytes[8..].copy_from_slice(&low.to_be_bytes());
        uuid_text(bytes, 8)
    }
}

/// `bytes` as a UUID's text (`8-4-4-4-12` hex digits), stamped with `version` and the
/// RFC 4122 variant.
pub fn uuid_text(mut bytes: [u8; 16], version: u8) -> String {
    bytes[6] = (bytes[6] & 0x0f) | (version << 4);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod run_tests {
    use super::RunId;

    #[test]
    fn one_frame_of_one_run_has_one_key() {
        let run = RunId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(RunId::parse(&run.to_hex()), Some(run));
        assert_eq!(run.annotation_key(7), run.annotation_key(7));
        assert_ne!(run.annotation_key(7), run.annotation_key(8));
        assert_ne!(
            run.annotation_key(7),
            RunId::from_u128(1).annotation_key(7),
            "another run"
        );
        let key = run.annotation_key(0);
        assert_eq!(key.len(), 36);
        assert_eq!(&key[14..15], "8", "UUID version 8: {key}");
        assert_eq!(RunId::parse("not hex"), None);
    }
}
