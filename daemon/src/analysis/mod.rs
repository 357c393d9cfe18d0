//! The analysis core behind both servers: documents and snapshots in, answers out, in the
//! protocol's plain types. It knows no LSP and no sockets (rust-analyzer's `ide` crate is
//! the model): `host` owns the state and the documents, `requests` answers, `workspace`
//! indexes roots and follows the disk, `document` is one analysed version of a file,
//! `features` the answers as pure functions, `lines` the UTF-16 positions editors count in.

pub mod document;
pub mod features;
pub mod host;
pub mod lines;
pub mod originality_check;
mod requests;
pub mod uri;
pub mod workspace;

pub use document::Snapshot;
pub use host::{handshake, AnalysisError, DocumentCheck, Host, HostOptions, IndexEvent, WORKSPACE};
pub use originality_check::OriginalityCheck;
