//! The tunelens daemon: one analysis core served over LSP (editors) and a local JSON-RPC socket
//! (scripts). Its servers and watcher are built on `tunelens-index`
//! (the corpus index and the query pipeline) and `tunelens-models`.
//!
//! **Architecture Invariant:** only this crate (and the binary) knows LSP, sockets and files on
//! disk being watched; `tunelens-index` and `tunelens-models` know none of it.

pub mod analysis;
pub mod lsp;
pub mod memory;
pub mod queue;
pub mod socket;
pub mod watch;
