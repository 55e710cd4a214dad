//! Matching two runs' detections (JSON, the service's wire shape): the parity and
//! accuracy checks.

use serde_json::Value;

/// What two runs must agree on.
#[derive(Debug, Clone, Copy)]
pub struct Agreement {
    /// Largest |Δconfidence| of a pair.
    pub confidence: f64,
    /// Smallest IoU of a pair.
    pub iou: f64,
}

pub fn iou(a: &Value, b: &Value) -> f64 {
    let c = |d: &Value, k: &str| d[k].as_f64().unwrap();
    let corners = |d: &Value| {
        (
            c(d, "centerX") - c(d, "width") / 2.0,
            c(d, "centerY") - c(d, "height") / 2.0,
            c(d, "centerX") + c(d, "width") / 2.0,
            c(d, "centerY") + c(d, "height") / 2.0,
        )
    };
    let (ax1, ay1, ax2, ay2) = corners(a);
    let (bx1, by1, bx2, by2) = corners(b);
    let inter = (ax2.min(bx2) - ax1.max(bx1)).max(0.0) * (ay2.min(by2) - ay1.max(by1)).max(0.0);
    let union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

pub fn confidence(d: &Value) -> f64 {
    d["confidence"].as_f64().unwrap()
}

/// Every detection of `wanted` at or above `floor` has a partner in `found`: same class
/// and label, IoU and confidence within `agreement`. Partners are taken greedily by IoU,
/// each used once. Returns the largest confidence difference and the smallest IoU of
/// the pairs.
pub fn all_found(
    file: &str,
    what: &str,
    wanted: &[Value],
    found: &[Value],
    floor: f64,
    agreement: Agreement,
) -> (f64, f64) {
    let mut unmatched: Vec<&Value> = found.iter().collect();
    let (mut worst_confidence, mut worst_iou) = (0.0_f64, 1.0_f64);
    for detection in wanted.iter().filter(|d| confidence(d) >= floor) {
        let best = unmatched
            .iter()
            .enumerate()
            .filter(|(_, f)| f["classNum"] == detection["classNum"])
            .max_by(|(_, a), (_, b)| iou(detection, a).total_cmp(&iou(detection, b)))
            .map(|(i, _)| i);
        let Some(best) = best else {
            panic!("{file}: {what} {detection} has no partner of its class in {found:?}");
        };
        let partner = unmatched.remove(best);
        assert!(
            iou(detection, partner) >= agreement.iou,
            "{file}: {what} {detection} vs {partner}: IoU {:.3}",
            iou(detection, partner)
        );
        assert!(
            (confidence(detection) - confidence(partner)).abs() <= agreement.confidence,
            "{file}: {what} {detection} vs {partner}: confidence"
        );
        assert_eq!(detection["label"], partner["label"], "{file}");
        worst_confidence =
            worst_confidence.max((confidence(detection) - confidence(partner)).abs());
        worst_iou = worst_iou.min(iou(detection, partner));
    }
    (worst_confidence, worst_iou)
}

/// One run's answers: `(file, detections)` per input, in order.
pub type Answers = [(String, Vec<serde_json::Value>)];

/// What [`both_ways`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Matched {
    /// Reference detections at or above the floor, each with its partner.
    pub found: usize,
    pub worst_confidence: f64,
    pub worst_iou: f64,
}

/// Every reference detection at or above `floor` has a partner among `ours`, and every
/// detection of ours above `floor` + the tolerance has one among the reference's, file
/// by file. `label(file)` names a file in a failure; `names` are (reference, ours).
pub fn both_ways(
    ours: &Answers,
    reference: &Answers,
    floor: f64,
    agreement: Agreement,
    names: (&str, &str),
    label: impl Fn(&str) -> String,
) -> Matched {
    assert_eq!(ours.len(), reference.len());
    let mut matched = Matched {
        found: 0,
        worst_confidence: 0.0,
        worst_iou: 1.0,
    };
    for ((file, ours), (reference_file, theirs)) in ours.iter().zip(reference) {
        assert_eq!(file, reference_file);
        let name = std::path::Path::new(file)
            .file_name()
            .unwrap()
            .to_string_lossy();
        let label = label(&name);
        let (delta, iou) = all_found(&label, names.0, theirs, ours, floor, agreement);
        let floor_ours = floor + agreement.confidence;
        all_found(&label, names.1, ours, theirs, floor_ours, agreement);
        matched.found += theirs.iter().filter(|d| confidence(d) >= floor).count();
        matched.worst_confidence = matched.worst_confidence.max(delta);
        matched.worst_iou = matched.worst_iou.min(iou);
    }
    matched
}
