//! How many items one call of a model may carry, from the shapes the model declares
//! (docs/pipeline.md §7 has the rule for operators).
//!
//! A dynamic batch on the input alone is not enough: end-to-end exports often declare
//! `[batch, 3, h, w]` in and `[1, 300, 6]` out, and their graph (a Squeeze or Reshape of
//! the batch axis) only runs at batch 1.

use ports::BatchSize;

/// The cap on a dynamic batch when `[engine] max_batch` is not set.
pub const DEFAULT_MAX_BATCH: usize = 8;

/// The batch the engine will use, and why (logged when the engine starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerivedBatch {
    pub batch: BatchSize,
    pub reason: String,
}

/// Dimensions as ONNX Runtime reports them: a value ≤ 0 is dynamic.
fn fixed(dim: Option<&i64>) -> Option<usize> {
    dim.and_then(|&d| usize::try_from(d).ok())
        .filter(|&d| d > 0)
}

/// The rule, first match wins:
/// 1. the input's leading dimension is fixed at `n` → `Fixed(n)` (ONNX Runtime refuses
///    any other batch on that input, so `max_batch` cannot change it);
/// 2. `max_batch` is set → `Dynamic { max: max_batch }` (the operator's word, even
///    against the outputs; a model that then refuses a batch falls back to one view per
///    call at run time);
/// 3. an output's leading dimension is fixed → `Fixed(n)` with the smallest such `n`
///    (`[1, 300, 6]` → 1: the graph only runs at that batch);
/// 4. otherwise → `Dynamic { max: DEFAULT_MAX_BATCH }`.
pub(crate) fn derive_batch(
    input: &[i64],
    outputs: &[(&str, &[i64])],
    max_batch: Option<usize>,
) -> DerivedBatch {
    if let Some(n) = fixed(input.first()) {
        let ignored = match max_batch {
            Some(m) if m != n => format!(" ([engine] max_batch = {m} ignored)"),
            _ => String::new(),
        };
        return DerivedBatch {
            batch: BatchSize::Fixed(n),
            reason: format!("the input's batch is fixed at {n}{ignored}"),
        };
    }
    if let Some(m) = max_batch {
        return DerivedBatch {
            batch: BatchSize::Dynamic { max: m.max(1) },
            reason: format!("dynamic input batch, [engine] max_batch = {m}"),
        };
    }
    let smallest = outputs
        .iter()
        .filter_map(|(name, dims)| fixed(dims.first()).map(|n| (n, *name)))
        .min_by_key(|(n, _)| *n);
    if let Some((n, name)) = smallest {
        return DerivedBatch {
            batch: BatchSize::Fixed(n),
            reason: format!("output {name} has a fixed leading dimension {n}"),
        };
    }
    DerivedBatch {
        batch: BatchSize::Dynamic {
            max: DEFAULT_MAX_BATCH,
        },
        reason: format!("dynamic batch everywhere, capped at {DEFAULT_MAX_BATCH}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DYNAMIC_IN: &[i64] = &[-1, 3, 640, 640];
    const E2E_OUT: &[i64] = &[1, 300, 6];
    const DYNAMIC_OUT: &[i64] = &[-1, 6, 8400];

    fn batch(input: &[i64], outputs: &[&[i64]], max_batch: Option<usize>) -> BatchSize {
        let named: Vec<(&str, &[i64])> = outputs.iter().map(|dims| ("out", *dims)).collect();
        derive_batch(input, &named, max_batch).batch
    }

    #[test]
    fn a_fixed_input_batch_is_the_batch() {
        assert_eq!(
            batch(&[4, 3, 640, 640], &[&[4, 6, 8400]], None),
            BatchSize::Fixed(4)
        );
        assert_eq!(
            batch(&[1, 3, 640, 640], &[DYNAMIC_OUT], None),
            BatchSize::Fixed(1)
        );
        // Even where an output disagrees: the input is what ONNX Runtime checks.
        assert_eq!(
            batch(&[4, 3, 640, 640], &[E2E_OUT], None),
            BatchSize::Fixed(4)
        );
    }

    #[test]
    fn a_fixed_input_batch_wins_over_max_batch() {
        let derived = derive_batch(&[2, 3, 640, 640], &[("out", DYNAMIC_OUT)], Some(8));
        assert_eq!(derived.batch, BatchSize::Fixed(2));
        assert!(
            derived.reason.contains("max_batch = 8 ignored"),
            "{derived:?}"
        );
    }

    #[test]
    fn a_fixed_leading_one_on_any_output_means_one() {
        assert_eq!(batch(DYNAMIC_IN, &[E2E_OUT], None), BatchSize::Fixed(1));
        // One output of several is enough.
        assert_eq!(
            batch(DYNAMIC_IN, &[DYNAMIC_OUT, &[1, 32, 160, 160]], None),
            BatchSize::Fixed(1)
        );
        let derived = derive_batch(DYNAMIC_IN, &[("output0", E2E_OUT)], None);
        assert!(derived.reason.contains("output0"), "{derived:?}");
    }

    #[test]
    fn a_fixed_leading_n_on_an_output_means_n_and_the_smallest_wins() {
        assert_eq!(
            batch(DYNAMIC_IN, &[&[4, 300, 6]], None),
            BatchSize::Fixed(4)
        );
        assert_eq!(
            batch(DYNAMIC_IN, &[&[4, 300, 6], &[2, 300]], None),
            BatchSize::Fixed(2)
        );
    }

    #[test]
    fn dynamic_everywhere_is_dynamic_up_to_the_default_cap() {
        assert_eq!(
            batch(DYNAMIC_IN, &[DYNAMIC_OUT], None),
            BatchSize::Dynamic {
                max: DEFAULT_MAX_BATCH
            }
        );
        // A symbolic name is reported as 0, a free one as -1: both dynamic.
        assert_eq!(
            batch(&[0, 3, 640, 640], &[&[0, 300, 6], &[]], None),
            BatchSize::Dynamic {
                max: DEFAULT_MAX_BATCH
            }
        );
        assert_eq!(
            batch(&[], &[], None),
            BatchSize::Dynamic {
                max: DEFAULT_MAX_BATCH
            }
        );
    }

    #[test]
    fn max_batch_overrides_the_outputs_and_caps_a_dynamic_batch() {
        assert_eq!(
            batch(DYNAMIC_IN, &[E2E_OUT], Some(4)),
            BatchSize::Dynamic { max: 4 }
        );
        assert_eq!(
            batch(DYNAMIC_IN, &[DYNAMIC_OUT], Some(2)),
            BatchSize::Dynamic { max: 2 }
        );
        assert_eq!(
            batch(DYNAMIC_IN, &[DYNAMIC_OUT], Some(0)),
            BatchSize::Dynamic { max: 1 },
            "0 means one view per call"
        );
    }
}
