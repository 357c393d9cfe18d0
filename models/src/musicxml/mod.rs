//! MusicXML → ABC: what notation editors (MuseScore, Sibelius, Dorico, Finale) export, read
//! as the ABC the rest of tunelens knows, with every bar remembering the measure it came from.
//!
//! - [`container`]: bytes → XML text (`.mxl` archives through `META-INF/container.xml`,
//!   UTF-8 / UTF-16 / Latin-1), sizes bounded before inflating;
//! - [`read`]: XML → [`score::Score`] (partwise and timewise), timed items per measure;
//! - [`write`]: the score → ABC 2.1, one `V:` per MusicXML voice, one bar per measure;
//! - [`names`]: keys, clefs, meters, decorations and chord symbols in ABC's words.
//!
//! The one entry point is [`convert`]: a file's bytes and its name in, the ABC text and the
//! map from bars back to measures out. Everything that reads score files (the CLI's input
//! reader, the indexer, the daemon's watcher) calls it the same way.
//!
//! **Architecture Invariant:** conversion never panics and never reads past its limits: bad
//! input is a [`MusicXmlError`] naming the file (and the line for XML errors), odd music a
//! [`Warning`] naming the part and measure.

mod container;
mod error;
mod frac;
mod names;
mod read;
mod score;
mod write;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use error::{MusicXmlError, Warning};

use crate::abc::TextRange;

/// The file extensions read as MusicXML (any case): `.musicxml`, `.xml`, `.mxl`.
pub const EXTENSIONS: [&str; 3] = ["musicxml", "xml", "mxl"];

/// Whether a path names a MusicXML file, by its extension.
pub fn is_musicxml_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The ABC text of a score and where its measures went.
#[derive(Debug, Clone, Serialize)]
pub struct Converted {
    /// One ABC tune (`X:1`), a voice per MusicXML voice.
    pub abc: String,
    /// Every bar of every voice, in text order, with the measure it came from.
    pub bars: Vec<MeasureRef>,
    pub parts: Vec<PartInfo>,
    pub warnings: Vec<Warning>,
}

/// One part of the score and the ABC voices it became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    /// 1-based, in score order.
    pub number: u32,
    pub id: String,
    pub name: Option<String>,
    /// ABC voice ids: `"2"` for a part with one voice, `"2.1"`, `"2.2"` for more.
    pub voices: Vec<String>,
    pub measures: u32,
}

/// Where a bar of the ABC text came from: a measure of a part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasureRef {
    /// 1-based part number, in score order.
    pub part: u32,
    pub part_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_name: Option<String>,
    /// The measure's `number` as the score writes it ("12", "0" for a pickup, "12a").
    pub measure: String,
    /// The ABC voice and the 1-based bar within it (the `abc` layer's `Bar::number`).
    pub voice: String,
    pub bar: u32,
    /// The bar's bytes in [`Converted::abc`], bar line included.
    pub range: TextRange,
}

impl std::fmt::Display for MeasureRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "part {}", self.part)?;
        if let Some(name) = &self.part_name {
            write!(f, " ({name})")?;
        }
        write!(f, ", measure {}", self.measure)
    }
}

impl Converted {
    /// The measure whose bar holds byte `offset` of the ABC text.
    pub fn measure_at(&self, offset: u32) -> Option<&MeasureRef> {
        let i = self.bars.partition_point(|b| b.range.end <= offset);
        self.bars.get(i).filter(|b| b.range.contains(offset))
    }

    /// The measure of bar `bar` (1-based) of ABC voice `voice`.
    pub fn measure_of(&self, voice: &str, bar: u32) -> Option<&MeasureRef> {
        self.bars.iter().find(|b| b.voice == voice && b.bar == bar)
    }

    /// The first bar of `part` (1-based) whose measure is numbered `number`; failing that,
    /// its `number`-th bar (for scores whose numbers are not plain counts).
    pub fn find_measure(&self, part: u32, number: &str) -> Option<&MeasureRef> {
        let first_voice = self
            .parts
            .iter()
            .find(|p| p.number == part)?
            .voices
            .first()?;
        let in_voice = || self.bars.iter().filter(move |b| &b.voice == first_voice);
        in_voice().find(|b| b.measure == number).or_else(|| {
            number
                .parse::<u32>()
                .ok()
                .and_then(|n| in_voice().find(|b| b.bar == n))
        })
    }
}

/// Limits on what one conversion reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest file, and the largest score inflated from an `.mxl` archive, in bytes.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: crate::abc::DEFAULT_SIZE_LIMIT,
        }
    }
}

/// Converts a MusicXML file (`.musicxml`/`.xml` text or an `.mxl` archive, told apart by
/// their bytes) to ABC, with the default limits. `name` is how errors name the file.
pub fn convert(bytes: &[u8], name: &str) -> Result<Converted, MusicXmlError> {
    convert_with(bytes, name, Limits::default())
}

/// [`convert`] with explicit limits.
pub fn convert_with(bytes: &[u8], name: &str, limits: Limits) -> Result<Converted, MusicXmlError> {
    let mut warnings = Vec::new();
    let text = container::score_text(bytes, name, limits.max_bytes, &mut warnings)?;
    let score = read::read(&text, name, &mut warnings)?;
    // The ABC is far smaller than the XML it comes from; the limit only stops pathological
    // scores (thousands of voices, each padded through every measure).
    let written = write::write(&score, name, limits.max_bytes.max(1 << 20))?;
    Ok(Converted {
        abc: written.abc,
        bars: written.bars,
        parts: written.parts,
        warnings,
    })
}
