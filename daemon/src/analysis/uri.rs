//! `file://` URIs ↔ paths, as the index spells them (one spelling for the CLI's pages, the
//! daemon's answers and the editors).

pub use tunelens_index::uri::{from_path, to_path};
