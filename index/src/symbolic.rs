//! The symbolic index beside the vectors: for each passage, the hashes of its interval and
//! duration-ratio 3-grams (the same in any key and tempo, as folk tune finders match), and an
//! inverted index that scores passages by the n-grams they share with a query.
//!
//! It catches what a music vector may blur: a passage quoted in another key, or with a few
//! notes changed, still shares most of its n-grams with the original.

use std::collections::HashMap;

use tunelens_models::abc::notes::{interval_ngrams, VoiceNotes};

/// Steps per n-gram (so four notes each): long enough to be specific to a tune, short enough
/// that one changed note leaves most of a 4-bar passage's n-grams intact.
pub const NGRAM_STEPS: usize = 3;

/// The n-gram hashes of bars `first_bar..=last_bar` (1-based) of a voice, sorted and without
/// repeats. 32 bits of the 64-bit hash: collisions are rare at corpus sizes and the records
/// stay small.
pub fn passage_ngrams(notes: &VoiceNotes, first_bar: u32, last_bar: u32) -> Vec<u32> {
    let bars = notes.bars(first_bar.saturating_sub(1) as usize..last_bar as usize);
    let mut grams: Vec<u32> = interval_ngrams(bars, NGRAM_STEPS)
        .into_iter()
        .map(|h| (h >> 32) as u32 ^ h as u32)
        .collect();
    grams.sort_unstable();
    grams.dedup();
    grams
}

/// The n-gram similarity of every row to one query.
pub struct RowScores<'a> {
    index: &'a SymbolicIndex,
    query_len: usize,
    shared: Vec<u16>,
    /// The rows sharing at least one n-gram, in no order.
    touched: Vec<u32>,
}

impl RowScores<'_> {
    /// Dice similarity of `row` (0 when it shares nothing).
    pub fn get(&self, row: u32) -> f32 {
        let n = self.shared.get(row as usize).copied().unwrap_or(0);
        if n == 0 {
            return 0.0;
        }
        let total = self.query_len as f32 + self.index.sizes[row as usize] as f32;
        2.0 * f32::from(n) / total.max(1.0)
    }

    /// (row, score) of every row sharing an n-gram.
    pub fn iter(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.touched.iter().map(|&r| (r, self.get(r)))
    }

    /// The `n` best (row, score), best first, ties by row.
    pub fn best(&self, n: usize) -> Vec<(u32, f32)> {
        let mut all: Vec<(u32, f32)> = self.iter().collect();
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if all.len() > n && n > 0 {
            all.select_nth_unstable_by(n - 1, order);
            all.truncate(n);
        }
        all.sort_by(order);
        all
    }
}

/// n-gram → the rows that hold it.
#[derive(Debug, Default)]
pub struct SymbolicIndex {
    postings: HashMap<u32, Vec<u32>>,
    /// Each row's n-gram count, or [`REMOVED`].
    sizes: Vec<u32>,
    /// Postings of live rows, and of removed rows not yet swept.
    total: usize,
    stale: usize,
}

const REMOVED: u32 = u32::MAX;

impl SymbolicIndex {
    /// Adds row `sizes.len()` with its (sorted, distinct) n-grams.
    pub fn push(&mut self, grams: &[u32]) {
        let row = self.sizes.len() as u32;
        self.insert(row, grams);
    }

    /// Sets row `row` (any id) to its (sorted, distinct) n-grams; the row must be new or
    /// removed first.
    pub fn insert(&mut self, row: u32, grams: &[u32]) {
        if self.sizes.len() <= row as usize {
            self.sizes.resize(row as usize + 1, 0);
        }
        for &g in grams {
            let rows = self.postings.entry(g).or_default();
            // Lists are shrunk to fit after a bulk load; doubling one for each row an edit
            // adds would grow every common n-gram's list by half its size at the first edit
            // (heaptrack: 9 MB over the daemon bench). An eighth more keeps pushes amortised.
            if rows.len() == rows.capacity() {
                rows.reserve_exact((rows.len() / 8).max(4));
            }
            rows.push(row);
        }
        self.sizes[row as usize] = grams.len() as u32;
        self.total += grams.len();
    }

    /// Gives back the spare capacity of the postings lists (each grew by doubling).
    pub fn shrink_to_fit(&mut self) {
        for rows in self.postings.values_mut() {
            rows.shrink_to_fit();
        }
        self.postings.shrink_to_fit();
        self.sizes.shrink_to_fit();
    }

    /// Removes row `row`. Its postings are dropped lazily (a common n-gram's list can hold
    /// most rows), all at once when they are an eighth of the live ones: a daemon's edits
    /// remove rows all day, and at one half the stale postings of music21 could reach ~20 MB
    /// before a sweep (the soak's live heap grew ~11 MB in 60 s with that rule, and held flat
    /// over 6,500 edits with this one). A sweep goes over the ~6M postings once every few
    /// thousand edits.
    pub fn remove(&mut self, row: u32) {
        let Some(size) = self.sizes.get_mut(row as usize) else {
            return;
        };
        if *size == REMOVED {
            return;
        }
        let grams = std::mem::replace(size, REMOVED) as usize;
        self.stale += grams;
        self.total = self.total.saturating_sub(grams);
        if self.stale > (self.total / 8).max(1024) {
            let sizes = &self.sizes;
            self.postings.retain(|_, rows| {
                rows.retain(|&r| sizes[r as usize] != REMOVED);
                !rows.is_empty()
            });
            self.stale = 0;
        }
    }

    /// Dice similarity (2 × shared / (query + row)) of every row sharing an n-gram with
    /// `query` (sorted, distinct).
    pub fn scores(&self, query: &[u32]) -> HashMap<u32, f32> {
        let s = self.score_rows(query);
        s.iter().collect()
    }

    /// As [`scores`](Self::scores), counted in a dense array (a common n-gram's postings can
    /// hold most rows, and a hash map per posting was most of a hover's time).
    pub fn score_rows(&self, query: &[u32]) -> RowScores<'_> {
        let mut shared = vec![0u16; self.sizes.len()];
        let mut touched = Vec::new();
        for g in query {
            for &row in self.postings.get(g).map_or(&[][..], Vec::as_slice) {
                let r = row as usize;
                if self.sizes[r] == REMOVED {
                    continue;
                }
                if shared[r] == 0 {
                    touched.push(row);
                }
                shared[r] = shared[r].saturating_add(1);
            }
        }
        RowScores {
            index: self,
            query_len: query.len(),
            shared,
            touched,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunelens_models::abc::{notes::voice_notes, parse, SourceText};

    fn grams(abc: &str) -> Vec<u32> {
        let source = SourceText::from_text(abc.to_owned());
        let file = parse(&source);
        let notes = voice_notes(&source, &file.tunes[0], 0);
        passage_ngrams(&notes, 1, 4)
    }

    #[test]
    fn transposed_passages_share_all_ngrams() {
        let g = grams("X:1\nL:1/8\nK:G\nGAB c2d|e2f g3|gfe dcB|AGF G3|\n");
        let d = grams("X:1\nL:1/8\nK:D\nDEF G2A|B2c d3|dcB AGF|EDC D3|\n");
        assert!(!g.is_empty());
        assert_eq!(g, d);
        let mut index = SymbolicIndex::default();
        index.push(&g);
        index.push(&grams("X:1\nL:1/8\nK:C\nCCC CCC|EEE EEE|\n"));
        let scores = index.scores(&d);
        assert_eq!(scores.get(&0), Some(&1.0));
        assert!(scores.get(&1).copied().unwrap_or(0.0) < 0.2);
    }
}
