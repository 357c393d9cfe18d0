//! Where the searchable vectors live: a small [`VectorStore`] contract with two backends.
//!
//! - [`FlatVectors`] (embedded, the default): the rows in memory, in the exact SIMD
//!   [`FlatIndex`](crate::search::FlatIndex), filled from the local sled records and content
//!   cache when a [`Catalog`](super::Catalog) is opened. Nothing extra is persisted: the records
//!   and the cache are the embedded index.
//! - [`MilvusVectors`] (scale-out): one Milvus collection per model id and dimension, written by
//!   the indexing job (and `tunelens store migrate`), searched by the server.
//!
//! A row is one unit (tune or passage) of one file of one corpus. Its id is a hash of
//! (corpus, path, unit ordinal), so writing the same file again writes the same ids: upserts are
//! idempotent, and a rerun after a crash converges to the same content. The model is not a
//! field: each store holds one model's vectors (one collection per model).
//!
//! What stays local, whichever backend holds the vectors, is written up in ARCHITECTURE.md
//! ("Vector stores").

mod flat;
mod milvus;
mod milvus_config;
pub mod sync;
mod tiered;

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use tunelens_models::abc::Level;

use super::records::ContentKey;
use super::store::StoreError;
use crate::search::SearchError;

pub use flat::FlatVectors;
pub use milvus::{Consistency, IndexKind, Milvus, MilvusConfig, MilvusVectors, Secret};
pub use tiered::{Health, Remote, Tiered};

/// The id of a row: the first 16 bytes of sha256(corpus \0 path \0 unit ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowId(pub [u8; 16]);

impl RowId {
    pub fn new(corpus: &str, path: &str, unit: usize) -> Self {
        let mut h = Sha256::new();
        h.update(corpus.as_bytes());
        h.update([0]);
        h.update(path.as_bytes());
        h.update([0]);
        h.update((unit as u64).to_le_bytes());
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut id = [0u8; 16];
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(id))
    }
}

/// One row to write.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub corpus: &'a str,
    pub path: &'a str,
    /// The unit's position in its file record.
    pub unit: usize,
    pub level: Level,
    pub key: ContentKey,
    pub vector: &'a [f32],
}

impl Row<'_> {
    pub fn id(&self) -> RowId {
        RowId::new(self.corpus, self.path, self.unit)
    }
}

/// Which rows a query or count considers.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these corpora; all when empty.
    pub corpora: Vec<String>,
    pub level: Option<Level>,
}

/// A row found, with its cosine similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorHit {
    pub id: RowId,
    pub score: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server could not be reached or failed mid-request: one-shot jobs stop with this,
    /// a daemon reports itself degraded (see `VectorError::is_unavailable`).
    #[error("Milvus at {uri} is unreachable or restarting ({op}): {message}; start it (scripts/milvus.sh start) or use the embedded store; an interrupted indexing run resumes where it stopped")]
    Unavailable {
        uri: String,
        op: &'static str,
        message: String,
    },
    /// The server answered, but refused the request.
    #[error("Milvus at {uri} refused {op}: {message}")]
    Refused {
        uri: String,
        op: &'static str,
        message: String,
    },
    #[error("Milvus collection {collection}: {reason}")]
    Schema { collection: String, reason: String },
    #[error("{0}")]
    Config(String),
}

impl VectorError {
    /// True when the backend is down or restarting rather than refusing: what a daemon turns
    /// into a degraded status (keep answering from what it has, retry later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, VectorError::Unavailable { .. })
    }
}

pub type Result<T> = std::result::Result<T, VectorError>;

/// The contract both backends keep. Vectors are compared by cosine: each backend normalises
/// what it stores and every query.
pub trait VectorStore: Send + Sync {
    /// Components per vector.
    fn dim(&self) -> usize;
    /// Writes rows, replacing any of the same id.
    fn upsert(&self, rows: &[Row<'_>]) -> Result<()>;
    /// Removes every row of one file.
    fn delete_file(&self, corpus: &str, path: &str) -> Result<()>;
    /// Removes every row of a corpus.
    fn delete_corpus(&self, corpus: &str) -> Result<()>;
    /// Removes these rows (those absent are ignored).
    fn delete(&self, ids: &[RowId]) -> Result<()>;
    /// The `k` rows most similar to `query` among those `filter` selects and `keep` accepts,
    /// best first.
    fn top_k(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        keep: &(dyn Fn(RowId) -> bool + Sync),
    ) -> Result<Vec<VectorHit>>;
    /// The stored (normalised) vectors of those `ids` that are present.
    fn vectors(&self, ids: &[RowId]) -> Result<HashMap<RowId, Vec<f32>>>;
    /// The cosine of `query` with each of `ids` that is present, as `top_k` scores it.
    fn scores(&self, query: &[f32], ids: &[RowId]) -> Result<HashMap<RowId, f32>> {
        let norm = crate::search::kernels::dot_f32(query, query)
            .sqrt()
            .max(f32::MIN_POSITIVE);
        let q: Vec<f32> = query.iter().map(|x| x / norm).collect();
        Ok(self
            .vectors(ids)?
            .into_iter()
            .map(|(id, v)| (id, crate::search::kernels::dot_f32(&v, &q)))
            .collect())
    }
    /// How many rows `filter` selects.
    fn count(&self, filter: &Filter) -> Result<usize>;
    /// Gives back the spare capacity that growing row by row left (after a bulk load).
    fn shrink_to_fit(&self) {}
    /// The stored vector of `id` when it is held in this process (never a server round trip).
    fn local_vector(&self, _id: &RowId) -> Option<Vec<f32>> {
        None
    }
}

/// Which backend holds the searchable vectors; chosen once per process (`--store`).
#[derive(Clone, Default)]
pub enum Backend {
    /// In memory, from the local records and cache (the default).
    #[default]
    Embedded,
    Milvus(Milvus),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Milvus(_) => "milvus",
        }
    }
}

/// L2-normalised copy of `v` (a zero vector stays zero; the flat index refuses it).
pub(crate) fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return v.to_vec();
    }
    v.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ids_round_trip_and_differ_by_each_part() {
        let a = RowId::new("c", "/p", 3);
        assert_eq!(RowId::from_hex(&a.hex()), Some(a));
        assert_ne!(a, RowId::new("c", "/p", 4));
        assert_ne!(a, RowId::new("c", "/q", 3));
        assert_ne!(a, RowId::new("d", "/p", 3));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(RowId::new("ab", "c", 0), RowId::new("a", "bc", 0));
        assert_eq!(RowId::from_hex("xyz"), None);
        assert_eq!(RowId::from_hex(&"g".repeat(32)), None);
    }
}
