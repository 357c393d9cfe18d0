//! Turning the bytes of a file into text we can parse, and byte offsets back into the
//! `line:col` positions that editors and people use.

use serde::Serialize;

use super::{Code, Diagnostic, TextRange};

/// Files larger than this are refused unless the caller raises the limit: no real ABC
/// collection comes close, and a huge input is far more likely a mistake (a binary, a dump).
pub const DEFAULT_SIZE_LIMIT: usize = 16 * 1024 * 1024;

/// Why a file's bytes cannot be read as ABC at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("file is empty")]
    Empty,
    #[error("file is {size} bytes, over the limit of {limit} bytes (raise it with --max-bytes)")]
    TooLarge { size: usize, limit: usize },
    #[error("line {line}: NUL byte: this looks like a binary file, not ABC text")]
    Binary { line: u32 },
}

/// How the bytes were decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Utf8,
    /// Not valid UTF-8; read as Latin-1, as most old ABC files are. Offsets then count the
    /// UTF-8 text, and `line:col` positions are what the user's editor shows.
    Latin1,
}

/// The decoded text of one file with its line index.
#[derive(Debug, Clone)]
pub struct SourceText {
    text: String,
    encoding: Encoding,
    lines: LineIndex,
    diagnostics: Vec<Diagnostic>,
}

impl SourceText {
    /// Decodes a file's bytes. UTF-8 (with or without a byte order mark) is read as is; any
    /// other bytes are read as Latin-1 with a warning on the first line that was not UTF-8.
    pub fn from_bytes(bytes: &[u8], size_limit: usize) -> Result<Self, SourceError> {
        if bytes.len() > size_limit {
            return Err(SourceError::TooLarge {
                size: bytes.len(),
                limit: size_limit,
            });
        }
        if bytes.is_empty() {
            return Err(SourceError::Empty);
        }
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            return Err(SourceError::Binary {
                line: line_of_byte(bytes, nul),
            });
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let (text, encoding, bad_at) = match std::str::from_utf8(bytes) {
            Ok(s) => (s.to_owned(), Encoding::Utf8, None),
            Err(e) => {
                // Latin-1 maps each byte to the code point of the same value.
                let text: String = bytes.iter().map(|&b| char::from(b)).collect();
                (text, Encoding::Latin1, Some(e.valid_up_to()))
            }
        };
        let mut source = Self::from_text(text);
        source.encoding = encoding;
        if let Some(at) = bad_at {
            let start = source.lines.line_start(line_of_byte(bytes, at));
            source.diagnostics.push(Diagnostic::warning(
                Code::NotUtf8,
                TextRange::new(start, start),
                "not valid UTF-8: read the file as Latin-1",
            ));
        }
        Ok(source)
    }

    /// Wraps text that is already decoded (an editor buffer, a string from a script).
    pub fn from_text(text: String) -> Self {
        let lines = LineIndex::new(&text);
        Self {
            text,
            encoding: Encoding::Utf8,
            lines,
            diagnostics: Vec::new(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    pub fn line_index(&self) -> &LineIndex {
        &self.lines
    }

    /// Warnings from decoding (e.g. the Latin-1 fallback).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The text of a range, or `""` when the range does not fall on character boundaries
    /// of this text (never a panic).
    pub fn slice(&self, range: TextRange) -> &str {
        self.text
            .get(range.start as usize..range.end as usize)
            .unwrap_or("")
    }

    pub fn line_col(&self, offset: u32) -> LineCol {
        self.lines.line_col(&self.text, offset)
    }
}

/// A 1-based line and a 1-based column counted in characters, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}

impl std::fmt::Display for LineCol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Byte offsets of line starts, for turning offsets into `line:col` in O(log n).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<u32>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        // `match_indices` on a char searches with memchr, far faster than a byte loop.
        starts.extend(text.match_indices('\n').map(|(i, _)| i as u32 + 1));
        Self { starts }
    }

    /// Number of lines (a trailing newline opens one more, empty line).
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Byte offset where 1-based `line` starts (clamped to the last line).
    pub fn line_start(&self, line: u32) -> u32 {
        let i = (line.max(1) as usize - 1).min(self.starts.len() - 1);
        self.starts[i]
    }

    /// The `line:col` of a byte offset in `text` (the text this index was built from).
    /// Offsets past the end clamp to the end.
    pub fn line_col(&self, text: &str, offset: u32) -> LineCol {
        let offset = offset.min(text.len() as u32);
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line] as usize;
        let col = text
            .get(start..offset as usize)
            .map_or(offset as usize - start, |s| s.chars().count());
        LineCol {
            line: line as u32 + 1,
            col: col as u32 + 1,
        }
    }
}

fn line_of_byte(bytes: &[u8], at: usize) -> u32 {
    bytes[..at.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf8_and_latin1() {
        let s = SourceText::from_bytes("T:Café\n".as_bytes(), 100).unwrap();
        assert_eq!(s.encoding(), Encoding::Utf8);
        assert_eq!(s.text(), "T:Café\n");
        assert!(s.diagnostics().is_empty());

        let s = SourceText::from_bytes(b"X:1\nT:Caf\xe9\n", 100).unwrap();
        assert_eq!(s.encoding(), Encoding::Latin1);
        assert_eq!(s.text(), "X:1\nT:Café\n");
        assert_eq!(s.diagnostics().len(), 1);
        assert_eq!(s.line_col(s.diagnostics()[0].range.start).line, 2);
    }

    #[test]
    fn refuses_binary_empty_and_huge() {
        assert_eq!(
            SourceText::from_bytes(b"X:1\nK:C\n\0abc", 100).unwrap_err(),
            SourceError::Binary { line: 3 }
        );
        assert_eq!(
            SourceText::from_bytes(b"", 100).unwrap_err(),
            SourceError::Empty
        );
        assert_eq!(
            SourceText::from_bytes(b"X:1\n", 3).unwrap_err(),
            SourceError::TooLarge { size: 4, limit: 3 }
        );
    }

    #[test]
    fn strips_bom() {
        let s = SourceText::from_bytes(b"\xEF\xBB\xBFX:1\n", 100).unwrap();
        assert_eq!(s.text(), "X:1\n");
    }

    #[test]
    fn line_col_counts_characters() {
        let s = SourceText::from_text("ab\néé|x\n".to_owned());
        assert_eq!(s.line_col(0), LineCol { line: 1, col: 1 });
        assert_eq!(s.line_col(3), LineCol { line: 2, col: 1 });
        // After two two-byte characters.
        assert_eq!(s.line_col(7), LineCol { line: 2, col: 3 });
        assert_eq!(s.line_col(10), LineCol { line: 3, col: 1 });
        assert_eq!(s.line_col(999), LineCol { line: 3, col: 1 });
    }
}
