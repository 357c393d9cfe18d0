//! Field lines (`T:The Kesh`, `K:G`, inline `[K:D]`): what a field is, which letters ABC 2.1
//! knows, where each may stand. The tune header (`tune.rs`) and the body's inline fields
//! (`bars.rs`) both read fields through here.

use serde::Serialize;

use super::{Code, Diagnostic, TextRange};

/// A field line such as `T:The Kesh` or `K:G`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderField {
    /// The field letter (`T`, `M`, `K`, ...).
    pub key: char,
    /// The value with surrounding white space and any trailing `%` comment removed.
    pub value: String,
    /// The whole line, without its newline.
    pub range: TextRange,
}

/// A field line: a letter, a colon. `|:` and `::` never start one, as they start with no letter.
pub(crate) fn field_key(line: &str) -> Option<char> {
    let b = line.as_bytes();
    (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':').then(|| char::from(b[0]))
}

/// A field's value: after the colon, without a trailing comment, trimmed.
pub(crate) fn field_value(line: &str) -> &str {
    let v = line.get(2..).unwrap_or("");
    let v = v.find('%').map_or(v, |i| &v[..i]);
    v.trim()
}

/// The field letters of ABC 2.1 (section 3.1); any other letter and a colon is a mistake.
pub(crate) fn is_known_field(key: char) -> bool {
    "ABCDFGHIKLMmNOPQRrSsTUVWwXZ".contains(key)
}

/// Fields that belong in the tune header only (ABC 2.1, table 3.1).
pub(crate) fn is_header_only(key: char) -> bool {
    "ABCDFGHOSXZ".contains(key)
}

/// Fields that may stand inline, `[K:D]`, among the notes.
pub(crate) fn is_inline_field(key: char) -> bool {
    "IKLMmNPQRrUV".contains(key)
}

/// An unknown field letter at byte `at` (the letter and its colon).
pub(crate) fn unknown_field(at: usize, key: char) -> Diagnostic {
    Diagnostic::warning(
        Code::UnknownField,
        TextRange::new(at as u32, at as u32 + 2),
        format!("unknown field {key}: (ABC 2.1 defines no such field)"),
    )
}
