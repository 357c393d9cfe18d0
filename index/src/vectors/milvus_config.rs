//! What a Milvus connection is told: the server, credentials (a [`Secret`] that never reaches a
//! log), the vector index built on new collections and its parameters, the consistency of
//! searches, and the collections' name prefix.

use std::collections::HashMap;
use std::time::Duration;

use milvus::v2::prelude::*;

use super::{Result, VectorError};

/// A secret that never reaches a log: its Debug and Display print `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The vector index Milvus builds on each collection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IndexKind {
    /// Exact: every row scanned (what the embedded store does).
    Flat,
    /// Graph index; `ef` is the search-time beam (≥ k).
    Hnsw {
        m: u32,
        ef_construction: u32,
        ef: u32,
    },
    IvfFlat {
        nlist: u32,
        nprobe: u32,
    },
}

impl Default for IndexKind {
    fn default() -> Self {
        IndexKind::Hnsw {
            m: 16,
            ef_construction: 128,
            ef: 64,
        }
    }
}

impl IndexKind {
    /// `flat`, `hnsw` or `ivf_flat` with `KEY=VALUE` parameters (`M`, `efConstruction`, `ef`,
    /// `nlist`, `nprobe`); unknown names and keys are errors.
    pub fn parse(name: &str, params: &[(String, String)]) -> Result<Self> {
        let mut kind = match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "flat" => IndexKind::Flat,
            "hnsw" => IndexKind::default(),
            "ivf_flat" => IndexKind::IvfFlat {
                nlist: 1024,
                nprobe: 16,
            },
            other => {
                return Err(VectorError::Config(format!(
                    "unknown Milvus index type {other:?}: use flat, hnsw or ivf_flat"
                )))
            }
        };
        for (key, value) in params {
            let n: u32 = value.parse().map_err(|_| {
                VectorError::Config(format!("index parameter {key}={value}: not a number"))
            })?;
            match (&mut kind, key.as_str()) {
                (IndexKind::Hnsw { m, .. }, "M") => *m = n,
                (IndexKind::Hnsw {
                    ef_construction, ..
                }, "efConstruction") => *ef_construction = n,
                (IndexKind::Hnsw { ef, .. }, "ef") => *ef = n,
                (IndexKind::IvfFlat { nlist, .. }, "nlist") => *nlist = n,
                (IndexKind::IvfFlat { nprobe, .. }, "nprobe") => *nprobe = n,
                _ => {
                    return Err(VectorError::Config(format!(
                        "index parameter {key} does not apply to {name} (HNSW: M, efConstruction, ef; IVF_FLAT: nlist, nprobe)"
                    )))
                }
            }
        }
        Ok(kind)
    }

    pub(super) fn build_params(&self) -> (IndexType, HashMap<String, String>) {
        match *self {
            IndexKind::Flat => (IndexType::Flat, HashMap::new()),
            IndexKind::Hnsw {
                m, ef_construction, ..
            } => (
                IndexType::Hnsw,
                HashMap::from([
                    ("M".into(), m.to_string()),
                    ("efConstruction".into(), ef_construction.to_string()),
                ]),
            ),
            IndexKind::IvfFlat { nlist, .. } => (
                IndexType::IvfFlat,
                HashMap::from([("nlist".into(), nlist.to_string())]),
            ),
        }
    }

    pub(super) fn search_params(&self, limit: usize) -> HashMap<String, String> {
        match *self {
            IndexKind::Flat => HashMap::new(),
            // HNSW needs ef ≥ k.
            IndexKind::Hnsw { ef, .. } => {
                HashMap::from([("ef".into(), (ef as usize).max(limit).to_string())])
            }
            IndexKind::IvfFlat { nprobe, .. } => {
                HashMap::from([("nprobe".into(), nprobe.to_string())])
            }
        }
    }
}

/// How fresh a search must be. One-shot jobs default to `Strong` (a search right after
/// `index` sees everything); a daemon may prefer `Bounded` (lower latency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    #[default]
    Strong,
    Bounded,
    Eventually,
}

impl Consistency {
    pub(super) fn level(self) -> ConsistencyLevel {
        match self {
            Consistency::Strong => ConsistencyLevel::Strong,
            Consistency::Bounded => ConsistencyLevel::Bounded,
            Consistency::Eventually => ConsistencyLevel::Eventually,
        }
    }
}

/// Where and how to reach Milvus.
#[derive(Debug, Clone)]
pub struct MilvusConfig {
    pub uri: String,
    /// An API token, or `user:password`.
    pub token: Option<Secret>,
    pub index: IndexKind,
    pub consistency: Consistency,
    /// Collection names start with this (teams sharing a server, tests sharing one).
    pub prefix: String,
    /// How long to wait for the server to answer a connect (and each call).
    pub timeout: Duration,
}

impl Default for MilvusConfig {
    fn default() -> Self {
        Self {
            uri: "http://127.0.0.1:19530".into(),
            token: None,
            index: IndexKind::default(),
            consistency: Consistency::default(),
            prefix: "tunelens".into(),
            timeout: Duration::from_secs(10),
        }
    }
}
