//! The corpus index: file records and content-addressed vectors in sled, filled by an
//! incremental, resumable indexing job; the vector stores (flat, tiered, Milvus), the symbolic
//! n-gram search, and the query pipeline the CLI and the daemon share (rank, filter, group,
//! explain, originality).
//!
//! **Architecture Invariant:** this crate knows files, the store and the model's vectors, never
//! editors: no LSP, no sockets, no documents being typed. The daemon and the binary call it.

pub mod compare;
pub mod eval;
pub mod explain;
pub mod filter;
pub mod group;
mod id_table;
pub mod job;
pub mod labels;
pub mod locks;
pub mod originality;
pub mod query;
pub mod records;
pub mod refine;
pub mod search;
pub mod similar;
pub mod store;
pub mod symbolic;
pub mod thesession;
pub mod uri;
pub mod vectors;

pub use explain::{Explainer, Explanation, FileCache, ParsedFile};
pub use filter::{Candidate, Filters, Position, RhythmPredictions};
pub use group::{group, Grouping, Source, TuneGroup};
pub use job::{
    content_key, index_files, text_key, IndexError, IndexJob, IndexOptions, IndexReport, Progress,
};
pub use query::{shared_record, Catalog, Match, QueryError, Ranker};
pub use records::{
    BarRecord, ContentKey, FileRecord, FileStamp, TuneRecord, UnitRecord, UnitSettings, VoiceId,
    SCHEMA_VERSION,
};
pub use refine::{refine, Hit, Refine, TuneVectors};
pub use similar::{passage_notes, Explained, Place, Query, QueryContext};
pub use store::{Store, StoreError};
pub use vectors::{Backend, VectorError, VectorStore};
