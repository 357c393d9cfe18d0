//! Why a passage matched: its notes aligned with the query's (transposition, notes that agree,
//! differ, were inserted or dropped), the bars on both sides, and the two parts of the score.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use tunelens_models::abc::notes::{
    align, describe_transposition, voice_notes, AlignOp, Alignment, Note,
};
use tunelens_models::abc::{self, AbcFile, Level, SourceText, TextRange};
use tunelens_models::musicxml;

use super::query::Match;

/// The explanation of one match, for scripts (`similar --json`) and people (`summary`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Semitones from the query to the match, octaves folded into -5..=6.
    pub transposition: i16,
    /// "same key", "up a perfect 4th", ...
    pub interval: &'static str,
    /// Notes of the query passage, and how the match's notes pair with them.
    pub notes: usize,
    pub same: usize,
    pub changed: usize,
    /// Of the changed notes, those moved by a step in the same rhythm (a variation).
    pub stepped: usize,
    pub inserted: usize,
    pub dropped: usize,
    pub query_bars: [u32; 2],
    pub match_bars: [u32; 2],
    pub vector_score: f32,
    pub symbolic_score: f32,
    /// E.g. "bars 5–8 = bars 3–6 of The Kesh, up a perfect 4th, 2 of 24 notes differ".
    pub summary: String,
    /// The match's notes without an equal partner in the query (changed in place, or only
    /// the match's), as byte ranges in the matched file: what the compare page colours.
    #[serde(skip)]
    pub differing: Vec<TextRange>,
}

/// A matched file as the index read it: its text (MusicXML converted to ABC, as indexing
/// does, so bar numbers agree) and its parse.
pub struct ParsedFile {
    pub source: SourceText,
    pub file: AbcFile,
}

impl ParsedFile {
    /// Reads and parses `path`; `None` when it can no longer be read as it was indexed.
    pub fn read(path: &str) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        let source = if musicxml::is_musicxml_path(Path::new(path)) {
            let converted = musicxml::convert_with(&bytes, path, musicxml::Limits::default());
            SourceText::from_text(converted.ok()?.abc)
        } else {
            SourceText::from_bytes(&bytes, abc::DEFAULT_SIZE_LIMIT).ok()?
        };
        let file = abc::parse(&source);
        Some(Self { source, file })
    }
}

/// Parsed matched files kept between requests: a daemon's hovers and checks keep matching the
/// same corpus files, and reading and parsing one costs more than the rest of a hover. The
/// `capacity` most recently used are kept, each checked against its file's length and
/// modification time before reuse.
///
/// MusicXML files are not read through it: converting a score takes 3 ms on average and over
/// 100 ms for a large one (the music21 quartets), per hover, and the originality check would
/// convert hundreds per edit. The daemon lists their matches unexplained until the index
/// keeps each score's converted ABC (the one-shot commands convert, through
/// [`ParsedFile::read`]).
pub struct FileCache {
    capacity: usize,
    entries: Mutex<Vec<Cached>>,
}

struct Cached {
    path: String,
    stamp: (u64, Option<SystemTime>),
    parsed: Arc<ParsedFile>,
    used: u64,
}

/// Files a daemon keeps parsed: a corpus file parses to a few hundred KB.
const DEFAULT_CAPACITY: usize = 16;

impl Default for FileCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl FileCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Files held parsed.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `path` parsed, from the cache when the file is unchanged since; `None` for a MusicXML
    /// score (see [`Self::get_with`]).
    pub fn get(&self, path: &str) -> Option<Arc<ParsedFile>> {
        self.get_with(path, false)
    }

    /// [`Self::get`], converting a MusicXML score when `musicxml` says so. A large score takes
    /// over 100 ms to convert, once per file while it stays cached: worth it for a request a
    /// person made (similar, compare), not for every window of an originality check.
    pub fn get_with(&self, path: &str, musicxml: bool) -> Option<Arc<ParsedFile>> {
        if !musicxml && musicxml::is_musicxml_path(Path::new(path)) {
            return None;
        }
        let meta = std::fs::metadata(path).ok()?;
        let stamp = (meta.len(), meta.modified().ok());
        {
            let mut entries = self.lock();
            let tick = entries.iter().map(|e| e.used).max().unwrap_or(0) + 1;
            if let Some(e) = entries
                .iter_mut()
                .find(|e| e.path == path && e.stamp == stamp)
            {
                e.used = tick;
                return Some(e.parsed.clone());
            }
        }
        // Parsed without the lock, so a hover never waits on a check's parsing (two requests
        // may then parse one file twice; the second copy replaces the first).
        let parsed = Arc::new(ParsedFile::read(path)?);
        let mut entries = self.lock();
        let tick = entries.iter().map(|e| e.used).max().unwrap_or(0) + 1;
        entries.retain(|e| e.path != path);
        if entries.len() >= self.capacity {
            if let Some(oldest) = (0..entries.len()).min_by_key(|&i| entries[i].used) {
                entries.swap_remove(oldest);
            }
        }
        entries.push(Cached {
            path: path.to_owned(),
            stamp,
            parsed: parsed.clone(),
            used: tick,
        });
        Some(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Cached>> {
        // Plain data: still usable after a panic elsewhere.
        crate::locks::lock(&self.entries)
    }
}

enum Source<'a> {
    /// An editor's buffer, as the caller holds it.
    Borrowed(&'a SourceText, &'a AbcFile),
    Read(Arc<ParsedFile>),
}

/// Reads matched files once each (a result list often holds several passages of one file),
/// through a [`FileCache`] when given one.
#[derive(Default)]
pub struct Explainer<'a> {
    files: HashMap<String, Option<Source<'a>>>,
    cache: Option<&'a FileCache>,
    /// Whether a cached explainer converts MusicXML matches ([`FileCache::get_with`]).
    musicxml: bool,
}

impl<'a> Explainer<'a> {
    /// An explainer that reads files through `cache`.
    pub fn with_cache(cache: &'a FileCache) -> Self {
        Self {
            files: HashMap::new(),
            cache: Some(cache),
            musicxml: false,
        }
    }

    /// Explains MusicXML matches too, converting each score once into the cache.
    pub fn with_musicxml(mut self, musicxml: bool) -> Self {
        self.musicxml = musicxml;
        self
    }

    /// Uses this text for `path` instead of reading the file (an editor's unsaved buffer).
    pub fn insert(&mut self, path: String, source: &'a SourceText, file: &'a AbcFile) {
        self.files
            .insert(path, Some(Source::Borrowed(source, file)));
    }

    /// The text and parse of `path`: the caller's buffer when one was inserted, else the file
    /// as read now (once per explainer); `None` when it can no longer be read.
    pub fn file(&mut self, path: &str) -> Option<(&SourceText, &AbcFile)> {
        let (cache, musicxml) = (self.cache, self.musicxml);
        let parsed = self.files.entry(path.to_owned()).or_insert_with(|| {
            let parsed = match cache {
                Some(c) => c.get_with(path, musicxml),
                None => ParsedFile::read(path).map(Arc::new),
            };
            parsed.map(Source::Read)
        });
        Some(match parsed.as_ref()? {
            Source::Borrowed(s, f) => (*s, *f),
            Source::Read(p) => (&p.source, &p.file),
        })
    }

    /// Explains passage match `m` against the query's notes and bars; `None` for whole tunes
    /// or when the matched file can no longer be read as indexed.
    pub fn explain(
        &mut self,
        query: &[Note],
        query_bars: [u32; 2],
        m: &Match,
    ) -> Option<Explanation> {
        let [first, last] = m.bars?;
        if m.level != Level::Passage || query.is_empty() {
            return None;
        }
        let (source, file) = self.file(&m.path)?;
        let tune = file.tunes.iter().find(|t| t.index == m.tune)?;
        let voice = tune.voices.iter().position(|v| v.id == m.voice)?;
        let notes = voice_notes(source, tune, voice);
        let theirs = notes.bars(first.saturating_sub(1) as usize..last as usize);
        let alignment = align(query, theirs);
        let folded = (alignment.transposition + 5).rem_euclid(12) - 5;
        let interval = describe_transposition(alignment.transposition);
        let summary = format!(
            "bars {}–{} = bars {first}–{last} of {}, {interval}, {}",
            query_bars[0],
            query_bars[1],
            m.title.as_deref().unwrap_or("(untitled)"),
            notes_differ(query.len(), &alignment),
        );
        let differing = alignment
            .ops
            .iter()
            .filter_map(|op| match *op {
                AlignOp::Changed { b, .. } | AlignOp::Inserted { b } => Some(b as usize),
                _ => None,
            })
            .filter_map(|b| theirs.get(b).map(|n| n.range))
            .collect();
        Some(Explanation {
            transposition: folded,
            interval,
            notes: query.len(),
            same: alignment.same(),
            changed: alignment.changed(),
            stepped: alignment.stepped(query, theirs),
            inserted: alignment.inserted(),
            dropped: alignment.dropped(),
            query_bars,
            match_bars: [first, last],
            vector_score: m.vector_score,
            symbolic_score: m.symbolic_score,
            summary,
            differing,
        })
    }
}

/// "2 of 24 notes differ": of the query's notes, those without an equal partner. Notes only
/// the match has are counted apart; counted in, they would read "23 of 18 notes differ".
fn notes_differ(notes: usize, alignment: &Alignment) -> String {
    let differ = alignment.changed() + alignment.dropped();
    match alignment.inserted() {
        0 => format!("{differ} of {notes} notes differ"),
        1 => format!("{differ} of {notes} notes differ, and the match has 1 note more"),
        n => format!("{differ} of {notes} notes differ, and the match has {n} notes more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_only_the_match_has_are_not_counted_as_differing_query_notes() {
        use tunelens_models::abc::notes::AlignOp;
        let alignment = Alignment {
            transposition: 0,
            ops: vec![
                AlignOp::Same { a: 0, b: 0 },
                AlignOp::Changed { a: 1, b: 1 },
                AlignOp::Inserted { b: 2 },
                AlignOp::Inserted { b: 3 },
                AlignOp::Dropped { a: 2 },
            ],
        };
        assert_eq!(
            notes_differ(3, &alignment),
            "2 of 3 notes differ, and the match has 2 notes more"
        );
        let exact = Alignment {
            transposition: 5,
            ops: vec![AlignOp::Same { a: 0, b: 0 }],
        };
        assert_eq!(notes_differ(1, &exact), "0 of 1 notes differ");
    }

    #[test]
    fn file_cache_reuses_unchanged_files_and_rereads_changed_ones() {
        let dir = std::env::temp_dir().join(format!("tunelens-filecache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let a = dir.join("a.abc");
        let b = dir.join("b.abc");
        std::fs::write(&a, "X:1\nT:A\nK:D\nDEF GAB|\n").expect("write");
        std::fs::write(&b, "X:1\nT:B\nK:G\nGAB cde|\n").expect("write");
        let (a, b) = (a.display().to_string(), b.display().to_string());
        let cache = FileCache::new(1);
        let first = cache.get(&a).expect("parses");
        assert!(Arc::ptr_eq(&first, &cache.get(&a).expect("parses")));
        // A change of length is seen without trusting the clock's resolution.
        std::fs::write(&a, "X:1\nT:A2\nK:D\nDEF GAB|ABc d2|\n").expect("write");
        let changed = cache.get(&a).expect("parses");
        assert!(!Arc::ptr_eq(&first, &changed));
        assert_eq!(changed.file.tunes[0].title(), Some("A2"));
        // Capacity 1: reading b evicts a.
        cache.get(&b).expect("parses");
        assert!(!Arc::ptr_eq(&changed, &cache.get(&a).expect("parses")));
        // A file that is gone is no explanation, not an error.
        std::fs::remove_file(&b).expect("rm");
        assert!(cache.get(&b).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
