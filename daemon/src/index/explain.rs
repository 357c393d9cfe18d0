//! Why a passage matched: its notes aligned with the query's (transposition, notes that agree,
//! differ, were inserted or dropped), the bars on both sides, and the two parts of the score.

use std::collections::HashMap;

use serde::Serialize;
use tunelens_models::abc::notes::{align, describe_transposition, voice_notes, Note};
use tunelens_models::abc::{self, AbcFile, Level, SourceText};

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
    pub inserted: usize,
    pub dropped: usize,
    pub query_bars: [u32; 2],
    pub match_bars: [u32; 2],
    pub vector_score: f32,
    pub symbolic_score: f32,
    /// E.g. "bars 5–8 = bars 3–6 of The Kesh, up a perfect 4th, 2 of 24 notes differ".
    pub summary: String,
}

/// Reads matched files once each (a result list often holds several passages of one file).
#[derive(Default)]
pub struct Explainer {
    files: HashMap<String, Option<(SourceText, AbcFile)>>,
}

impl Explainer {
    /// Uses this text for `path` instead of reading the file (an editor's unsaved buffer).
    pub fn insert(&mut self, path: String, source: SourceText, file: AbcFile) {
        self.files.insert(path, Some((source, file)));
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
        let parsed = self.files.entry(m.path.clone()).or_insert_with(|| {
            let bytes = std::fs::read(&m.path).ok()?;
            let source = SourceText::from_bytes(&bytes, abc::DEFAULT_SIZE_LIMIT).ok()?;
            let file = abc::parse(&source);
            Some((source, file))
        });
        let (source, file) = parsed.as_ref()?;
        let tune = file.tunes.iter().find(|t| t.index == m.tune)?;
        let voice = tune.voices.iter().position(|v| v.id == m.voice)?;
        let notes = voice_notes(source, tune, voice);
        let theirs = notes.bars(first.saturating_sub(1) as usize..last as usize);
        let alignment = align(query, theirs);
        let folded = (alignment.transposition + 5).rem_euclid(12) - 5;
        let interval = describe_transposition(alignment.transposition);
        let differ = alignment.changed() + alignment.inserted() + alignment.dropped();
        let summary = format!(
            "bars {}–{} = bars {first}–{last} of {}, {interval}, {differ} of {} notes differ",
            query_bars[0],
            query_bars[1],
            m.title.as_deref().unwrap_or("(untitled)"),
            query.len(),
        );
        Some(Explanation {
            transposition: folded,
            interval,
            notes: query.len(),
            same: alignment.same(),
            changed: alignment.changed(),
            inserted: alignment.inserted(),
            dropped: alignment.dropped(),
            query_bars,
            match_bars: [first, last],
            vector_score: m.vector_score,
            symbolic_score: m.symbolic_score,
            summary,
        })
    }
}
