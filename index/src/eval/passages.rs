//! Passage → tune retrieval: the query sets a composer types (`Perturb`), windows cut from a
//! collection, the windows another tune holds note for note, the character n-gram baseline,
//! and the scores of a ranking.

use std::collections::HashMap;

use serde::Serialize;
use tunelens_models::abc::canonical::{render, MusicView};
use tunelens_models::abc::notes::Ratio;
use tunelens_models::abc::transpose::{self, Interval};
use tunelens_models::abc::{self, rewrite, Level, SourceText};

use super::{next, TuneFile};
use crate::symbolic::{passage_ngrams, SymbolicIndex};

/// How query windows are rewritten before they are asked: the way a composer types a
/// passage, not the way the collection wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Perturb {
    /// The windows as they are.
    None,
    /// Chord symbols, annotations, grace notes and decorations removed.
    Plain,
    /// Plain, and written with another `L:` (1/8 becomes 1/4, anything else 1/8), one bar per
    /// line.
    Respell,
    /// Plain, and about 12% of the notes moved one step up or down.
    Vary,
    /// Plain, and moved up a perfect fourth.
    Transpose,
}

impl Perturb {
    pub fn name(self) -> &'static str {
        match self {
            Perturb::None => "none",
            Perturb::Plain => "plain",
            Perturb::Respell => "respell",
            Perturb::Vary => "vary",
            Perturb::Transpose => "transpose",
        }
    }

    /// The query set's recipe applied to one window; `seed` picks the varied notes.
    pub fn apply(self, abc: &str, seed: u64) -> String {
        let plain = || rewrite::plain(abc);
        match self {
            Perturb::None => abc.to_owned(),
            Perturb::Plain => plain(),
            Perturb::Respell => {
                let unit = if abc.lines().any(|l| l.trim() == "L:1/8") {
                    Ratio::new(1, 4)
                } else {
                    Ratio::new(1, 8)
                };
                rewrite::one_bar_per_line(&rewrite::change_unit(&plain(), unit))
            }
            Perturb::Vary => transpose::vary(&plain(), 0.12, seed),
            Perturb::Transpose => transpose::transpose(&plain(), Interval::FOURTH_UP),
        }
    }
}

/// A query window and the tune it came from (`path#index`).
#[derive(Debug, Clone)]
pub struct Window {
    pub abc: String,
    pub source: String,
}

/// Every `window`-bar window of every tune, read as a short tune.
fn all_windows(
    files: &[TuneFile],
    window: usize,
) -> impl Iterator<Item = (String, abc::Unit)> + '_ {
    files.iter().flat_map(move |f| {
        f.file.tunes.iter().flat_map(move |tune| {
            let id = f.tune_id(tune.index);
            abc::units(&f.source, tune, Level::Passage, window, 1)
                .into_iter()
                .map(move |u| (id.clone(), u))
        })
    })
}

/// `count` full windows chosen at random (seeded) among all windows of all tunes.
pub fn cut_windows(files: &[TuneFile], window: usize, count: usize, seed: u64) -> Vec<Window> {
    let mut all: Vec<Window> = all_windows(files, window)
        .filter(|(_, unit)| (unit.last_bar - unit.first_bar + 1) as usize == window)
        .map(|(source, unit)| Window {
            abc: unit.text,
            source,
        })
        .collect();
    let mut rng = seed.max(1);
    let mut chosen = Vec::new();
    while chosen.len() < count.min(all.len()) {
        let i = (next(&mut rng) % all.len() as u64) as usize;
        chosen.push(all.swap_remove(i));
    }
    chosen
}

/// For each query, whether a window of another tune has the same notes in the canonical tonic
/// view (the same melody, however written and in whatever key): no ranker can tell which tune
/// such a query came from.
pub fn shared_windows(files: &[TuneFile], window: usize, queries: &[Window]) -> Vec<bool> {
    let music = |abc: &str| render(abc, MusicView::CanonicalTonic).unwrap_or_default();
    let mut owners: HashMap<String, Vec<String>> = HashMap::new();
    for (id, unit) in all_windows(files, window) {
        let tunes = owners.entry(music(&unit.text)).or_default();
        if !tunes.contains(&id) {
            tunes.push(id);
        }
    }
    queries
        .iter()
        .map(|q| owners.get(&music(&q.abc)).is_some_and(|t| t.len() > 1))
        .collect()
}

/// The interval n-grams of a query window (all its bars).
pub fn query_ngrams(abc_text: &str) -> Vec<u32> {
    let source = SourceText::from_text(abc_text.to_owned());
    let file = abc::parse(&source);
    let Some(tune) = file.tunes.first() else {
        return Vec::new();
    };
    let notes = abc::notes::voice_notes(&source, tune, 0);
    let bars = tune.voices.first().map_or(0, |v| v.bars.len()) as u32;
    passage_ngrams(&notes, 1, bars)
}

/// Tune ids in first-seen order, each once.
pub fn distinct(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The baseline ranking: every passage of every tune scored by the character 4-grams of its
/// music text it shares with the query (Dice), the way a plain text search would match.
pub fn chars_baseline(files: &[TuneFile], window: usize, queries: &[Window]) -> Vec<Vec<String>> {
    let mut index = SymbolicIndex::default();
    let mut owners = Vec::new();
    for (id, unit) in all_windows(files, window) {
        index.push(&char_grams(&unit.text));
        owners.push(id);
    }
    queries
        .iter()
        .map(|q| {
            let mut scored: Vec<(u32, f32)> =
                index.scores(&char_grams(&q.abc)).into_iter().collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.truncate(100);
            distinct(
                scored
                    .into_iter()
                    .map(|(row, _)| owners[row as usize].clone()),
            )
        })
        .collect()
}

/// Hashes of the 4-character pieces of a unit's music (its header field lines left out).
fn char_grams(text: &str) -> Vec<u32> {
    let music: Vec<u8> = text
        .lines()
        .filter(|l| {
            !(l.len() > 1 && l.as_bytes()[0].is_ascii_alphabetic() && l.as_bytes()[1] == b':')
        })
        .flat_map(|l| l.bytes())
        .collect();
    let mut grams: Vec<u32> = music
        .windows(4)
        .map(|w| {
            w.iter().fold(0x811c_9dc5u32, |h, &b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            })
        })
        .collect();
    grams.sort_unstable();
    grams.dedup();
    grams
}

/// Top-1 and top-10 of a ranking, and top-1 over the queries no other tune holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PassageScores {
    pub top1: f64,
    pub top10: f64,
    /// Queries that another tune also holds, note for note (cut windows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambiguous: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top1_unambiguous: Option<f64>,
}

/// The scores of `rankings` (each query's tunes, best first) against the queries' sources.
pub fn score(
    queries: &[Window],
    rankings: &[Vec<String>],
    twins: Option<&[bool]>,
) -> PassageScores {
    let (mut top1, mut top10, mut top1_clear) = (0usize, 0usize, 0usize);
    for (i, (q, tunes)) in queries.iter().zip(rankings).enumerate() {
        let rank = tunes.iter().position(|t| *t == q.source);
        top1 += usize::from(rank == Some(0));
        top10 += usize::from(rank.is_some_and(|r| r < 10));
        let twin = twins.is_some_and(|t| t[i]);
        top1_clear += usize::from(rank == Some(0) && !twin);
    }
    let ambiguous = twins.map(|t| t.iter().filter(|&&x| x).count());
    let n = queries.len().max(1) as f64;
    PassageScores {
        top1: top1 as f64 / n,
        top10: top10 as f64 / n,
        ambiguous,
        top1_unambiguous: ambiguous
            .map(|a| top1_clear as f64 / queries.len().saturating_sub(a).max(1) as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<TuneFile> {
        let text = "X:1\nT:A\nM:4/4\nL:1/8\nK:G\nGABc dedB|GABc d4|efga gfed|c2B2 A4|\n\
                    X:2\nT:B\nM:4/4\nL:1/8\nK:D\nDEFG A2FA|GFED E4|DEFG A2FA|GFEF D4|\n";
        vec![TuneFile::new(
            "f.abc".into(),
            SourceText::from_text(text.into()),
        )]
    }

    #[test]
    fn windows_are_cut_seeded_and_scored() {
        let files = files();
        let a = cut_windows(&files, 2, 3, 7);
        let b = cut_windows(&files, 2, 3, 7);
        assert_eq!(a.len(), 3);
        assert_eq!(
            a.iter().map(|w| &w.abc).collect::<Vec<_>>(),
            b.iter().map(|w| &w.abc).collect::<Vec<_>>()
        );
        assert!(a.iter().all(|w| w.source.starts_with("f.abc#")));
        // Tune B's bars 1-2 and 3-4 are the same melody, but only tune B holds it.
        assert_eq!(shared_windows(&files, 2, &a), vec![false; 3]);
        let exact = chars_baseline(&files, 2, &a);
        let s = score(&a, &exact, None);
        assert_eq!(s.top1, 1.0);
    }

    #[test]
    fn perturbations_keep_the_notes_they_promise() {
        let w = "L:1/8\nM:4/4\nK:G\n\"G\"GABc {g}dedB|";
        assert!(!Perturb::Plain.apply(w, 1).contains('"'));
        assert!(Perturb::Respell.apply(w, 1).contains("L:1/4"));
        assert_eq!(Perturb::None.apply(w, 1), w);
    }
}
