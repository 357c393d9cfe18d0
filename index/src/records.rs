//! What the index stores, as plain serde data. Each record is JSON in sled: slower than a
//! binary encoding, but readable with any tool when something goes wrong, and the records are
//! small next to the vectors (which are raw little-endian f32).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tunelens_models::abc::{Level, LineCol, TextRange};

/// Bumped whenever a record's meaning or a key's layout changes. A database written by a newer
/// schema is refused; an older one is rebuilt on the user's word.
pub const SCHEMA_VERSION: u32 = 1;

/// The key of a vector: which model made it, from exactly which input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContentKey(#[serde(with = "hex32")] pub [u8; 32]);

/// One indexed file of a corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    /// sha256 of the file's bytes: an unchanged file is skipped without parsing.
    #[serde(with = "hex32")]
    pub sha256: [u8; 32],
    /// The model and unit settings the units were made with; a change re-embeds.
    pub model: String,
    pub settings: UnitSettings,
    /// The collection the file belongs to within its corpus (e.g. `oneills1850` of music21).
    #[serde(default)]
    pub collection: Option<String>,
    pub tunes: Vec<TuneRecord>,
    /// Every bar of every voice, so a place in the file maps to its bar without re-parsing.
    #[serde(default)]
    pub bars: Vec<BarRecord>,
    pub units: Vec<UnitRecord>,
}

impl FileRecord {
    /// What decides whether the file must be indexed again.
    pub fn stamp(&self) -> FileStamp {
        FileStamp {
            sha256: self.sha256,
            model: self.model.clone(),
            settings: self.settings,
        }
    }
}

/// What decides whether a file must be indexed again: its bytes, the model and the unit
/// settings. Stored apart from the record (`index::store`), so that checking a corpus at start
/// reads a few bytes a file rather than every record (which sled would then keep in its cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    pub sha256: [u8; 32],
    pub model: String,
    pub settings: UnitSettings,
}

impl FileStamp {
    /// `sha256 (32 bytes) | window (u32 LE) | stride (u32 LE) | model (UTF-8)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + self.model.len());
        out.extend_from_slice(&self.sha256);
        out.extend_from_slice(&self.settings.window.to_le_bytes());
        out.extend_from_slice(&self.settings.stride.to_le_bytes());
        out.extend_from_slice(self.model.as_bytes());
        out
    }

    /// The inverse of [`to_bytes`](Self::to_bytes); `None` for bytes it did not write.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let sha256 = bytes.get(..32)?.try_into().ok()?;
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        Some(Self {
            sha256,
            settings: UnitSettings {
                window: word(32)?,
                stride: word(36)?,
            },
            model: String::from_utf8(bytes.get(40..)?.to_vec()).ok()?,
        })
    }
}

/// One bar of one voice of a tune. A daemon holds one per bar of every corpus (~400k for
/// music21): 64 bytes each, where an inline measure and an owned voice name made it 120 and
/// an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarRecord {
    pub tune: usize,
    pub voice: VoiceId,
    /// 1-based within the voice.
    pub number: u32,
    pub range: Span,
    /// For a MusicXML file: the part and measure the bar was converted from (its `range` is
    /// into the converted ABC, which the user never sees). Boxed: ABC bars have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<Box<MeasureLoc>>,
}

/// A voice's name as records hold it. Every bar and unit of a file names its voice, and
/// nearly all files have one to four names: records read from the store share one
/// allocation per name (see [`VoiceId::interned`]) instead of holding one per bar and unit
/// (700k small blocks for music21). Reads and writes as a plain JSON string.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VoiceId(Arc<str>);

impl VoiceId {
    /// `name`, sharing the allocation of an equal name this thread made recently. The last
    /// [`RECENT_VOICES`] names are kept per thread; a search among them is cheaper than the
    /// allocation it saves.
    pub fn interned(name: &str) -> Self {
        thread_local! {
            static RECENT: std::cell::RefCell<Vec<Arc<str>>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        RECENT.with(|recent| {
            let mut recent = recent.borrow_mut();
            if let Some(found) = recent.iter().find(|v| ***v == *name) {
                return Self(found.clone());
            }
            if recent.len() >= RECENT_VOICES {
                recent.remove(0);
            }
            let id: Arc<str> = name.into();
            recent.push(id.clone());
            Self(id)
        })
    }
}

/// Voice names each thread keeps for [`VoiceId::interned`].
const RECENT_VOICES: usize = 32;

impl std::ops::Deref for VoiceId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for VoiceId {
    fn from(name: &str) -> Self {
        Self::interned(name)
    }
}

impl PartialEq<str> for VoiceId {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for VoiceId {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl std::fmt::Debug for VoiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for VoiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for VoiceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for VoiceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = VoiceId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a voice name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<VoiceId, E> {
                Ok(VoiceId::interned(v))
            }
        }
        d.deserialize_str(Name)
    }
}

/// A measure of a MusicXML part, as results name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureLoc {
    pub part: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_name: Option<String>,
    pub measure: String,
}

impl std::fmt::Display for MeasureLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "part {}", self.part)?;
        if let Some(name) = &self.part_name {
            write!(f, " ({name})")?;
        }
        write!(f, ", measure {}", self.measure)
    }
}

/// How units are cut; part of every file record so that changing it re-indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitSettings {
    pub window: u32,
    pub stride: u32,
}

impl Default for UnitSettings {
    fn default() -> Self {
        Self {
            window: 4,
            stride: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TuneRecord {
    pub index: usize,
    pub reference: Option<String>,
    pub title: Option<String>,
    pub meter: Option<String>,
    pub key: Option<String>,
    pub rhythm: Option<String>,
    /// Every header field as (letter, value), in file order: composer, origin, source, notes.
    #[serde(default)]
    pub fields: Vec<(char, String)>,
    pub range: Span,
}

/// A tune or passage with a vector. A daemon holds one per unit of every corpus (330k for
/// music21), so the lists are boxed slices, not `Vec`s: no spare capacity to carry, and 8
/// bytes less each (the JSON is the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub level: Level,
    pub tune: usize,
    pub voice: VoiceId,
    pub first_bar: u32,
    pub last_bar: u32,
    pub range: Span,
    pub key: ContentKey,
    /// A passage's interval n-grams (see `index::symbolic`); empty for whole tunes.
    #[serde(default, skip_serializing_if = "<[u32]>::is_empty")]
    pub ngrams: Box<[u32]>,
}

/// A place in a file, in bytes and as editors count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: u32,
    pub end: u32,
    pub start_lc: LineColRecord,
    pub end_lc: LineColRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineColRecord {
    pub line: u32,
    pub col: u32,
}

impl From<LineCol> for LineColRecord {
    fn from(lc: LineCol) -> Self {
        Self {
            line: lc.line,
            col: lc.col,
        }
    }
}

impl Span {
    pub fn new(range: TextRange, start: LineCol, end: LineCol) -> Self {
        Self {
            start: range.start,
            end: range.end,
            start_lc: start.into(),
            end_lc: end.into(),
        }
    }

    pub fn range(&self) -> TextRange {
        TextRange::new(self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_refuse_short_bytes() {
        let stamp = FileStamp {
            sha256: [7; 32],
            model: "clamp-abc123".into(),
            settings: UnitSettings {
                window: 4,
                stride: 2,
            },
        };
        assert_eq!(
            FileStamp::from_bytes(&stamp.to_bytes()),
            Some(stamp.clone())
        );
        assert_eq!(FileStamp::from_bytes(&stamp.to_bytes()[..39]), None);
        assert_eq!(FileStamp::from_bytes(b""), None);
    }

    #[test]
    fn voice_names_read_from_json_share_one_allocation_and_write_back_the_same() {
        let bars: Vec<VoiceId> =
            serde_json::from_str(r#"["1", "T\u0031", "1", "T1"]"#).expect("voice names");
        assert_eq!(bars, ["1", "T1", "1", "T1"].map(VoiceId::from));
        assert!(Arc::ptr_eq(&bars[0].0, &bars[2].0));
        assert!(
            Arc::ptr_eq(&bars[1].0, &bars[3].0),
            "escaped or not, one name"
        );
        assert_eq!(
            serde_json::to_string(&bars).expect("json"),
            r#"["1","T1","1","T1"]"#
        );
        // More distinct names than are kept: each is still read as written.
        let many: Vec<String> = (0..3 * RECENT_VOICES).map(|i| format!("V{i}")).collect();
        for name in many.iter().chain(&many) {
            assert_eq!(VoiceId::interned(name), name.as_str());
        }
    }

    #[test]
    fn a_bar_record_stays_small() {
        // A daemon holds ~400k of them; see `BarRecord`.
        assert!(std::mem::size_of::<BarRecord>() <= 64);
    }
}

/// 32-byte hashes as hex strings in JSON.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&hex)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let hex = String::deserialize(d)?;
        let mut out = [0u8; 32];
        if hex.len() != 64 {
            return Err(serde::de::Error::custom("expected 64 hex digits"));
        }
        for (i, byte) in out.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(serde::de::Error::custom)?;
        }
        Ok(out)
    }
}
