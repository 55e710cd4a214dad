//! Which inferred video frames become annotations (spec A11): the frame has
//! detections, it is at least `frame_recognition_seconds` after the last accepted one
//! (by the frames' timestamps), and something changed since that one. The exact rule
//! is in docs/pipeline.md ("Video").

use crate::detection::Detection;
use crate::settings::RecognitionSettings;

/// Movement below this fraction of the frame is never a change: a re-encoded static
/// scene jitters boxes by a pixel or two, and `tracking_distance_confidence` defaults
/// to 0.
pub const MIN_MOVEMENT: f64 = 0.005;
/// A confidence rise below this is never a change (same reason).
pub const MIN_CONFIDENCE_RISE: f64 = 0.01;

/// The part of a detection the rule looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracked {
    pub class: u32,
    pub cx: f64,
    pub cy: f64,
    pub w: f64,
    pub h: f64,
    pub confidence: f64,
}

impl From<&Detection> for Tracked {
    fn from(d: &Detection) -> Self {
        let b = d.bbox();
        Self {
            class: d.class().value(),
            cx: b.cx(),
            cy: b.cy(),
            w: b.w(),
            h: b.h(),
            confidence: d.confidence().value(),
        }
    }
}

/// Why a frame was not accepted (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    NoDetections,
    TooSoon,
    Unchanged,
}

/// The acceptance rule, fed the inferred frames in order.
#[derive(Debug, Clone)]
pub struct AnnotationGate {
    min_gap_secs: f64,
    movement: f64,
    confidence_rise: f64,
    last: Option<(f64, Vec<Tracked>)>,
}

impl AnnotationGate {
    pub fn new(settings: &RecognitionSettings) -> Self {
        Self::with(
            settings.frame_recognition_seconds(),
            settings.tracking_distance_confidence(),
            settings.tracking_probability_increase(),
        )
    }

    pub fn with(min_gap_secs: f64, movement: f64, confidence_rise: f64) -> Self {
        Self {
            min_gap_secs,
            movement: movement.max(MIN_MOVEMENT),
            confidence_rise: confidence_rise.max(MIN_CONFIDENCE_RISE),
            last: None,
        }
    }

    /// Judges the frame at `timestamp` seconds; an accepted frame becomes the new
    /// reference.
    pub fn offer(&mut self, timestamp: f64, boxes: &[Tracked]) -> Verdict {
        if boxes.is_empty() {
            return Verdict::NoDetections;
        }
        if let Some((at, previous)) = &self.last {
            // A small tolerance: timestamps are rationals printed as decimals.
            if timestamp - at < self.min_gap_secs - 1e-6 {
                return Verdict::TooSoon;
            }
            if !self.changed(previous, boxes) {
                return Verdict::Unchanged;
            }
        }
        self.last = Some((timestamp, boxes.to_vec()));
        Verdict::Accepted
    }

    /// Greedy matching, nearest centres first: a current box and a previous box are
    /// one object when they have the same class and their centres are at most the
    /// previous box's longer side apart. Any unmatched box (appeared or vanished), a
    /// matched one that moved more than the threshold or whose confidence rose more
    /// than the threshold, is a change.
    fn changed(&self, previous: &[Tracked], current: &[Tracked]) -> bool {
        if previous.len() != current.len() {
            return true;
        }
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (i, c) in current.iter().enumerate() {
            for (j, p) in previous.iter().enumerate() {
                let d = distance(c, p);
                if c.class == p.class && d <= p.w.max(p.h) {
                    pairs.push((d, i, j));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut used_current = vec![false; current.len()];
        let mut used_previous = vec![false; previous.len()];
        let mut matched = 0;
        for (d, i, j) in pairs {
            if used_current[i] || used_previous[j] {
                continue;
            }
            used_current[i] = true;
            used_previous[j] = true;
            matched += 1;
            if d > self.movement
                || current[i].confidence - previous[j].confidence > self.confidence_rise
            {
                return true;
            }
        }
        matched != current.len()
    }
}

fn distance(a: &Tracked, b: &Tracked) -> f64 {
    ((a.cx - b.cx).powi(2) + (a.cy - b.cy).powi(2)).sqrt()
}

/// Where in a video an annotation is, in whole seconds (spec A9 `videoTime`,
/// `HH:MM:SS`; `00:00:00` for a photo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct VideoTime(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a video time is HH:MM:SS, got {0:?}")]
pub struct VideoTimeError(pub String);

impl VideoTime {
    /// A timestamp in seconds, rounded down (negative or not finite: 0).
    pub fn from_seconds(seconds: f64) -> Self {
        Self(if seconds.is_finite() && seconds > 0.0 {
            seconds.floor() as u64
        } else {
            0
        })
    }

    pub fn seconds(self) -> u64 {
        self.0
    }

    /// Reads `HH:MM:SS` back (hours may have more digits).
    pub fn parse(text: &str) -> Result<Self, VideoTimeError> {
        let bad = || VideoTimeError(text.to_string());
        let mut parts = text.split(':').map(|p| p.parse::<u64>().map_err(|_| bad()));
        let (Some(h), Some(m), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (h, m, s) = (h?, m?, s?);
        if m >= 60 || s >= 60 {
            return Err(bad());
        }
        Ok(Self(h * 3600 + m * 60 + s))
    }
}

impl std::fmt::Display for VideoTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.0;
        write!(
            f,
            "{:02}:{:02}:{:02}",
            total / 3600,
            (total / 60) % 60,
            total % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(class: u32, cx: f64, cy: f64, confidence: f64) -> Tracked {
        Tracked {
            class,
            cx,
            cy,
            w: 0.1,
            h: 0.2,
            confidence,
        }
    }

    #[test]
    fn the_first_frame_with_detections_is_accepted_and_empty_frames_never_are() {
        let mut gate = AnnotationGate::with(2.0, 0.0, 0.0);
        assert_eq!(gate.offer(0.0, &[]), Verdict::NoDetections);
        assert_eq!(gate.offer(0.5, &[b(0, 0.5, 0.5, 0.9)]), Verdict::Accepted);
    }

    #[test]
    fn a_change_within_the_gap_is_too_soon_and_after_it_is_accepted() {
        let mut gate = AnnotationGate::with(2.0, 0.0, 0.0);
        gate.offer(1.0, &[b(0, 0.5, 0.5, 0.9)]);
        assert_eq!(gate.offer(2.9, &[b(0, 0.7, 0.5, 0.9)]), Verdict::TooSoon);
        assert_eq!(gate.offer(3.0, &[b(0, 0.7, 0.5, 0.9)]), Verdict::Accepted);
    }

    #[test]
    fn a_static_scene_is_accepted_once() {
        let mut gate = AnnotationGate::with(2.0, 0.0, 0.0);
        let scene = [b(0, 0.5, 0.5, 0.9), b(1, 0.2, 0.3, 0.5)];
        let accepted = (0..300)
            .filter(|n| gate.offer(*n as f64 / 25.0, &scene) == Verdict::Accepted)
            .count();
        assert_eq!(accepted, 1);
        // Jitter below the floors is not movement either.
        let jittered = [b(0, 0.502, 0.5, 0.905), b(1, 0.2, 0.301, 0.5)];
        assert_eq!(gate.offer(20.0, &jittered), Verdict::Unchanged);
    }

    #[test]
    fn appear_vanish_move_and_confidence_rise_are_changes() {
        let base = [b(0, 0.5, 0.5, 0.5)];
        let cases: [(&[Tracked], f64, f64, Verdict); 6] = [
            (
                &[b(0, 0.5, 0.5, 0.5), b(0, 0.1, 0.1, 0.5)],
                0.0,
                0.0,
                Verdict::Accepted,
            ),
            (&[b(1, 0.5, 0.5, 0.5)], 0.0, 0.0, Verdict::Accepted),
            (&[b(0, 0.56, 0.5, 0.5)], 0.05, 0.0, Verdict::Accepted),
            (&[b(0, 0.54, 0.5, 0.5)], 0.05, 0.0, Verdict::Unchanged),
            (&[b(0, 0.5, 0.5, 0.7)], 0.0, 0.1, Verdict::Accepted),
            (&[b(0, 0.5, 0.5, 0.55)], 0.0, 0.1, Verdict::Unchanged),
        ];
        for (current, movement, rise, expected) in cases {
            let mut gate = AnnotationGate::with(1.0, movement, rise);
            gate.offer(0.0, &base);
            assert_eq!(gate.offer(1.0, current), expected, "{current:?}");
        }
        // A vanished object (two before, one now).
        let mut gate = AnnotationGate::with(1.0, 0.0, 0.0);
        gate.offer(0.0, &[b(0, 0.5, 0.5, 0.5), b(0, 0.1, 0.1, 0.5)]);
        assert_eq!(gate.offer(1.0, &base), Verdict::Accepted);
    }

    #[test]
    fn video_time_is_hours_minutes_seconds_and_reads_back() {
        let shown = |s: f64| VideoTime::from_seconds(s).to_string();
        assert_eq!(shown(0.0), "00:00:00");
        assert_eq!(shown(3.99), "00:00:03");
        assert_eq!(shown(3723.5), "01:02:03");
        assert_eq!(shown(f64::NAN), "00:00:00");
        assert_eq!(shown(-2.0), "00:00:00");
        for seconds in [0.0, 59.0, 3723.0, 400_000.0] {
            let time = VideoTime::from_seconds(seconds);
            assert_eq!(VideoTime::parse(&time.to_string()), Ok(time));
        }
        for bad in ["", "1:2", "00:60:00", "00:00:61", "a:b:c", "1:2:3:4"] {
            assert!(VideoTime::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Accepted frames are never closer than the gap, and the same boxes twice in
        /// a row are never both accepted.
        #[test]
        fn accepted_frames_respect_the_gap(
            gap in 0.0f64..5.0,
            frames in proptest::collection::vec((0.0f64..0.5, 0u32..2, 0.0f64..1.0, 0.0f64..1.0), 1..60),
        ) {
            let mut gate = AnnotationGate::with(gap, 0.0, 0.0);
            let mut t = 0.0;
            let mut last: Option<(f64, Vec<Tracked>)> = None;
            for (step, class, x, y) in frames {
                t += step;
                let boxes = vec![b(class, x, y, 0.5)];
                if gate.offer(t, &boxes) == Verdict::Accepted {
                    if let Some((at, previous)) = &last {
                        prop_assert!(t - at >= gap - 1e-6);
                        prop_assert!(previous != &boxes);
                    }
                    last = Some((t, boxes));
                }
            }
        }
    }
}
