//! One object, one detection, wherever the tiles are cut (docs/pipeline.md §5.2).
//!
//! A tile sees an object that lies across its border only in part; its neighbour sees
//! the rest, or all of it. Detections from different views are merged greedily, by
//! confidence, as SAHI's greedy non-maximum merging does — but a detection that touches
//! an inner border of its tile (a cut object) is matched by how much of it lies inside
//! the other box, while two detections seen whole are only matched as the same object
//! when they overlap as duplicates do (IoU), so two distinct neighbours stay two. And a
//! box cut at a border belongs only with boxes that reach that border: the object it is
//! part of goes on past the cut.

use crate::detection::{ClassId, Confidence, Detection};
use crate::geometry::{NormBox, Size};
use crate::tiling::Tile;

/// A box edge within this fraction of the tile's side from one of the tile's inner
/// borders counts as cut there: a model's box of a cut object ends a few pixels short of
/// the border as often as on it.
pub const CUT_MARGIN: f64 = 0.02;

/// A detection and how its view saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    detection: Detection,
    /// Index of the view it came from, in the frame plan's order.
    view: usize,
    /// The view is the whole frame added to a tiled frame's tiles.
    full_frame_pass: bool,
    /// The inner borders of its tile that its edges lie on: where the view saw only part
    /// of it.
    cuts: Cuts,
}

/// A side of a box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
    Top,
    Bottom,
}

impl Side {
    /// The box's coordinate on this side.
    fn of(self, bbox: &NormBox) -> f64 {
        let (x1, y1, x2, y2) = bbox.corners();
        match self {
            Side::Left => x1,
            Side::Right => x2,
            Side::Top => y1,
            Side::Bottom => y2,
        }
    }
}

/// A side of a box that lies on an inner border of its tile, in whole-frame units.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cut {
    side: Side,
    /// The border's coordinate (x for left and right, y for top and bottom).
    at: f64,
    margin: f64,
}

impl Cut {
    /// Whether `other` reaches this border (or goes past it), on the side the object
    /// goes on.
    fn reached_by(&self, other: &NormBox) -> bool {
        let edge = self.side.of(other);
        match self.side {
            Side::Left | Side::Top => edge <= self.at + self.margin,
            Side::Right | Side::Bottom => edge >= self.at - self.margin,
        }
    }

    /// Whether this cut is where `bbox` ends on its side.
    fn ends(&self, bbox: &NormBox) -> bool {
        (self.side.of(bbox) - self.at).abs() <= self.margin
    }

    /// Whether a box that has this cut can be part of one object with `other` (whose
    /// cuts are `other_cuts`): `other` reaches the border, or it is cut on the same side
    /// itself (its own view ended before it could).
    fn admits<'a>(&self, other: &NormBox, mut other_cuts: impl Iterator<Item = &'a Cut>) -> bool {
        self.reached_by(other) || other_cuts.any(|o| o.side == self.side && o.ends(other))
    }
}

/// Up to one cut per side.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Cuts([Option<Cut>; 4]);

impl Cuts {
    /// The inner borders of `tile` that `bbox` lies on (within [`CUT_MARGIN`]).
    fn of(bbox: &NormBox, tile: &Tile, frame: Size) -> Cuts {
        let (fw, fh) = (f64::from(frame.width()), f64::from(frame.height()));
        let mx = CUT_MARGIN * f64::from(tile.width()) / fw;
        let my = CUT_MARGIN * f64::from(tile.height()) / fh;
        let (right, bottom) = (tile.x() + tile.width(), tile.y() + tile.height());
        // A tile side on the frame's own edge is no cut.
        let inner_x = |px: u32| px > 0 && px < frame.width();
        let inner_y = |px: u32| px > 0 && px < frame.height();
        let cut = |inner: bool, side: Side, px: u32, full: f64, margin: f64| {
            let border = Cut {
                side,
                at: f64::from(px) / full,
                margin,
            };
            (inner && border.ends_within_tile(bbox)).then_some(border)
        };
        Cuts([
            cut(inner_x(tile.x()), Side::Left, tile.x(), fw, mx),
            cut(inner_x(right), Side::Right, right, fw, mx),
            cut(inner_y(tile.y()), Side::Top, tile.y(), fh, my),
            cut(inner_y(bottom), Side::Bottom, bottom, fh, my),
        ])
    }

    fn any(&self) -> bool {
        self.0.iter().any(Option::is_some)
    }

    fn iter(&self) -> impl Iterator<Item = &Cut> {
        self.0.iter().flatten()
    }
}

impl Cut {
    /// Whether a box inside the tile lies on this border: within the margin of it (boxes
    /// are clipped to the frame, not the tile, so a model may run a little past it).
    fn ends_within_tile(&self, bbox: &NormBox) -> bool {
        let edge = self.side.of(bbox);
        match self.side {
            Side::Left | Side::Top => edge - self.at <= self.margin,
            Side::Right | Side::Bottom => self.at - edge <= self.margin,
        }
    }
}

impl Sighting {
    /// `detection` (in whole-frame units) as seen by view number `view`, whose crop of
    /// `frame` is `tile`; `full_frame_pass` when that view is the extra whole-frame one.
    pub fn new(
        detection: Detection,
        view: usize,
        tile: &Tile,
        frame: Size,
        full_frame_pass: bool,
    ) -> Sighting {
        Sighting {
            detection,
            view,
            full_frame_pass,
            cuts: Cuts::of(detection.bbox(), tile, frame),
        }
    }

    pub fn detection(&self) -> &Detection {
        &self.detection
    }

    pub fn is_full_frame_pass(&self) -> bool {
        self.full_frame_pass
    }

    /// Whether its view saw only part of it: an edge lies on an inner border of its
    /// tile.
    pub fn is_cut(&self) -> bool {
        self.cuts.any()
    }

    fn class(&self) -> ClassId {
        self.detection.class()
    }

    fn bbox(&self) -> &NormBox {
        self.detection.bbox()
    }
}

/// Intersection over the area of `of` (0 for an empty box).
fn share_of(inter: f64, of: &NormBox) -> f64 {
    if of.area() > 0.0 {
        inter / of.area()
    } else {
        0.0
    }
}

/// The detections that became one object so far.
struct Group {
    /// What a newcomer is matched against: the union of the members (a box seen whole
    /// is not widened by another box seen whole).
    bbox: NormBox,
    class: ClassId,
    confidence: Confidence,
    /// Views that contributed: a view never sees one object twice after NMS, so two of
    /// its detections are two objects.
    views: Vec<usize>,
    /// Some member was seen whole.
    whole: bool,
    /// Every member's cuts: whatever joins must reach each of them.
    cuts: Vec<Cut>,
    /// The union of the tiles' members, as `bbox`, and whether one of them is whole.
    tiles: Option<(NormBox, bool)>,
    /// The full-frame pass's member.
    full_frame: Option<NormBox>,
}

impl Group {
    fn new(first: &Sighting) -> Group {
        let whole = !first.is_cut();
        Group {
            bbox: *first.bbox(),
            class: first.class(),
            confidence: first.detection.confidence(),
            views: vec![first.view],
            whole,
            cuts: first.cuts.iter().copied().collect(),
            tiles: (!first.full_frame_pass).then_some((*first.bbox(), whole)),
            full_frame: first.full_frame_pass.then_some(*first.bbox()),
        }
    }

    /// Takes `s` in when it is the same object; says whether it did.
    fn absorb(&mut self, s: &Sighting, threshold: f64) -> bool {
        if s.class() != self.class || self.views.contains(&s.view) {
            return false;
        }
        // The object goes on past every cut: a box that stops short of one (where its
        // own view did not end) is another object.
        if !s
            .cuts
            .iter()
            .all(|c| c.admits(&self.bbox, self.cuts.iter()))
            || !self.cuts.iter().all(|c| c.admits(s.bbox(), s.cuts.iter()))
        {
            return false;
        }
        let cut = s.is_cut();
        let inter = self.bbox.intersection(s.bbox());
        let same = match (self.whole, cut) {
            // Seen whole twice (tiles overlap): duplicates, as NMS judges them.
            (true, false) => self.bbox.iou(s.bbox()) > threshold,
            // A piece of the object lies inside it.
            (true, true) => share_of(inter, s.bbox()) > threshold,
            // The pieces so far lie inside an object seen whole.
            (false, false) => share_of(inter, &self.bbox) > threshold,
            // Two pieces overlap where the tiles do.
            (false, true) => self.bbox.containment_ratio(s.bbox()) > threshold,
        };
        if !same {
            return false;
        }
        self.views.push(s.view);
        self.cuts.extend(s.cuts.iter().copied());
        self.bbox = widened(self.bbox, self.whole, s);
        self.whole |= !cut;
        if s.full_frame_pass {
            self.full_frame = Some(*s.bbox());
        } else {
            self.tiles = Some(match self.tiles {
                Some((tiles, whole)) => (widened(tiles, whole, s), whole || !cut),
                None => (*s.bbox(), !cut),
            });
        }
        true
    }

    /// The tiles' union, which sees each part at the finest scale; on a side where that
    /// union ends at a cut (no tile saw the object end there), as far as the full-frame
    /// pass saw it go. Without tiles, the full-frame pass's box.
    fn into_detection(self) -> Detection {
        let bbox = match (self.tiles, self.full_frame) {
            (Some((tiles, _)), Some(full)) => {
                let (mut x1, mut y1, mut x2, mut y2) = tiles.corners();
                let (fx1, fy1, fx2, fy2) = full.corners();
                for cut in self.cuts.iter().filter(|c| c.ends(&tiles)) {
                    match cut.side {
                        Side::Left => x1 = x1.min(fx1),
                        Side::Right => x2 = x2.max(fx2),
                        Side::Top => y1 = y1.min(fy1),
                        Side::Bottom => y2 = y2.max(fy2),
                    }
                }
                NormBox::from_corners(x1, y1, x2, y2)
            }
            (Some((tiles, _)), None) => tiles,
            (None, Some(full)) => full,
            // A group always has its first member.
            (None, None) => self.bbox,
        };
        Detection::new(bbox, self.class, self.confidence)
    }
}

/// `bbox` with `s` taken in: the union, except that a box seen whole (`whole`) is not
/// widened by another box seen whole.
fn widened(bbox: NormBox, whole: bool, s: &Sighting) -> NormBox {
    if whole && !s.is_cut() {
        bbox
    } else {
        bbox.union(s.bbox())
    }
}

/// A full-frame detection of an object some tile saw whole (same class, IoU above
/// `threshold`) is dropped: the tile saw it at a finer scale.
fn drop_full_frame_repeats(sightings: Vec<Sighting>, threshold: f64) -> Vec<Sighting> {
    let (full, tiles): (Vec<Sighting>, Vec<Sighting>) =
        sightings.into_iter().partition(|s| s.full_frame_pass);
    let kept_full: Vec<Sighting> = full
        .into_iter()
        .filter(|f| {
            !tiles.iter().any(|t| {
                !t.is_cut() && t.class() == f.class() && t.bbox().iou(f.bbox()) > threshold
            })
        })
        .collect();
    tiles.into_iter().chain(kept_full).collect()
}

/// §5.2: the sightings of a tiled frame, one detection per object. Greedy by confidence
/// descending (stable): each detection not yet taken starts a group and takes in every
/// later one of the same class, from a view not yet in the group, that [`Group::absorb`]
/// finds to be the same object, passing over the rest again while the group grows. A
/// group keeps its first (highest) confidence.
pub fn merge_across_views(sightings: Vec<Sighting>, threshold: f64) -> Vec<Detection> {
    let mut sightings = drop_full_frame_repeats(sightings, threshold);
    sightings.sort_by(|a, b| {
        b.detection
            .confidence()
            .value()
            .total_cmp(&a.detection.confidence().value())
    });
    let mut taken = vec![false; sightings.len()];
    let mut out = Vec::new();
    for i in 0..sightings.len() {
        if taken[i] {
            continue;
        }
        taken[i] = true;
        let mut group = Group::new(&sightings[i]);
        // Until nothing more joins: a group that grew (a full-frame box joining the part
        // of an object larger than a tile) may now take in a part it passed over.
        let mut grew = true;
        while grew {
            grew = false;
            for j in i + 1..sightings.len() {
                if !taken[j] && group.absorb(&sightings[j], threshold) {
                    taken[j] = true;
                    grew = true;
                }
            }
        }
        out.push(group.into_detection());
    }
    out
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
