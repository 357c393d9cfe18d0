//! One version of one document, analysed: its text parsed into tunes and bars, cut into units
//! with their patches and content keys, and the positions editors use. Immutable: handlers
//! read it from an `Arc` while newer versions are being made.

use sha2::{Digest, Sha256};
use tunelens_models::abc::{self, AbcFile, Level, MusicView, SourceText, TextRange};
use tunelens_protocol::{Diagnostic, Position, Range, Severity};

use super::lines::Lines;
use tunelens_index::job::record_source;
use tunelens_index::{ContentKey, FileRecord, UnitSettings};
use tunelens_models::encoders::PatchIds;

pub struct Snapshot {
    /// The canonical path (the catalog's key) and the URI the editor knows it by.
    pub path: String,
    pub uri: String,
    /// The editor's version; `None` for a file read from disk.
    pub version: Option<i32>,
    pub source: SourceText,
    pub file: AbcFile,
    pub lines: Lines,
    pub record: FileRecord,
    /// Each unit's patches, in `record.units` order.
    pub patches: Vec<Vec<PatchIds>>,
}

impl Snapshot {
    /// Analyses `text`.
    pub fn new(
        path: String,
        uri: String,
        version: Option<i32>,
        text: String,
        model_id: &str,
        view: MusicView,
        settings: UnitSettings,
    ) -> Self {
        let source = SourceText::from_text(text);
        let file = abc::parse(&source);
        let lines = Lines::new(source.text());
        let (record, units) =
            record_source(&source, &file, None, path.clone(), model_id, view, settings);
        let patches = units.into_iter().map(|(_, p)| p).collect();
        Self {
            path,
            uri,
            version,
            source,
            file,
            lines,
            record,
            patches,
        }
    }

    pub fn text(&self) -> &str {
        self.source.text()
    }

    pub fn offset(&self, pos: Position) -> u32 {
        self.lines.offset(self.text(), pos)
    }

    pub fn range(&self, r: TextRange) -> Range {
        self.lines.range(self.text(), r.start, r.end)
    }

    /// The keys of units whose vectors are to be looked up, with their patches.
    pub fn units(&self) -> impl Iterator<Item = (&ContentKey, &Vec<PatchIds>)> {
        self.record.units.iter().map(|u| &u.key).zip(&self.patches)
    }

    /// The tune holding `offset`.
    pub fn tune_at(&self, offset: u32) -> Option<&abc::Tune> {
        self.file
            .tunes
            .iter()
            .find(|t| t.range.start <= offset && offset <= t.range.end)
    }

    /// The tune whose header holds `offset` (from `X:` to the end of the `K:` line).
    pub fn header_at(&self, offset: u32) -> Option<&abc::Tune> {
        self.tune_at(offset)
            .filter(|t| offset < t.body_start || t.voices.iter().all(|v| v.bars.is_empty()))
    }

    /// The unit (index into `record.units`) of the whole tune `tune`.
    pub fn tune_unit(&self, tune: usize) -> Option<usize> {
        self.record
            .units
            .iter()
            .position(|u| u.level == Level::Tune && u.tune == tune)
    }

    /// The passage at `offset`: the window that starts at the bar under the cursor (or the
    /// last window holding it, near the end of a voice), as `tunelens similar` picks it.
    /// Returns (unit index, bar index into `record.bars`).
    pub fn passage_at(&self, offset: u32) -> Option<(usize, usize)> {
        let tune = self.tune_at(offset)?.index;
        let (b, bar) = self
            .record
            .bars
            .iter()
            .enumerate()
            .filter(|(_, b)| b.tune == tune && offset < b.range.end)
            .min_by_key(|(_, b)| (!b.range.range().contains(offset), b.range.start))?;
        let u = self
            .record
            .units
            .iter()
            .enumerate()
            .filter(|(_, u)| {
                u.level == Level::Passage
                    && u.tune == tune
                    && *u.voice == *bar.voice
                    && u.first_bar <= bar.number
                    && bar.number <= u.last_bar
            })
            .min_by_key(|(_, u)| u.first_bar.abs_diff(bar.number))?
            .0;
        Some((u, b))
    }

    /// The ABC layer's warnings, at their exact ranges: the parser's and the bar lengths'
    /// (`diagnostics::all`, the list `tunelens check --syntax` prints).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.source
            .diagnostics()
            .iter()
            .chain(&abc::diagnostics::all(&self.source, &self.file))
            .map(|d| Diagnostic {
                range: self.range(d.range),
                severity: match d.severity {
                    abc::Severity::Error => Severity::Error,
                    abc::Severity::Warning => Severity::Warning,
                    abc::Severity::Information => Severity::Information,
                    abc::Severity::Hint => Severity::Hint,
                },
                source: "abc".into(),
                code: Some(d.code.as_str().to_owned()),
                message: d.message.clone(),
            })
            .collect()
    }
}

/// sha256 of a text, to tell whether a file on disk changed.
pub fn text_hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}
