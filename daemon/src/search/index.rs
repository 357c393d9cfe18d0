//! The flat index: every vector in one row-major `Vec<f32>`, ids beside them, and an id → row
//! map so that removal is a swap with the last row. Queries scan all rows (see `scan.rs`).

use std::collections::HashMap;

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

/// Re-scoring a few hundred f32 rows costs little next to a scan (0.8 MB at 768 components),
/// and a longer shortlist lets the proof succeed for queries whose neighbours score closer.
pub const DEFAULT_SHORTLIST_EXTRA: usize = 256;

/// An in-memory flat index of L2-normalised vectors of one dimension, keyed by `u64` ids.
pub struct FlatIndex {
    pub(crate) dim: usize,
    pub(crate) mode: ScanMode,
    /// How many rows beyond k the int8 pass keeps for re-scoring.
    pub(crate) shortlist_extra: usize,
    pub(crate) ids: Vec<u64>,
    /// `len × dim` components, row `r` at `r * dim..(r + 1) * dim`.
    pub(crate) rows: Vec<f32>,
    row_of: HashMap<u64, usize>,
    /// Present exactly when `mode` is `Int8Rerank`.
    pub(crate) int8: Option<Int8Rows>,
}

/// The int8 copy, row for row like `FlatIndex::rows`.
pub(crate) struct Int8Rows {
    pub codes: Vec<i8>,
    pub scales: Vec<f32>,
    pub errs: Vec<f32>,
    /// Never below any row's `errs`; it does not shrink when rows go (still a valid bound).
    pub max_err: f32,
}

impl Int8Rows {
    fn new() -> Self {
        Int8Rows {
            codes: Vec::new(),
            scales: Vec::new(),
            errs: Vec::new(),
            max_err: 0.0,
        }
    }

    fn set(&mut self, row: usize, v: &[f32]) {
        let dim = v.len();
        if row == self.scales.len() {
            self.codes.resize(self.codes.len() + dim, 0);
            self.scales.push(0.0);
            self.errs.push(0.0);
        }
        let Quantised { scale, err } = quantise(v, &mut self.codes[row * dim..(row + 1) * dim]);
        self.scales[row] = scale;
        self.errs[row] = err;
        self.max_err = self.max_err.max(err);
    }

    fn swap_remove(&mut self, row: usize, dim: usize) {
        let last = self.scales.len() - 1;
        self.codes
            .copy_within(last * dim..(last + 1) * dim, row * dim);
        self.codes.truncate(last * dim);
        self.scales.swap_remove(row);
        self.errs.swap_remove(row);
    }
}

impl FlatIndex {
    /// An empty index for vectors of `dim` components (64..=1024), in the default mode.
    pub fn new(dim: usize) -> Result<Self, SearchError> {
        Self::with_mode(dim, ScanMode::default())
    }

    pub fn with_mode(dim: usize, mode: ScanMode) -> Result<Self, SearchError> {
        if !(MIN_DIM..=MAX_DIM).contains(&dim) {
            return Err(SearchError::UnsupportedDim(dim));
        }
        Ok(FlatIndex {
            dim,
            mode,
            shortlist_extra: DEFAULT_SHORTLIST_EXTRA,
            ids: Vec::new(),
            rows: Vec::new(),
            row_of: HashMap::new(),
            int8: (mode == ScanMode::Int8Rerank).then(Int8Rows::new),
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

    /// Switches mode, building or dropping the int8 copy (one pass over the rows).
    pub fn set_mode(&mut self, mode: ScanMode) {
        if mode == self.mode {
            return;
        }
        self.mode = mode;
        self.int8 = match mode {
            ScanMode::Exact => None,
            ScanMode::Int8Rerank => {
                let mut q = Int8Rows::new();
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
        self.rows.reserve(additional.saturating_mul(self.dim));
        self.row_of.reserve(additional);
        if let Some(q) = &mut self.int8 {
            q.codes.reserve(additional.saturating_mul(self.dim));
            q.scales.reserve(additional);
            q.errs.reserve(additional);
        }
    }

    pub fn contains(&self, id: u64) -> bool {
        self.row_of.contains_key(&id)
    }

    /// The stored (normalised) vector of `id`.
    pub fn get(&self, id: u64) -> Option<&[f32]> {
        let r = *self.row_of.get(&id)?;
        Some(&self.rows[r * self.dim..(r + 1) * self.dim])
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
        let v = normalised(v, self.dim)?;
        let dim = self.dim;
        let (row, replaced) = match self.row_of.get(&id) {
            Some(&r) => {
                self.rows[r * dim..(r + 1) * dim].copy_from_slice(&v);
                (r, true)
            }
            None => {
                let r = self.ids.len();
                self.ids.push(id);
                self.rows.extend_from_slice(&v);
                self.row_of.insert(id, r);
                (r, false)
            }
        };
        if let Some(q) = &mut self.int8 {
            q.set(row, &v);
        }
        Ok(replaced)
    }

    /// Removes `id`, moving the last row into its place; returns whether it was there.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(row) = self.row_of.remove(&id) else {
            return false;
        };
        let dim = self.dim;
        let last = self.ids.len() - 1;
        self.rows
            .copy_within(last * dim..(last + 1) * dim, row * dim);
        self.rows.truncate(last * dim);
        self.ids.swap_remove(row);
        if row != last {
            self.row_of.insert(self.ids[row], row);
        }
        if let Some(q) = &mut self.int8 {
            q.swap_remove(row, dim);
        }
        true
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
        for mode in [ScanMode::Exact, ScanMode::Int8Rerank] {
            let mut ix = FlatIndex::with_mode(64, mode).expect("valid dim");
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
                assert_eq!(
                    ix.get(id),
                    Some(&unit(i).iter().map(|x| x / 2.0).collect::<Vec<_>>()[..])
                );
            }
            if let Some(q) = &ix.int8 {
                assert_eq!((q.codes.len(), q.scales.len()), (4 * 64, 4));
            }
            while let Some(&id) = ix.ids.first() {
                assert!(ix.remove(id));
            }
            assert!(ix.is_empty() && ix.rows.is_empty());
        }
    }
}
