//! From per-view candidates to the frame's detections (docs/pipeline.md
//! §4.2–§5.5).

use crate::classes::ClassTable;
use crate::detection::{Candidate, ClassId, Confidence, Detection};
use crate::geometry::{NormBox, Size};
use crate::merge::{Sighting, merge_across_views};
use crate::settings::RecognitionSettings;
use crate::tiling::{FramePlan, View};

/// At most this many detections per view after NMS, and per frame (A5).
pub const MAX_DETECTIONS: usize = 300;
/// Cross-tile duplicates differ by at most this much in every coordinate.
pub const DUPLICATE_TOLERANCE: f64 = 0.01;

/// Stable sort by score, highest first.
fn sort_by_score(cands: &mut [Candidate]) {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
}

fn sort_by_confidence(dets: &mut [Detection]) {
    dets.sort_by(|a, b| b.confidence().value().total_cmp(&a.confidence().value()));
}

/// Class-wise greedy NMS (§4.2): a box is kept unless it overlaps an
/// already kept box of the same class with IoU > `iou`; at most `max` kept.
pub fn nms_class_wise(mut cands: Vec<Candidate>, iou: f32, max: usize) -> Vec<Candidate> {
    sort_by_score(&mut cands);
    let mut kept: Vec<Candidate> = Vec::with_capacity(cands.len().min(max));
    for c in cands {
        if kept.len() >= max {
            break;
        }
        let suppressed = kept
            .iter()
            .any(|k| k.class == c.class && k.bbox.iou(&c.bbox) > iou);
        if !suppressed {
            kept.push(c);
        }
    }
    kept
}

/// §4.3: inverse letterbox, tile origin, clip, normalise. Boxes that clip
/// to nothing are dropped; scores are clamped into 0..=1 (NaN dropped) so a
/// quirky model cannot produce an invalid confidence.
fn to_frame(view: &View, c: &Candidate, frame: Size) -> Option<Detection> {
    let lb = view.letterbox();
    let (ox, oy) = (f64::from(view.tile().x()), f64::from(view.tile().y()));
    let (x1, y1) = lb.to_view_f64(f64::from(c.bbox.x1), f64::from(c.bbox.y1));
    let (x2, y2) = lb.to_view_f64(f64::from(c.bbox.x2), f64::from(c.bbox.y2));
    let bbox = NormBox::from_pixel_corners(x1 + ox, y1 + oy, x2 + ox, y2 + oy, frame)?;
    let confidence = Confidence::new(f64::from(c.score).clamp(0.0, 1.0)).ok()?;
    Some(Detection::new(bbox, ClassId::new(c.class), confidence))
}

fn near_duplicate(a: &Detection, b: &Detection) -> bool {
    let (p, q) = (a.bbox(), b.bbox());
    a.class() == b.class()
        && (p.cx() - q.cx()).abs() <= DUPLICATE_TOLERANCE
        && (p.cy() - q.cy()).abs() <= DUPLICATE_TOLERANCE
        && (p.w() - q.w()).abs() <= DUPLICATE_TOLERANCE
        && (p.h() - q.h()).abs() <= DUPLICATE_TOLERANCE
}

/// §5.1: greedy by confidence (stable, so on a tie the later one goes).
/// Returns detections sorted by confidence descending.
pub fn remove_cross_tile_duplicates(dets: Vec<Detection>) -> Vec<Detection> {
    keep_distinct(dets, |d| d)
}

/// §5.1 over anything that holds a detection.
fn keep_distinct<T>(mut items: Vec<T>, det: impl Fn(&T) -> &Detection) -> Vec<T> {
    items.sort_by(|a, b| {
        det(b)
            .confidence()
            .value()
            .total_cmp(&det(a).confidence().value())
    });
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !kept.iter().any(|k| near_duplicate(det(k), det(&item))) {
            kept.push(item);
        }
    }
    kept
}

/// §5.3: walking by confidence descending, drop a detection whose
/// containment ratio with a kept one (any class) is > `threshold`.
pub fn remove_overlaps(mut dets: Vec<Detection>, threshold: f64) -> Vec<Detection> {
    sort_by_confidence(&mut dets);
    let mut kept: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if !kept
            .iter()
            .any(|k| k.bbox().containment_ratio(d.bbox()) > threshold)
        {
            kept.push(d);
        }
    }
    kept
}

/// §5.4: drops classes unknown to classes.json and detections whose longer
/// side, in metres (`gsd` m/px over a `frame` of pixels), exceeds the class's
/// MaxSizeM. A non-finite or non-positive `gsd` means "unknown": no size check.
pub fn filter_by_size(
    dets: Vec<Detection>,
    classes: &ClassTable,
    gsd: f64,
    frame: Size,
) -> Vec<Detection> {
    let gsd_known = gsd.is_finite() && gsd > 0.0;
    let (fw, fh) = (f64::from(frame.width()), f64::from(frame.height()));
    dets.into_iter()
        .filter(|d| {
            let Some(class) = classes.get(d.class().value()) else {
                return false;
            };
            let longer = (d.bbox().w() * fw).max(d.bbox().h() * fh);
            !gsd_known || longer * gsd <= class.max_size_m()
        })
        .collect()
}

impl FramePlan {
    /// §4–§5 for one frame. `per_view` holds each view's decoded candidates
    /// in `views()` order; a missing or extra entry is ignored.
    pub fn finish(
        &self,
        per_view: Vec<Vec<Candidate>>,
        layout_needs_nms: bool,
        nms_iou: f32,
        settings: &RecognitionSettings,
        classes: &ClassTable,
    ) -> Vec<Detection> {
        let threshold = settings.probability_threshold();
        let frame = self.frame();
        let full_frame_pass = self.has_full_frame_pass().then(|| self.views().len() - 1);
        let mut sightings = Vec::new();
        for (index, (view, mut cands)) in self.views().iter().zip(per_view).enumerate() {
            cands.retain(|c| f64::from(c.score) >= threshold);
            if layout_needs_nms {
                cands = nms_class_wise(cands, nms_iou, MAX_DETECTIONS);
            }
            sightings.extend(cands.iter().filter_map(|c| {
                let det = to_frame(view, c, frame)?;
                Some(Sighting::new(
                    det,
                    index,
                    view.tile(),
                    frame,
                    full_frame_pass == Some(index),
                ))
            }));
        }
        let mut dets: Vec<Detection> = if !self.is_tiled() {
            sightings.iter().map(|s| *s.detection()).collect()
        } else {
            // §5.1 among the tiles, as the original; the full-frame pass joins at §5.2.
            let (whole_frame, tiles): (Vec<Sighting>, Vec<Sighting>) = sightings
                .into_iter()
                .partition(Sighting::is_full_frame_pass);
            let mut distinct = keep_distinct(tiles, |s| s.detection());
            if settings.tile_merge() {
                distinct.extend(whole_frame);
                merge_across_views(distinct, settings.tile_merge_threshold())
            } else {
                distinct.iter().map(|s| *s.detection()).collect()
            }
        };
        dets = remove_overlaps(dets, settings.tracking_intersection_threshold());
        let mut dets = filter_by_size(dets, classes, self.gsd(), self.frame());
        sort_by_confidence(&mut dets);
        dets.truncate(MAX_DETECTIONS);
        dets
    }
}

#[cfg(test)]
#[path = "postprocess_tests.rs"]
mod tests;
