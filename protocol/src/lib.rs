//! The one serialisable boundary of tunelens: the JSON-RPC messages that the daemon speaks to
//! editors (the `tunelens/*` LSP extensions) and to scripts (the local socket).
//!
//! **Architecture Invariant:** this crate does no I/O and depends on nothing but `serde`; both
//! ends of every connection can use it.

use serde::{Deserialize, Serialize};

/// The protocol version reported in the handshake. Bumped on every incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// A position in a source file as editors count it: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}
