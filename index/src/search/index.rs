//! The flat index: every vector in one row-major array (f32, or only the int8 copy at
//! [`Precision::Int8`]), ids beside them, and an id → row map so that removal is a swap with
//! the last row. Queries scan all rows (see `scan.rs`).

use super::basis::{Basis, FIT_SAMPLE};
use super::id_rows::IdRows;
use std::borrow::Cow;

use super::quant::{quantise, Quantised};
use super::vector::normalised;
use super::{SearchError, MAX_DIM, MIN_DIM};

/// How a query scans the rows. Both give the exact top k; they differ in how many bytes each
/// query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanMode {
    /// Every f32 row, once: 4 bytes per component per query.
    Exact,
    /// An int8 copy of every row first (1 byte per component), keeping a shortlist; the
    /// shortlist is then re-scored from the f32 rows. A bound on the int8 rounding proves the
    /// shortlist held the true top k; when it cannot (many rows scoring within about 0.02 of
    /// the k-th), a second pass re-scores every row the bound cannot rule out. The default: it
    /// reads a quarter of the memory, and memory bandwidth is what a flat scan waits on.
    #[default]
    Int8Rerank,
}

/// How the index stores its vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Each vector as given (normalised): 4 bytes a component.
    #[default]
    F32,
    /// Only the int8 copy, which then *is* the stored vector (`scale · codes`): a quarter of
    /// the memory. A stored vector is within `err` ≤ 0.02 of the f32 one (about 0.009 at 384
    /// components), and a cosine moves by far less, the rounding errors pointing every which
    /// way: 2.6e-4 on average and 1.5e-3 at worst at 384 components (the test
    /// `int8_storage_moves_cosines_by_little`). Results are exact for the stored vectors, in
    /// either scan mode.
    Int8,
}

/// Re-scoring a few hundred f32 rows costs little next to a scan (0.8 MB at 768 components),
/// and a longer shortlist lets the proof succeed for queries whose neighbours score closer.
pub const DEFAULT_SHORTLIST_EXTRA: usize = 256;

/// An in-memory flat index of L2-normalised vectors of one dimension, keyed by `u64` ids.
pub struct FlatIndex {
    pub(crate) dim: usize,
    pub(crate) mode: ScanMode,
    pub(crate) precision: Precision,
    /// How many rows beyond k the int8 pass keeps for re-scoring.
    pub(crate) shortlist_extra: usize,
    pub(crate) ids: Vec<u64>,
    /// `len × dim` components, row `r` at `r * dim..(r + 1) * dim`; empty at
    /// [`Precision::Int8`].
    pub(crate) rows: Vec<f32>,
    row_of: IdRows,
    /// Present exactly when `mode` is `Int8Rerank` or the precision is `Int8`.
    pub(crate) int8: Option<Int8Rows>,
    /// The basis the int8 codes are in, once [`fit_basis`](Self::fit_basis) found one (only at
    /// [`Precision::Int8`]): stored vectors are `basisᵀ · scale · codes`, queries are turned
    /// into the basis, and scans read row heads first.
    pub(crate) basis: Option<Basis>,
}

/// Rows per layout chunk of the int8 codes: the scan's parallel chunk, so that each task
/// reads one contiguous run of heads.
pub(crate) const LAYOUT_ROWS: usize = super::scan::CHUNK_ROWS;

/// The int8 copy, row for row like `FlatIndex::rows`.
///
/// Without a basis each row's codes follow the last row's. With one (see `basis.rs`) each
/// row is split into its head (the first `head` components in the basis) and its tail, and
/// the codes are laid out in chunks of [`LAYOUT_ROWS`] rows, each the chunk's heads, then its
/// tails: the scan reads only heads, one contiguous run per chunk. (Without a basis `head` is
/// `dim` and that layout is plain row after row.) A split index's codes always cover whole
/// chunks, the last one padded.
pub(crate) struct Int8Rows {
    dim: usize,
    /// Components of each row read by the first pass of a scan.
    pub head: usize,
    pub codes: Vec<i8>,
    pub scales: Vec<f32>,
    pub errs: Vec<f32>,
    /// With a basis: each row's `‖scale · tail codes‖`, rounded up (empty without one).
    pub tail_norms: Vec<f32>,
    /// Never below any row's `errs`; it does not shrink when rows go (still a valid bound).
    pub max_err: f32,
    /// Never below any row's `tail_norms` (0 without a basis); it does not shrink either.
    pub max_tail: f32,
    /// Never below any stored vector's length (1 up to rounding for f32 rows; `scale · codes`
    /// can be a little longer), for the scan's bound. It does not shrink either.
    pub max_norm: f32,
}

impl Int8Rows {
    fn new(dim: usize) -> Self {
        Int8Rows {
            dim,
            head: dim,
            codes: Vec::new(),
            scales: Vec::new(),
            errs: Vec::new(),
            tail_norms: Vec::new(),
            max_err: 0.0,
            max_tail: 0.0,
            max_norm: 1.0,
        }
    }

    fn split(&self) -> bool {
        self.head < self.dim
    }

    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// Where row `row`'s head starts in `codes`; the heads of a chunk's rows follow each other.
    pub fn head_at(&self, row: usize) -> usize {
        let (chunk, i) = (row / LAYOUT_ROWS, row % LAYOUT_ROWS);
        chunk * LAYOUT_ROWS * self.dim + i * self.head
    }

    fn tail_at(&self, row: usize) -> usize {
        let (chunk, i) = (row / LAYOUT_ROWS, row % LAYOUT_ROWS);
        chunk * LAYOUT_ROWS * self.dim + LAYOUT_ROWS * self.head + i * (self.dim - self.head)
    }

    /// Row `row`'s codes: head and tail (empty without a basis).
    pub fn row_codes(&self, row: usize) -> (&[i8], &[i8]) {
        let (h, t) = (self.head_at(row), self.tail_at(row));
        let tail = if self.split() {
            &self.codes[t..t + self.dim - self.head]
        } else {
            &[]
        };
        (&self.codes[h..h + self.head], tail)
    }

    /// The length `codes` needs for `rows` rows.
    fn codes_len(&self, rows: usize) -> usize {
        if self.split() {
            rows.div_ceil(LAYOUT_ROWS) * LAYOUT_ROWS * self.dim
        } else {
            rows * self.dim
        }
    }

    /// Codes for row `row` (appended when it is one past the last) approximating `v` (given in
    /// the basis when there is one).
    fn set(&mut self, row: usize, v: &[f32]) {
        let dim = v.len();
        if row == self.scales.len() {
            let need = self.codes_len(row + 1);
            if self.codes.len() < need {
                self.codes.resize(need, 0);
            }
            self.scales.push(0.0);
            self.errs.push(0.0);
            if self.split() {
                self.tail_norms.push(0.0);
            }
        }
        let mut codes = [0i8; MAX_DIM];
        let Quantised { scale, err } = quantise(v, &mut codes[..dim]);
        let (h, t, head) = (self.head_at(row), self.tail_at(row), self.head);
        self.codes[h..h + head].copy_from_slice(&codes[..head]);
        if self.split() {
            self.codes[t..t + dim - head].copy_from_slice(&codes[head..dim]);
            self.tail_norms[row] = tail_length(scale, &codes[head..dim]);
            self.max_tail = self.max_tail.max(self.tail_norms[row]);
        }
        self.scales[row] = scale;
        self.errs[row] = err;
        self.max_err = self.max_err.max(err);
    }

    /// As `set`, for an index whose stored vector is the int8 one: `v` becomes `scale · codes`
    /// and the error is 0 (nothing else is kept to differ from).
    fn set_stored(&mut self, row: usize, v: &mut [f32]) {
        self.set(row, v);
        self.errs[row] = 0.0;
        self.decode(row, v);
        let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        self.max_norm = self.max_norm.max((norm * (1.0 + 1e-6)) as f32);
    }

    /// Row `row` as `scale · codes` (in the basis when there is one), into `out` (one row
    /// long).
    pub fn decode(&self, row: usize, out: &mut [f32]) {
        let scale = self.scales[row];
        let (head, tail) = self.row_codes(row);
        for (o, &c) in out.iter_mut().zip(head.iter().chain(tail)) {
            *o = scale * c as f32;
        }
    }

    fn swap_remove(&mut self, row: usize) {
        let last = self.scales.len() - 1;
        if row != last {
            let (from, to) = (self.head_at(last), self.head_at(row));
            self.codes.copy_within(from..from + self.head, to);
            if self.split() {
                let (from, to) = (self.tail_at(last), self.tail_at(row));
                self.codes
                    .copy_within(from..from + self.dim - self.head, to);
            }
        }
        self.codes.truncate(self.codes_len(last));
        self.scales.swap_remove(row);
        self.errs.swap_remove(row);
        if self.split() {
            self.tail_norms.swap_remove(row);
        }
    }

    /// Re-encodes every row (stored vectors, so the index is at `Precision::Int8`) in `basis`,
    /// split at its head: each chunk in place, so no second copy of the codes is ever held.
    /// The stored vectors are rounded to int8 once more, in the new basis.
    fn rebase(&mut self, basis: &Basis) {
        use rayon::prelude::*;
        let (dim, rows) = (self.dim, self.len());
        // Exactly the padding of the last chunk: growing by doubling would hold twice the codes.
        let need = rows.div_ceil(LAYOUT_ROWS) * LAYOUT_ROWS * dim;
        self.codes
            .reserve_exact(need.saturating_sub(self.codes.len()));
        self.codes.resize(need, 0);
        let head = basis.head();
        let chunk_len = LAYOUT_ROWS * dim;
        let chunks: Vec<(f32, f32, Vec<f32>)> = self
            .codes
            .par_chunks_mut(chunk_len)
            .zip(self.scales.par_chunks_mut(LAYOUT_ROWS))
            .zip(self.errs.par_chunks_mut(LAYOUT_ROWS))
            .map(|((codes, scales), errs)| {
                let n = scales.len();
                // The chunk's rows in the old layout, row after row, decoded before any of the
                // chunk is written.
                let mut plain = vec![0f32; n * dim];
                for (i, v) in plain.chunks_exact_mut(dim).enumerate() {
                    for (o, &c) in v.iter_mut().zip(&codes[i * dim..(i + 1) * dim]) {
                        *o = scales[i] * c as f32;
                    }
                }
                let mut turned = vec![0f32; n * dim];
                basis.rotate_rows(&plain, &mut turned);
                let (mut max_tail, mut max_norm) = (0f32, 0f32);
                let mut tails = Vec::with_capacity(n);
                for (i, v) in turned.chunks_exact(dim).enumerate() {
                    let mut q = [0i8; MAX_DIM];
                    let Quantised { scale, .. } = quantise(v, &mut q[..dim]);
                    codes[i * head..(i + 1) * head].copy_from_slice(&q[..head]);
                    let t = LAYOUT_ROWS * head + i * (dim - head);
                    codes[t..t + dim - head].copy_from_slice(&q[head..dim]);
                    let sq = |c: &i8| (scale as f64 * *c as f64).powi(2);
                    let norm = q[..dim].iter().map(sq).sum::<f64>().sqrt();
                    let tail = tail_length(scale, &q[head..dim]);
                    tails.push(tail);
                    max_tail = max_tail.max(tail);
                    max_norm = max_norm.max((norm * (1.0 + 1e-6)) as f32);
                    scales[i] = scale;
                    errs[i] = 0.0;
                }
                (max_tail, max_norm, tails)
            })
            .collect();
        self.head = head;
        self.tail_norms = Vec::with_capacity(rows);
        for (max_tail, max_norm, tails) in chunks {
            self.max_tail = self.max_tail.max(max_tail);
            self.max_norm = self.max_norm.max(max_norm);
            self.tail_norms.extend(tails);
        }
        self.max_err = 0.0;
    }
}

/// `‖scale · codes‖` of a row's tail, rounded up so that the f32 still bounds what the tail
/// can add to a score (`set` and `rebase` must agree on it).
fn tail_length(scale: f32, codes: &[i8]) -> f32 {
    let sum: f64 = codes
        .iter()
        .map(|&c| (scale as f64 * c as f64).powi(2))
        .sum();
    (sum.sqrt() * (1.0 + 1e-6) + 1e-9) as f32
}

impl FlatIndex {
    /// An empty index for vectors of `dim` components (64..=1024), in the default mode.
    pub fn new(dim: usize) -> Result<Self, SearchError> {
        Self::with_mode(dim, ScanMode::default())
    }

    pub fn with_mode(dim: usize, mode: ScanMode) -> Result<Self, SearchError> {
        Self::with_precision(dim, mode, Precision::F32)
    }

    /// An index that stores its vectors at `precision` (see [`Precision`]).
    pub fn with_precision(
        dim: usize,
        mode: ScanMode,
        precision: Precision,
    ) -> Result<Self, SearchError> {
        if !(MIN_DIM..=MAX_DIM).contains(&dim) {
            return Err(SearchError::UnsupportedDim(dim));
        }
        Ok(FlatIndex {
            dim,
            mode,
            precision,
            shortlist_extra: DEFAULT_SHORTLIST_EXTRA,
            ids: Vec::new(),
            rows: Vec::new(),
            row_of: IdRows::default(),
            int8: (mode == ScanMode::Int8Rerank || precision == Precision::Int8)
                .then(|| Int8Rows::new(dim)),
            basis: None,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn mode(&self) -> ScanMode {
        self.mode
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Switches mode, building or dropping the int8 copy (one pass over the rows; at
    /// [`Precision::Int8`] the copy is the data and stays).
    pub fn set_mode(&mut self, mode: ScanMode) {
        if mode == self.mode {
            return;
        }
        self.mode = mode;
        if self.precision == Precision::Int8 {
            return;
        }
        self.int8 = match mode {
            ScanMode::Exact => None,
            ScanMode::Int8Rerank => {
                let mut q = Int8Rows::new(self.dim);
                q.codes.reserve_exact(self.rows.len());
                for (r, v) in self.rows.chunks_exact(self.dim).enumerate() {
                    q.set(r, v);
                }
                Some(q)
            }
        };
    }

    /// How many rows beyond k the int8 pass keeps for re-scoring (default
    /// [`DEFAULT_SHORTLIST_EXTRA`]). Results are exact whatever the value; it trades re-scoring
    /// work against how often the second pass runs.
    pub fn set_shortlist_extra(&mut self, extra: usize) {
        self.shortlist_extra = extra;
    }

    /// Room for `additional` more vectors without reallocating (large indexes are built in
    /// bulk, and growing a multi-GB `Vec` by doubling briefly needs three times the memory).
    pub fn reserve(&mut self, additional: usize) {
        self.ids.reserve(additional);
        if self.precision == Precision::F32 {
            self.rows.reserve(additional.saturating_mul(self.dim));
        }
        self.row_of.reserve(additional);
        if let Some(q) = &mut self.int8 {
            q.codes.reserve(additional.saturating_mul(self.dim));
            q.scales.reserve(additional);
            q.errs.reserve(additional);
        }
    }

    /// Gives back spare capacity: rows added one at a time grow the arrays by doubling, so
    /// after a bulk load up to half of the largest one is unused.
    pub fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.row_of.shrink_to_fit();
        if let Some(q) = &mut self.int8 {
            q.codes.shrink_to_fit();
            q.scales.shrink_to_fit();
            q.errs.shrink_to_fit();
            q.tail_norms.shrink_to_fit();
        }
    }

    pub(crate) fn row_of(&self, id: u64) -> Option<usize> {
        self.row_of.get(id)
    }

    pub fn contains(&self, id: u64) -> bool {
        self.row_of.contains(id)
    }

    /// The stored (normalised) vector of `id` (decoded at [`Precision::Int8`]).
    pub fn get(&self, id: u64) -> Option<Cow<'_, [f32]>> {
        Some(self.row(self.row_of.get(id)?))
    }

    /// Row `r` as f32.
    pub(crate) fn row(&self, r: usize) -> Cow<'_, [f32]> {
        match (&self.int8, self.precision) {
            (Some(q), Precision::Int8) => {
                let mut v = vec![0.0; self.dim];
                q.decode(r, &mut v);
                Cow::Owned(match &self.basis {
                    Some(basis) => basis.rotate_back(&v),
                    None => v,
                })
            }
            _ => Cow::Borrowed(&self.rows[r * self.dim..(r + 1) * self.dim]),
        }
    }

    /// Adds a vector under a new id; it is stored normalised. An id already present is an
    /// error (see [`upsert`](Self::upsert)).
    pub fn add(&mut self, id: u64, v: &[f32]) -> Result<(), SearchError> {
        if self.contains(id) {
            return Err(SearchError::DuplicateId(id));
        }
        self.upsert(id, v).map(|_| ())
    }

    /// Adds or replaces the vector of `id`; returns whether it replaced one. On error the index
    /// is unchanged.
    pub fn upsert(&mut self, id: u64, v: &[f32]) -> Result<bool, SearchError> {
        let mut v = normalised(v, self.dim)?;
        let dim = self.dim;
        let f32_rows = self.precision == Precision::F32;
        let (row, replaced) = match self.row_of.get(id) {
            Some(r) => {
                if f32_rows {
                    self.rows[r * dim..(r + 1) * dim].copy_from_slice(&v);
                }
                (r, true)
            }
            None => {
                let r = self.ids.len();
                self.ids.push(id);
                if f32_rows {
                    self.rows.extend_from_slice(&v);
                }
                self.row_of.insert(id, r);
                (r, false)
            }
        };
        if let Some(q) = &mut self.int8 {
            if f32_rows {
                q.set(row, &v);
            } else if let Some(basis) = &self.basis {
                q.set_stored(row, &mut basis.rotate(&v));
            } else {
                q.set_stored(row, &mut v);
            }
        }
        Ok(replaced)
    }

    /// Removes `id`, moving the last row into its place; returns whether it was there.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(row) = self.row_of.remove(id) else {
            return false;
        };
        let dim = self.dim;
        let last = self.ids.len() - 1;
        if self.precision == Precision::F32 {
            self.rows
                .copy_within(last * dim..(last + 1) * dim, row * dim);
            self.rows.truncate(last * dim);
        }
        self.ids.swap_remove(row);
        if row != last {
            self.row_of.insert(self.ids[row], row);
        }
        if let Some(q) = &mut self.int8 {
            q.swap_remove(row);
        }
        true
    }

    /// At [`Precision::Int8`], with at least `min_rows` rows and no basis yet: fits a basis to
    /// the stored vectors (see `basis.rs`) and, when one pays (a head of at most half the
    /// components holds nearly all the energy), re-encodes every row in it. Scans then read
    /// row heads first: about a quarter of the bytes on the default model's vectors. Returns
    /// whether it did. Results stay exact for the stored vectors, which are rounded to int8
    /// once more in the new basis (cosines move by ~2e-4 more). Rows added later go straight
    /// into the basis.
    pub fn fit_basis(&mut self, min_rows: usize) -> bool {
        let (Some(q), Precision::Int8, None) = (&mut self.int8, self.precision, &self.basis) else {
            return false;
        };
        if self.ids.len() < min_rows.max(1) {
            return false;
        }
        let step = self.ids.len().div_ceil(FIT_SAMPLE);
        let mut sample = vec![0f32; self.ids.len().div_ceil(step) * self.dim];
        for (v, r) in sample
            .chunks_exact_mut(self.dim)
            .zip((0..self.ids.len()).step_by(step))
        {
            q.decode(r, v);
        }
        let Some(basis) = Basis::fit(self.dim, &sample) else {
            return false;
        };
        q.rebase(&basis);
        self.basis = Some(basis);
        true
    }

    /// Components a scan reads from every row before it reads whole rows: all of them
    /// without a basis.
    pub fn scan_width(&self) -> usize {
        self.int8.as_ref().map_or(self.dim, |q| q.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_outside_the_range_are_refused() {
        for dim in [0, 1, 63, 1025] {
            assert_eq!(
                FlatIndex::new(dim).err(),
                Some(SearchError::UnsupportedDim(dim))
            );
        }
        assert!(FlatIndex::new(64).is_ok() && FlatIndex::new(1024).is_ok());
    }

    #[test]
    fn add_upsert_remove_keep_the_map_consistent() {
        for (mode, precision) in [
            (ScanMode::Exact, Precision::F32),
            (ScanMode::Int8Rerank, Precision::F32),
            (ScanMode::Exact, Precision::Int8),
        ] {
            let mut ix = FlatIndex::with_precision(64, mode, precision).expect("valid dim");
            let unit = |i: usize| {
                let mut v = vec![0.0f32; 64];
                v[i] = 2.0;
                v
            };
            for id in 0..5u64 {
                ix.add(id * 10, &unit(id as usize)).expect("valid vector");
            }
            assert_eq!(ix.add(20, &unit(9)), Err(SearchError::DuplicateId(20)));
            assert_eq!(
                ix.add(99, &[1.0; 3]),
                Err(SearchError::DimMismatch {
                    expected: 64,
                    got: 3
                })
            );
            assert_eq!(ix.upsert(20, &unit(7)), Ok(true));
            assert_eq!(ix.upsert(50, &unit(8)), Ok(false));
            assert!(ix.remove(0) && !ix.remove(0) && ix.remove(50));
            assert_eq!(ix.len(), 4);
            for (id, i) in [(10, 1), (20, 7), (30, 3), (40, 4)] {
                // A unit axis is exact at int8 too.
                assert_eq!(
                    ix.get(id).as_deref(),
                    Some(&unit(i).iter().map(|x| x / 2.0).collect::<Vec<_>>()[..])
                );
            }
            if let Some(q) = &ix.int8 {
                assert_eq!((q.codes.len(), q.scales.len()), (4 * 64, 4));
                assert_eq!(q.len(), 4);
            }
            while let Some(&id) = ix.ids.first() {
                assert!(ix.remove(id));
            }
            assert!(ix.is_empty() && ix.rows.is_empty());
        }
    }
}
