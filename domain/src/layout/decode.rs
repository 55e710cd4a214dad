//! Raw output → candidates in model-input pixels (docs/pipeline.md §3).

use super::{LayoutError, OutputLayout, shape_text};
use crate::detection::Candidate;
use crate::geometry::PixelBox;

/// Decodes one batch item of `output` (shape `dims` = `[B, a, b]`) and keeps
/// candidates with `score ≥ threshold`. The threshold is f64 because the
/// reference compares float64 scores with the float64 setting. Candidates
/// with a non-finite box or score are skipped; class indexes that are
/// negative or not finite are skipped (end-to-end rows).
pub fn decode_candidates(
    layout: OutputLayout,
    output: &[f32],
    dims: &[usize],
    batch_index: usize,
    threshold: f64,
) -> Result<Vec<Candidate>, LayoutError> {
    let shape = || shape_text(dims);
    let &[batch, a, b] = dims else {
        return Err(LayoutError::Rank { shape: shape() });
    };
    let expected = batch.checked_mul(a).and_then(|x| x.checked_mul(b));
    if expected != Some(output.len()) {
        return Err(LayoutError::BufferLength {
            shape: shape(),
            expected: expected.unwrap_or(usize::MAX),
            got: output.len(),
        });
    }
    if batch_index >= batch {
        return Err(LayoutError::BatchIndex {
            index: batch_index,
            batch,
        });
    }
    let item = &output[batch_index * a * b..(batch_index + 1) * a * b];
    let mismatch = || LayoutError::ShapeMismatch {
        layout: layout.name(),
        shape: shape(),
    };
    let keep = |score: f32| f64::from(score) >= threshold;
    let mut out = Vec::new();
    match layout {
        OutputLayout::EndToEnd => {
            if b != 6 {
                return Err(mismatch());
            }
            for row in item.chunks_exact(6) {
                let (score, cls) = (row[4], row[5]);
                // Truncation like numpy's astype(int64).
                let cls = cls.trunc();
                if !keep(score) || !(0.0..=u32::MAX as f32).contains(&cls) {
                    continue;
                }
                push(
                    &mut out,
                    PixelBox::new(row[0], row[1], row[2], row[3]),
                    score,
                    cls as u32,
                );
            }
        }
        OutputLayout::UltralyticsV8 { classes } => {
            if classes == 0 || a != 4 + classes {
                return Err(mismatch());
            }
            // Transposed: row r of the tensor is feature r for all N
            // candidates, so candidate i reads with stride N.
            let n = b;
            for i in 0..n {
                let (score, cls) = best(item[4 * n + i..].iter().step_by(n).take(classes));
                if !keep(score) {
                    continue;
                }
                let bbox =
                    PixelBox::from_center(item[i], item[n + i], item[2 * n + i], item[3 * n + i]);
                push(&mut out, bbox, score, cls);
            }
        }
        OutputLayout::YoloV5 { classes } => {
            if classes == 0 || b != 5 + classes {
                return Err(mismatch());
            }
            for row in item.chunks_exact(b) {
                let (class_score, cls) = best(row[5..].iter());
                let score = f64::from(row[4]) * f64::from(class_score);
                if score < threshold || score.is_nan() {
                    continue;
                }
                let bbox = PixelBox::from_center(row[0], row[1], row[2], row[3]);
                push(&mut out, bbox, score as f32, cls);
            }
        }
    }
    Ok(out)
}

/// Highest score and its index; the first wins a tie, NaN never wins.
fn best<'a>(scores: impl Iterator<Item = &'a f32>) -> (f32, u32) {
    let mut top = (f32::NEG_INFINITY, 0u32);
    for (i, &s) in scores.enumerate() {
        if s > top.0 {
            top = (s, i as u32);
        }
    }
    top
}

fn push(out: &mut Vec<Candidate>, bbox: PixelBox, score: f32, class: u32) {
    let finite = [bbox.x1, bbox.y1, bbox.x2, bbox.y2, score]
        .iter()
        .all(|v| v.is_finite());
    if finite {
        out.push(Candidate { bbox, score, class });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ultralytics_columns() {
        // Two candidates, two classes, transposed [1, 6, 2].
        let rows = [
            [200.0, 250.0, 200.0, 300.0, 0.875, 0.0625],
            [490.0, 80.0, 80.0, 80.0, 0.5, 0.5],
        ];
        let mut t = vec![0.0f32; 12];
        for (i, row) in rows.iter().enumerate() {
            for (f, v) in row.iter().enumerate() {
                t[f * 2 + i] = *v;
            }
        }
        let c = decode_candidates(
            OutputLayout::UltralyticsV8 { classes: 2 },
            &t,
            &[1, 6, 2],
            0,
            0.25,
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].bbox, PixelBox::new(100.0, 100.0, 300.0, 400.0));
        assert_eq!((c[0].score, c[0].class), (0.875, 0));
        // Tie → first class.
        assert_eq!((c[1].score, c[1].class), (0.5, 0));
        let high = decode_candidates(
            OutputLayout::UltralyticsV8 { classes: 2 },
            &t,
            &[1, 6, 2],
            0,
            0.6,
        )
        .unwrap();
        assert_eq!(high.len(), 1);
    }

    #[test]
    fn yolov5_rows() {
        let t = [
            200.0, 250.0, 200.0, 300.0, 0.75, 0.875, 0.125, // 0.65625, class 0
            50.0, 50.0, 60.0, 60.0, 0.25, 0.875, 0.0, // 0.21875: below
            480.0, 400.0, 160.0, 200.0, 0.5, 0.25, 1.0, // 0.5, class 1
        ];
        let c = decode_candidates(OutputLayout::YoloV5 { classes: 2 }, &t, &[1, 3, 7], 0, 0.25)
            .unwrap();
        assert_eq!(
            c.iter().map(|c| (c.score, c.class)).collect::<Vec<_>>(),
            [(0.65625, 0), (0.5, 1)]
        );
    }

    #[test]
    fn end_to_end_rows_and_batches() {
        let mut t = vec![
            100.0, 120.0, 300.0, 400.0, 0.875, 0.0, //
            200.0, 500.0, 260.0, 600.0, 0.25, 1.0, // exactly at threshold: kept
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, // padding
        ];
        t.extend([
            1.0,
            1.0,
            2.0,
            2.0,
            0.9,
            3.0,
            0.0,
            0.0,
            1.0,
            1.0,
            0.9,
            -2.0,
            0.0,
            0.0,
            1.0,
            1.0,
            f32::NAN,
            0.0,
        ]);
        let c = decode_candidates(OutputLayout::EndToEnd, &t, &[2, 3, 6], 0, 0.25).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[1].score, c[1].class), (0.25, 1));
        let c = decode_candidates(OutputLayout::EndToEnd, &t, &[2, 3, 6], 1, 0.25).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].class, 3);
    }

    #[test]
    fn shape_errors() {
        let t = [0.0f32; 12];
        assert_eq!(
            decode_candidates(OutputLayout::EndToEnd, &t, &[1, 3, 6], 0, 0.1)
                .unwrap_err()
                .to_string(),
            "output buffer has 12 values but shape [1, 3, 6] needs 18"
        );
        assert_eq!(
            decode_candidates(OutputLayout::EndToEnd, &t, &[1, 2, 6], 1, 0.1)
                .unwrap_err()
                .to_string(),
            "batch index 1 is outside the output batch of 1"
        );
        assert_eq!(
            decode_candidates(
                OutputLayout::UltralyticsV8 { classes: 3 },
                &t,
                &[1, 6, 2],
                0,
                0.1
            )
            .unwrap_err()
            .to_string(),
            "output layout ultralytics does not fit output shape [1, 6, 2]"
        );
        assert!(decode_candidates(OutputLayout::EndToEnd, &t, &[12], 0, 0.1).is_err());
        assert!(
            decode_candidates(OutputLayout::EndToEnd, &t, &[usize::MAX, 2, 6], 0, 0.1).is_err()
        );
    }
}
