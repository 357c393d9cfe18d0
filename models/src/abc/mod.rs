//! The ABC layer: from a file's bytes to tunes, voices and bars that know exactly where in
//! the file they are, and to the CLaMP patches the model reads.
//!
//! - [`source`]: decoding (UTF-8, Latin-1 fallback, refusing binaries and huge files) and
//!   byte offset → `line:col`;
//! - [`tune`]: a file cut into tunes (`X:` starts one), with header fields and voices;
//! - [`bars`]: the bars of each voice, skipping chord symbols, decorations, comments,
//!   inline fields and lyrics;
//! - [`patch`]: the reference CLaMP patchilizer, with a source range on every patch;
//! - [`translit`]: Python `unidecode`, which the patchilizer applies first.
//!
//! **Architecture Invariant:** every range here is a byte range into the decoded text of the
//! file the user has, never into a transliterated or filtered copy, so that any result can
//! be shown at its place in the editor.

pub mod bars;
pub mod invariants;
pub mod notes;
pub mod patch;
pub mod source;
pub mod translit;
pub mod transpose;
pub mod tune;
pub mod units;

use serde::Serialize;

pub use bars::{Bar, Voice};
pub use patch::{Patch, PatchOptions, Patchilizer, PATCH_FEATURES, PATCH_LENGTH};
pub use source::{Encoding, LineCol, SourceError, SourceText, DEFAULT_SIZE_LIMIT};
pub use tune::{parse, AbcFile, HeaderField, Tune};
pub use units::{units, Level, Unit};

/// A byte range `start..end` into a file's decoded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct TextRange {
    pub start: u32,
    pub end: u32,
}

impl TextRange {
    pub fn new(start: u32, end: u32) -> Self {
        Self { start, end }
    }

    pub fn len(&self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn contains(&self, offset: u32) -> bool {
        self.start <= offset && offset < self.end
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// Something wrong with the input that parsing worked around.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub range: TextRange,
    pub message: String,
}

impl Diagnostic {
    pub fn warning(range: TextRange, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            range,
            message: message.into(),
        }
    }
}
