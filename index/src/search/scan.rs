//! Queries: scanning all rows for the top k, on all cores.
//!
//! Rows are cut into chunks; each rayon task scans its chunks into its own bounded heap and the
//! heaps are merged. Scores are computed a block at a time by the SIMD kernels, then offered to
//! the heap; the filter runs only for rows good enough to enter it.
//!
//! In `Int8Rerank` mode the first pass scores the int8 copy and keeps a shortlist of
//! `k + shortlist_extra` rows, which are then re-scored from the f32 rows. Why that is exact:
//! with `v = s·c + e` (‖e‖ ≤ err, likewise for the query), `v·q` differs from the int8 score
//! by at most `err_v·‖q‖ + ‖s·c‖·err_q ≤ err_v + (1 + err_v)·err_q`. A row left out of the
//! shortlist scored at most the shortlist's worst int8 score `A`, so its true score is at most
//! `A + bound`. If that is below the k-th re-scored score, no row left out can be in the top k.
//! If not, a second pass re-scores from f32 every row whose int8 score (kept from the first
//! pass) plus its bound reaches the k-th score; slower, but still exact.

use std::ops::Range;

use rayon::prelude::*;

use super::index::{FlatIndex, Int8Rows, Precision, ScanMode};
use super::kernels::{dot_f32, dot_i8_f32, scores_f32, scores_i8};
use super::quant::quantise;
use super::topk::{Entry, Hit, TopK};
use super::vector::normalised;
use super::SearchError;

/// A row filter: `true` keeps the id. `Sync` because it is called from every search thread.
pub type Filter<'a> = &'a (dyn Fn(u64) -> bool + Sync);

/// Rows per parallel task: large enough to make task overhead negligible, small enough for
/// rayon to balance the load on a machine whose cores are shared with other work.
pub(crate) const CHUNK_ROWS: usize = 4096;
/// Rows per kernel call: the scores of one block live on the stack.
const BLOCK_ROWS: usize = 256;
/// Below this many components a scan takes microseconds and threads would only add overhead.
const PARALLEL_MIN_COMPONENTS: usize = 1 << 18;

/// What a query did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchStats {
    /// The mode that ran: small indexes are always scanned exactly.
    pub mode: Option<ScanMode>,
    /// Rows kept by the int8 pass for re-scoring.
    pub shortlist: usize,
    /// Rows scored from their f32 vectors after the int8 pass (shortlist and second pass).
    pub rescored: usize,
    /// Whether the bound could not confirm the shortlist and a second pass ran.
    pub second_pass: bool,
}

impl FlatIndex {
    /// The `k` rows most similar to `query` (normalised here, so scores are cosines) among those
    /// `filter` keeps, best first; equal scores are ordered by id. Fewer than `k` when fewer
    /// rows pass.
    pub fn top_k(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<Vec<Hit>, SearchError> {
        self.top_k_with_stats(query, k, filter)
            .map(|(hits, _)| hits)
    }

    /// [`top_k`](Self::top_k), also saying how the query was answered.
    pub fn top_k_with_stats(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<(Vec<Hit>, SearchStats), SearchError> {
        let q = self.turned_query(query)?;
        let mut stats = SearchStats::default();
        if k == 0 || self.is_empty() {
            return Ok((Vec::new(), stats));
        }
        let shortlist = k.saturating_add(self.shortlist_extra);
        let top = match &self.int8 {
            // A shortlist as long as the index would re-score every row anyway.
            Some(int8) if self.mode == ScanMode::Int8Rerank && shortlist < self.len() => {
                stats.mode = Some(ScanMode::Int8Rerank);
                self.scan_int8(int8, &q, k, shortlist, filter, &mut stats)
            }
            _ => {
                stats.mode = Some(ScanMode::Exact);
                self.scan_f32(&q, k, filter)
            }
        };
        let hits = top
            .into_sorted()
            .into_iter()
            .map(|e| Hit {
                id: e.id,
                score: e.score,
            })
            .collect();
        Ok((hits, stats))
    }

    /// The cosine of `query` with each of `ids` (`None` where absent), scored as
    /// [`top_k`](Self::top_k) scores it: a row found by other means and one found by a scan
    /// get the same number.
    pub fn scores(&self, query: &[f32], ids: &[u64]) -> Result<Vec<Option<f32>>, SearchError> {
        let q = self.turned_query(query)?;
        Ok(ids
            .iter()
            .map(|&id| Some(self.score_row(self.row_of(id)?, &q)))
            .collect())
    }

    /// `query` normalised, and in the basis when there is one.
    fn turned_query(&self, query: &[f32]) -> Result<Vec<f32>, SearchError> {
        let q = normalised(query, self.dim)?;
        Ok(match &self.basis {
            Some(basis) => basis.rotate(&q),
            None => q,
        })
    }

    /// The exact score of row `r` against the stored vector (for an int8-stored row, its
    /// scale times `codes · q`, so every path scores such a row alike, to the bit). With a
    /// basis `q` is in it.
    fn score_row(&self, r: usize, q: &[f32]) -> f32 {
        match (&self.int8, self.precision) {
            (Some(int8), Precision::Int8) => {
                let (head, tail) = int8.row_codes(r);
                let dot = dot_i8_f32(head, &q[..int8.head]);
                let dot = if tail.is_empty() {
                    dot
                } else {
                    dot + dot_i8_f32(tail, &q[int8.head..])
                };
                int8.scales[r] * dot
            }
            _ => dot_f32(&self.rows[r * self.dim..(r + 1) * self.dim], q),
        }
    }

    fn scan_f32(&self, q: &[f32], k: usize, filter: Option<Filter<'_>>) -> TopK {
        if self.precision == Precision::Int8 {
            return self.fold_chunks(k, &mut [], |rows, _, top| {
                for row in rows {
                    offer(top, filter, self.score_row(row, q), self.ids[row], row);
                }
            });
        }
        self.fold_chunks(k, &mut [], |rows, _, top| {
            let mut scores = [0.0f32; BLOCK_ROWS];
            for start in rows.clone().step_by(BLOCK_ROWS) {
                let n = BLOCK_ROWS.min(rows.end - start);
                let block = &self.rows[start * self.dim..(start + n) * self.dim];
                scores_f32(block, q, &mut scores[..n]);
                for (i, &score) in scores[..n].iter().enumerate() {
                    offer(top, filter, score, self.ids[start + i], start + i);
                }
            }
        })
    }

    fn scan_int8(
        &self,
        int8: &Int8Rows,
        q: &[f32],
        k: usize,
        shortlist: usize,
        filter: Option<Filter<'_>>,
        stats: &mut SearchStats,
    ) -> TopK {
        // With a basis the first pass reads only row heads; a row's tail `t` adds at most
        // `‖t‖·‖q_tail‖` to its score (Cauchy–Schwarz), which the bound takes in.
        let head = int8.head;
        let mut qc = vec![0i8; head];
        let qinfo = quantise(&q[..head], &mut qc);
        let q_tail = (q[head..]
            .iter()
            .map(|&x| x as f64 * x as f64)
            .sum::<f64>()
            .sqrt()
            * (1.0 + 1e-6)) as f32;
        // Rounding of the f32 dot products themselves (at most dim·ε for unit vectors) and of
        // the int8 score's float arithmetic, so the bound holds for the computed scores too.
        let slack = self.dim as f32 * f32::EPSILON + 1e-6;
        let norm = int8.max_norm * 1.0001;
        let bound = |err_v: f32, tail_v: f32| {
            err_v * 1.0001 + (norm + err_v) * qinfo.err + tail_v * q_tail * 1.0001 + slack
        };
        let tail_of = |row: usize| int8.tail_norms.get(row).copied().unwrap_or(0.0);

        // First pass: the int8 shortlist (filter applied here, so it holds admissible rows).
        // Every row's int8 score is kept too (4 bytes a row, a sixth of what the pass reads at
        // 256 components), so a second pass need not read the int8 copy again.
        let mut approx = vec![0.0f32; self.len()];
        // The worst score of any task's full heap: the merged shortlist's worst can only be
        // better, so every task may pass over rows below it. Without it each task's heap
        // admitted its chunk's first rows and kept churning (heap and filter calls were a
        // fifth of a hover).
        let floor = Floor::new();
        let short = self.fold_chunks(shortlist, &mut approx, |rows, out, top| {
            let first = rows.start;
            self.int8_block_scores(int8, &qc, qinfo.scale, rows, |row, a| {
                out[row - first] = a;
                if a < floor.get() {
                    return;
                }
                if offer(top, filter, a, self.ids[row], row) {
                    if let Some(worst) = top.worst_if_full() {
                        floor.raise(worst.score);
                    }
                }
            })
        });
        stats.shortlist = short.len();
        let cutoff = short.worst_if_full().map(|e| e.score);
        let mut top = TopK::new(k);
        for e in short.into_sorted() {
            let score = self.score_row(e.row, q);
            if top.admits(score, e.id) {
                top.push(Entry { score, ..e });
            }
        }
        stats.rescored = stats.shortlist;
        // A shortlist that is not full holds every admissible row: nothing was left out.
        let (Some(cutoff), Some(kth)) = (cutoff, top.worst_if_full().map(|e| e.score)) else {
            return top;
        };
        if cutoff + bound(int8.max_err, int8.max_tail) < kth {
            return top;
        }

        // Second pass: re-score every row the bound cannot rule out.
        stats.second_pass = true;
        let rescored = std::sync::atomic::AtomicUsize::new(0);
        let top = self.fold_chunks(k, &mut [], |rows, _, top| {
            let mut n = 0;
            for row in rows {
                if approx[row] + bound(int8.errs[row], tail_of(row)) >= kth {
                    n += 1;
                    let score = self.score_row(row, q);
                    offer(top, filter, score, self.ids[row], row);
                }
            }
            rescored.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        });
        stats.rescored += rescored.into_inner();
        top
    }

    /// Calls `each(row, int8 score)` for the rows of `rows`, in order: the score of the row
    /// heads (whole rows without a basis). `rows` starts at a multiple of `BLOCK_ROWS`, which
    /// divides `CHUNK_ROWS`, so no block crosses a chunk of the codes' layout.
    fn int8_block_scores(
        &self,
        int8: &Int8Rows,
        qc: &[i8],
        qscale: f32,
        rows: Range<usize>,
        mut each: impl FnMut(usize, f32),
    ) {
        let mut dots = [0i32; BLOCK_ROWS];
        for start in rows.clone().step_by(BLOCK_ROWS) {
            let n = BLOCK_ROWS.min(rows.end - start);
            let at = int8.head_at(start);
            let block = &int8.codes[at..at + n * int8.head];
            scores_i8(block, qc, &mut dots[..n]);
            for (i, &d) in dots[..n].iter().enumerate() {
                let row = start + i;
                each(row, int8.scales[row] * qscale * d as f32);
            }
        }
    }

    /// Runs `scan(rows, out, heap)` over all rows in chunks, in parallel when the index is
    /// large, and merges the per-task heaps of capacity `cap`. `out` is empty or has one slot
    /// per row; each call gets the slots of its rows (or an empty slice).
    fn fold_chunks<F>(&self, cap: usize, out: &mut [f32], scan: F) -> TopK
    where
        F: Fn(Range<usize>, &mut [f32], &mut TopK) + Sync,
    {
        let len = self.len();
        debug_assert!(out.is_empty() || out.len() == len);
        if len * self.dim < PARALLEL_MIN_COMPONENTS {
            let mut top = TopK::new(cap);
            scan(0..len, out, &mut top);
            return top;
        }
        // Cut `out` alongside the rows, so each task writes only its own slots.
        let mut parts = Vec::with_capacity(len.div_ceil(CHUNK_ROWS));
        let mut rest = out;
        for start in (0..len).step_by(CHUNK_ROWS) {
            let rows = start..len.min(start + CHUNK_ROWS);
            let take = if rest.is_empty() { 0 } else { rows.len() };
            let (mine, others) = std::mem::take(&mut rest).split_at_mut(take);
            parts.push((rows, mine));
            rest = others;
        }
        parts
            .into_par_iter()
            .fold(
                || TopK::new(cap),
                |mut top, (rows, out)| {
                    scan(rows, out, &mut top);
                    top
                },
            )
            .reduce(|| TopK::new(cap), TopK::merge)
    }
}

/// Offers one scored row to a heap, asking the filter only when the row would enter; returns
/// whether it entered.
#[inline]
fn offer(top: &mut TopK, filter: Option<Filter<'_>>, score: f32, id: u64, row: usize) -> bool {
    let enters = top.admits(score, id) && filter.is_none_or(|f| f(id));
    if enters {
        top.push(Entry { score, id, row });
    }
    enters
}

/// A score every task can read and raise: an f32 kept as a `u32` whose unsigned order is the
/// float order, so `fetch_max` raises it.
struct Floor(std::sync::atomic::AtomicU32);

impl Floor {
    fn new() -> Self {
        Floor(std::sync::atomic::AtomicU32::new(Self::key(
            f32::NEG_INFINITY,
        )))
    }

    fn key(x: f32) -> u32 {
        let b = x.to_bits();
        if b >> 31 == 1 {
            !b
        } else {
            b | 1 << 31
        }
    }

    fn get(&self) -> f32 {
        let k = self.0.load(std::sync::atomic::Ordering::Relaxed);
        f32::from_bits(if k >> 31 == 1 { k & !(1 << 31) } else { !k })
    }

    fn raise(&self, x: f32) {
        self.0
            .fetch_max(Self::key(x), std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Floor;

    #[test]
    fn a_floor_only_rises_and_reads_back_what_it_holds() {
        let floor = Floor::new();
        assert_eq!(floor.get(), f32::NEG_INFINITY);
        let xs = [
            -3.5f32,
            -1.0,
            -0.0,
            0.0,
            1e-30,
            0.25,
            0.999,
            1.0,
            f32::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(Floor::key(w[0]) <= Floor::key(w[1]), "{w:?}");
        }
        for x in [0.5f32, -2.0, 0.75, 0.6] {
            floor.raise(x);
        }
        assert_eq!(floor.get(), 0.75);
        let low = Floor::new();
        low.raise(-0.3);
        assert_eq!(low.get(), -0.3);
    }
}
