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
pub mod canonical;
pub mod diagnostics;
pub mod fields;
pub mod invariants;
pub mod notes;
pub mod patch;
pub mod rewrite;
pub mod source;
pub mod translit;
pub mod transpose;
pub mod tune;
pub mod units;

use serde::Serialize;

pub use bars::{Bar, Voice};
pub use canonical::MusicView;
pub use fields::HeaderField;
pub use patch::{Patch, PatchOptions, Patchilizer, PATCH_FEATURES, PATCH_LENGTH};
pub use source::{Encoding, LineCol, SourceError, SourceText, DEFAULT_SIZE_LIMIT};
pub use tune::{parse, AbcFile, Tune};
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

/// How much a diagnostic matters, in the order LSP counts them (`Error` = 1 ... `Hint` = 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Information,
    Hint,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "info",
            Severity::Hint => "hint",
        }
    }
}

/// What kind of problem a diagnostic reports: a stable name for scripts, editors and
/// suppression lists (`tunelens check --syntax --json` prints it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// Bytes that are not UTF-8, read as Latin-1.
    NotUtf8,
    /// Music without an `X:` line.
    NoReference,
    /// Music before any `K:` field.
    MissingKey,
    /// A line in a tune header that is no field.
    StrayHeaderLine,
    /// A field letter ABC 2.1 does not define.
    UnknownField,
    /// A header-only field (`A:`, `B:`, `O:`, `X:` ...) among the music.
    FieldOutOfPlace,
    /// An inline field `[T:..]` of a kind that cannot stand inside the music.
    InlineFieldOutOfPlace,
    UnclosedQuote,
    UnclosedChord,
    UnclosedGrace,
    UnclosedInlineField,
    UnclosedDecoration,
    UnclosedSlur,
    /// A `)` that closes no slur.
    UnmatchedSlur,
    /// A bar whose notes add up to more (or, inside a section, less) than `M:` gives.
    BarDuration,
}

impl Code {
    /// The kebab-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotUtf8 => "not-utf8",
            Code::NoReference => "no-reference",
            Code::MissingKey => "missing-key",
            Code::StrayHeaderLine => "stray-header-line",
            Code::UnknownField => "unknown-field",
            Code::FieldOutOfPlace => "field-out-of-place",
            Code::InlineFieldOutOfPlace => "inline-field-out-of-place",
            Code::UnclosedQuote => "unclosed-quote",
            Code::UnclosedChord => "unclosed-chord",
            Code::UnclosedGrace => "unclosed-grace",
            Code::UnclosedInlineField => "unclosed-inline-field",
            Code::UnclosedDecoration => "unclosed-decoration",
            Code::UnclosedSlur => "unclosed-slur",
            Code::UnmatchedSlur => "unmatched-slur",
            Code::BarDuration => "bar-duration",
        }
    }
}

/// Something wrong with the input that parsing worked around, at its exact byte range
/// (`SourceText::line_col` turns it into the `line:col` editors show, in characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub range: TextRange,
    pub message: String,
}

impl Diagnostic {
    pub fn warning(code: Code, range: TextRange, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            code,
            range,
            message: message.into(),
        }
    }
}
