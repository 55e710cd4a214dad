//! Progress of long work on the command line (a video's frames, a tiled photo's
//! tiles), behind a port-like trait so the core names no terminal crate: the binary
//! draws bars when stderr is a terminal, everything else gets [`Silent`].

/// Starts one progress display per piece of work.
pub trait Progress: Send + Sync {
    /// A display for `what`, `total` steps of `unit` when known.
    fn start(&self, what: &str, total: Option<u64>, unit: &'static str) -> Box<dyn ProgressBar>;
}

/// One piece of work's display.
pub trait ProgressBar: Send {
    /// `done` steps of the total so far.
    fn set(&self, done: u64);
    /// The work ended, `completed` or not: the display stays, at its real end when
    /// completed (a video's frame count is an estimate).
    fn finish(&self, completed: bool);
}

/// Shows nothing (stderr is not a terminal, or a library caller).
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: Option<u64>, _: &'static str) -> Box<dyn ProgressBar> {
        Box::new(Silent)
    }
}

impl ProgressBar for Silent {
    fn set(&self, _: u64) {}
    fn finish(&self, _: bool) {}
}
