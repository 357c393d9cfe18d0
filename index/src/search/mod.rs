//! Exact top-k vector search over an in-memory flat index.
//!
//! [`FlatIndex`] holds L2-normalised f32 vectors (64..=1024 components) under `u64` ids, and
//! [`FlatIndex::top_k`] returns the `k` best by cosine similarity, optionally among the ids a
//! filter keeps. Every query scans every row: with SIMD dot products (AVX2+FMA when the CPU has
//! them, a portable loop otherwise) on all cores. Results are always exact: the same ids, in the
//! same order, as a brute-force scan, ties broken by the smaller id.
//!
//! A flat scan is bound by memory bandwidth, so the default mode ([`ScanMode::Int8Rerank`])
//! scans an int8 copy of the vectors (a quarter of the bytes) and re-scores a shortlist from the
//! f32 vectors, with a proof that the shortlist held the true top k (and a second pass when the
//! proof fails). [`ScanMode::Exact`] scans the f32 vectors only, using a fifth less memory.
//! [`Precision::Int8`] (what the daemon uses) keeps only the int8 copy, as the stored vectors:
//! a quarter of the memory, cosines within ~5e-4 of f32's, and still the exact top k of what is
//! stored.
//! Latencies are in `docs/benchmarks.md`.

mod basis;
mod error;
mod id_rows;
mod index;
pub mod kernels;
mod quant;
mod scan;
mod topk;
mod vector;

#[cfg(test)]
mod rng;
#[cfg(test)]
mod tests;

pub use error::SearchError;
pub use index::{FlatIndex, Precision, ScanMode, DEFAULT_SHORTLIST_EXTRA};
pub use scan::{Filter, SearchStats};
pub use topk::Hit;

/// The smallest and largest vector dimensions the index takes.
pub const MIN_DIM: usize = 64;
pub const MAX_DIM: usize = 1024;
