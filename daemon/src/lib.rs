//! The tunelens daemon: one analysis core served over LSP (editors) and a local JSON-RPC socket
//! (scripts). Its servers, watcher, index and cache are built on `tunelens-models`.
//!
//! **Architecture Invariant:** only this crate (and the binary) knows LSP, sockets and files on
//! disk being watched; `tunelens-models` knows none of it.

pub mod analysis;
pub mod index;
pub mod labels;
pub mod lsp;
pub mod memory;
pub mod queue;
pub mod search;
pub mod socket;
pub mod watch;
