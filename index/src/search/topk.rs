//! A bounded min-heap that keeps the best `cap` (score, id) pairs seen. Each search thread fills
//! its own and the heaps are merged at the end; because the order is total (score, then id),
//! the merged result does not depend on how the rows were split between threads.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// One result: the vector's id and its score (the dot product with the query: the cosine, as
/// both are normalised).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub score: f32,
}

/// A candidate, ordered so that "greater" means "better": higher score first, and on equal
/// scores the smaller id, which makes results deterministic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub score: f32,
    pub id: u64,
    pub row: usize,
}

impl Entry {
    fn better_than(&self, score: f32, id: u64) -> bool {
        match self.score.total_cmp(&score) {
            Ordering::Equal => self.id < id,
            o => o == Ordering::Greater,
        }
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

pub(crate) struct TopK {
    cap: usize,
    heap: BinaryHeap<Reverse<Entry>>,
}

impl TopK {
    pub fn new(cap: usize) -> Self {
        // Capped so a huge `k` on a small index does not allocate for nothing.
        TopK {
            cap,
            heap: BinaryHeap::with_capacity(cap.min(4096) + 1),
        }
    }

    /// Whether (score, id) would enter: the hot loop asks this before the (possibly costly)
    /// filter, so the filter runs only for rows that could make the list.
    #[inline]
    pub fn admits(&self, score: f32, id: u64) -> bool {
        if self.heap.len() < self.cap {
            return self.cap > 0;
        }
        match self.heap.peek() {
            Some(Reverse(worst)) => !worst.better_than(score, id),
            None => false,
        }
    }

    /// Adds the entry if it is among the best `cap`; call after `admits` returned true.
    pub fn push(&mut self, e: Entry) {
        if self.heap.len() < self.cap {
            self.heap.push(Reverse(e));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if e > worst.0 {
                *worst = Reverse(e);
            }
        }
    }

    pub fn merge(mut self, other: TopK) -> TopK {
        for Reverse(e) in other.heap {
            if self.admits(e.score, e.id) {
                self.push(e);
            }
        }
        self
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// The worst entry kept, when the heap is full (the cut-off any newcomer must beat).
    pub fn worst_if_full(&self) -> Option<Entry> {
        (self.heap.len() >= self.cap)
            .then(|| self.heap.peek().map(|r| r.0))
            .flatten()
    }

    /// The entries, best first.
    pub fn into_sorted(self) -> Vec<Entry> {
        // `into_sorted_vec` sorts ascending by `Reverse`, i.e. best first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(score: f32, id: u64) -> Entry {
        Entry { score, id, row: 0 }
    }

    #[test]
    fn keeps_the_best_and_breaks_ties_by_smaller_id() {
        let mut t = TopK::new(3);
        for (s, id) in [(0.5, 9), (0.9, 1), (0.5, 2), (0.1, 3), (0.5, 4), (0.9, 0)] {
            if t.admits(s, id) {
                t.push(e(s, id));
            }
        }
        let got: Vec<_> = t.into_sorted().iter().map(|e| (e.score, e.id)).collect();
        assert_eq!(got, [(0.9, 0), (0.9, 1), (0.5, 2)]);
    }

    #[test]
    fn zero_capacity_admits_nothing() {
        let t = TopK::new(0);
        assert!(!t.admits(1.0, 0));
        assert!(t.worst_if_full().is_none());
    }

    #[test]
    fn merge_equals_one_heap() {
        let items: Vec<(f32, u64)> = (0..50).map(|i| (((i * 37) % 11) as f32, i)).collect();
        let fill = |it: &[(f32, u64)]| {
            let mut t = TopK::new(7);
            for &(s, id) in it {
                if t.admits(s, id) {
                    t.push(e(s, id));
                }
            }
            t
        };
        let whole: Vec<_> = fill(&items).into_sorted().iter().map(|e| e.id).collect();
        let merged: Vec<_> = fill(&items[..20])
            .merge(fill(&items[20..]))
            .into_sorted()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(whole, merged);
    }
}
