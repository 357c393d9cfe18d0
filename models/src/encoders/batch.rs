//! Length-bucketed batching: items are sorted by length and packed into batches under a count
//! and a padded-size budget, so a batch pads little. Results go back in input order.

/// Limits for one forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most items in one batch.
    pub max_items: usize,
    /// Most padded positions (items x longest) in one batch.
    pub max_positions: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        // 16 x 512 keeps the attention scratch and activations of a 768-wide model in a few
        // hundred MB on the CPU.
        Self {
            max_items: 16,
            max_positions: 16 * 512,
        }
    }
}

/// What to do with a tune longer than the model's patch limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LongTunes {
    /// Keep the first `limit` patches, as the reference does (needed for parity).
    #[default]
    Truncate,
    /// Split into `limit`-sized segments, embed each and average the vectors weighted by
    /// segment length.
    Segment,
}

/// Groups item indices into batches; every index appears once. Items longer than the position
/// budget still get a batch of their own.
pub fn plan(lengths: &[usize], limits: BatchLimits) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending, so the newest item is the longest of the batch.
        let padded = (current.len() + 1) * lengths[i];
        if !current.is_empty()
            && (current.len() >= limits.max_items.max(1) || padded > limits.max_positions)
        {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// The `(start, len)` pieces of a tune of `len` patches under `limit`.
pub fn segments(len: usize, limit: usize, mode: LongTunes) -> Vec<(usize, usize)> {
    let limit = limit.max(1);
    match mode {
        LongTunes::Truncate => vec![(0, len.min(limit))],
        LongTunes::Segment => (0..len)
            .step_by(limit)
            .map(|s| (s, limit.min(len - s)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_every_item_once_within_limits() {
        let lengths = [5, 1, 9, 3, 3, 7, 2, 100];
        let limits = BatchLimits {
            max_items: 3,
            max_positions: 20,
        };
        let batches = plan(&lengths, limits);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for b in &batches {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            assert!(b.len() <= 3);
            assert!(b.len() == 1 || b.len() * longest <= 20, "{b:?}");
        }
    }

    #[test]
    fn segments_split_and_truncate() {
        assert_eq!(segments(5, 2, LongTunes::Segment), [(0, 2), (2, 2), (4, 1)]);
        assert_eq!(segments(5, 2, LongTunes::Truncate), [(0, 2)]);
        assert_eq!(segments(2, 8, LongTunes::Segment), [(0, 2)]);
    }
}
