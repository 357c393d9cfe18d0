//! The originality check: which passages of a user's tunes are too close to a tune of a
//! reference corpus, each with where it is on both sides and why it matched.
//!
//! Detection rests on what works without a trained model: each W-bar window of the user's
//! tunes asks the symbolic index (interval and duration-ratio n-grams, any key) for its
//! nearest passages, and each candidate is aligned note by note (`abc::notes::align`, through
//! [`Explainer`]). The score is the share of notes that agree after the transposition,
//! `same / max(notes on either side)`, optionally blended with the music-vector cosine when a
//! model worth trusting made the vectors (`vector_weight`). The default threshold comes from
//! measurements on music21 (docs/benchmarks.md, "Originality check").
//!
//! Pure logic over parsed text and a [`Catalog`]: the CLI prints the findings, the daemon can
//! publish them as diagnostics at `query.range`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tunelens_models::abc::notes::{describe_transposition, tune_notes, Note, Ratio};
use tunelens_models::abc::{self, AbcFile, Level, LineCol, SourceText, TextRange, Tune, Unit};

use super::explain::{Explainer, Explanation};
use super::group::Source;
use super::query::{Catalog, Match, QueryError, Ranker};
use super::symbolic::passage_ngrams;

/// Agreement ([`agreement`]) from which a passage is reported. Measured with `tunelens eval
/// originality` on four sets of music21 tunes (docs/benchmarks.md, "Originality check:
/// threshold from data"): 0.95 is where each set still finds ≥ 0.98 of planted 4-bar quotes
/// of every kind (exact, 2 notes moved a step, transposed) and held-out tunes raise the
/// fewest false alarms (0.010–0.025 per tune, other settings excluded). A 12-note window with
/// two stepped notes scores 0.958; one note changed by a leap or in its rhythm in fewer than
/// 20 notes falls below, so such copies need a lower `--threshold` (0.85: about six times the
/// false alarms).
pub const DEFAULT_THRESHOLD: f32 = 0.95;

/// Windows with fewer notes say too little to accuse anyone: four bars of long notes match
/// half the corpus.
pub const DEFAULT_MIN_NOTES: usize = 12;

/// Agreement at which a window counts towards how much of the user's tune a reference tune
/// accounts for ([`Finding::coverage`]). Fixed, not the report threshold, so that a run at
/// threshold 0 (the evaluation's) describes each finding as a run at the default does.
pub const RELATED_AGREEMENT: f32 = 0.8;

/// Share of the user's tune's bars that windows matching one reference tune must cover for the
/// two to be taken for settings of one tune rather than a quotation of a passage.
pub const SETTING_COVERAGE: f32 = 0.5;

/// The share that makes a setting of a tune too short for two windows.
pub const SHORT_SETTING_COVERAGE: f32 = 0.75;

/// How the check runs; the daemon keeps one in its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOptions {
    /// Report passages scoring at least this (0..=1).
    pub threshold: f32,
    /// Bars per window, as the reference corpus was indexed.
    pub window: u32,
    /// Candidates aligned per window, best by shared n-grams first.
    pub candidates: usize,
    /// Windows with fewer notes are not checked.
    pub min_notes: usize,
    /// Weight of the vector cosine in the score (0: notes only, the right choice for a model
    /// that was not trained, such as the random test fixtures).
    pub vector_weight: f32,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            window: 4,
            candidates: 8,
            min_notes: DEFAULT_MIN_NOTES,
            vector_weight: 0.0,
        }
    }
}

/// One W-bar window of a user's tune, ready to be checked (and embedded, by the caller, when
/// vectors are wanted).
#[derive(Debug, Clone)]
pub struct Window {
    pub tune: usize,
    pub title: Option<String>,
    /// Index of the voice in `Tune::voices`, and its id.
    pub voice: usize,
    pub voice_id: String,
    pub unit: Unit,
    pub notes: Vec<Note>,
    pub ngrams: Vec<u32>,
}

/// The windows of every voice of every tune of a parsed file.
pub fn windows(source: &SourceText, file: &AbcFile, window: u32) -> Vec<Window> {
    file.tunes
        .iter()
        .flat_map(|tune| tune_windows(source, tune, window))
        .collect()
}

/// The windows of every voice of one tune (an evaluation checks tunes one at a time).
pub fn tune_windows(source: &SourceText, tune: &Tune, window: u32) -> Vec<Window> {
    let notes = tune_notes(source, tune);
    let mut out = Vec::new();
    for unit in abc::units(source, tune, Level::Passage, window as usize, 1) {
        let Some(voice) = notes.get(unit.voice) else {
            continue;
        };
        let bars = unit.first_bar.saturating_sub(1) as usize..unit.last_bar as usize;
        out.push(Window {
            tune: tune.index,
            title: tune.title().map(str::to_owned),
            voice: unit.voice,
            voice_id: tune
                .voices
                .get(unit.voice)
                .map_or_else(String::new, |v| v.id.clone()),
            notes: voice.bars(bars).to_vec(),
            ngrams: passage_ngrams(voice, unit.first_bar, unit.last_bar),
            unit,
        });
    }
    out
}

/// Where a finding is in the user's file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    pub tune: usize,
    pub title: Option<String>,
    pub voice: String,
    pub bars: [u32; 2],
    pub start: LineCol,
    pub end: LineCol,
    /// Byte range of the window in the user's text (for an editor's diagnostic).
    pub range: TextRange,
}

/// A passage of the user's too close to a reference passage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub score: f32,
    /// Share of notes that agree after the transposition, of the longer side.
    pub agreement: f32,
    pub query: Place,
    /// The reference passage: file, tune, bars and `line:col` range there.
    pub reference: Match,
    pub explain: Explanation,
    /// Other reference tunes the same bars match as closely (settings in other collections).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Source>,
    /// Share of this voice's bars of the user's tune in windows that match the reference tune
    /// at [`RELATED_AGREEMENT`]: near 1 for another setting of the same tune, about W / bars
    /// for one quoted passage.
    pub coverage: f32,
    /// How many bars that share is.
    pub bars_matched: u32,
}

impl Finding {
    /// Whether the reference tune accounts for most of the user's tune: another setting of
    /// it. Half the tune is enough when that is more than one window's worth of bars (one
    /// 4-bar quote is half of an 8-bar tune); a short tune must match nearly throughout.
    pub fn is_setting(&self) -> bool {
        let window = self.query.bars[1].saturating_sub(self.query.bars[0]) + 1;
        (self.coverage >= SETTING_COVERAGE && self.bars_matched >= 2 * window)
            || self.coverage >= SHORT_SETTING_COVERAGE
    }

    /// "another setting of it: 14 of 16 bars match", for a finding that [`Self::is_setting`].
    pub fn setting_note(&self) -> Option<String> {
        let bars = (self.bars_matched as f32 / self.coverage.max(f32::EPSILON)).round() as u32;
        self.is_setting().then(|| {
            format!(
                "another setting of it: {} of {bars} bars match",
                self.bars_matched
            )
        })
    }
}

/// How much a note moved by a step in the same rhythm counts towards agreement: a passing or
/// neighbour note is how players vary a tune, so a varied copy is still mostly a copy, while
/// two unrelated phrases that happen to agree differ more often by leaps and rhythm (the
/// substitution weights of Mongeau and Sankoff's melodic edit distance follow the same idea).
/// Measured with `tunelens eval originality` (docs/benchmarks.md): with 0.75 instead of 0 the
/// threshold can rise from 0.80 to 0.95 with planted 2-note variants still found, which cuts
/// held-out false alarms on O'Neill's from 0.17 to 0.025.
pub const STEP_CREDIT: f32 = 0.75;

/// Share of notes that agree, of the longer side, a stepped note counting [`STEP_CREDIT`].
pub fn agreement(e: &Explanation) -> f32 {
    let theirs = e.same + e.changed + e.inserted;
    (e.same as f32 + STEP_CREDIT * e.stepped as f32) / e.notes.max(theirs).max(1) as f32
}

/// What a check compares against: the reference passages of `catalog` that `exclude` does not
/// reject (the user's own file when it is indexed too).
#[derive(Clone, Copy)]
pub struct Reference<'a> {
    pub catalog: &'a Catalog,
    pub exclude: &'a (dyn Fn(&Match) -> bool + Sync),
}

/// Checks `windows` (from [`windows`] over `source`) against `reference`. `vectors`, when
/// given, are the windows' music vectors in the same order.
pub fn check(
    source: &SourceText,
    windows: &[Window],
    vectors: Option<&[Vec<f32>]>,
    reference: Reference,
    options: &CheckOptions,
    explainer: &mut Explainer,
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<Finding>, QueryError> {
    Check {
        reference,
        options,
        explainer,
        memo: None,
        cancelled,
    }
    .run(source, windows, vectors)
}

/// A check with everything it runs against, for a caller that keeps a [`CheckMemo`].
pub struct Check<'a, 'e> {
    pub reference: Reference<'a>,
    pub options: &'a CheckOptions,
    pub explainer: &'a mut Explainer<'e>,
    /// What earlier checks of the same document found, used and updated.
    pub memo: Option<&'a mut CheckMemo>,
    pub cancelled: &'a dyn Fn() -> bool,
}

impl Check<'_, '_> {
    /// Checks `windows` (from [`windows`] over `source`); `vectors`, when given, are the
    /// windows' music vectors in the same order.
    pub fn run(
        self,
        source: &SourceText,
        windows: &[Window],
        vectors: Option<&[Vec<f32>]>,
    ) -> Result<Vec<Finding>, QueryError> {
        let Check {
            reference,
            options,
            explainer,
            mut memo,
            cancelled,
        } = self;
        let Reference { catalog, exclude } = reference;
        if let Some(memo) = memo.as_deref_mut() {
            memo.against(
                catalog.revision_outside(&memo.own_corpus),
                options.candidates,
            );
        }
        let w = options.vector_weight.clamp(0.0, 1.0);
        let window_vector = |i: usize| {
            vectors
                .and_then(|v| v.get(i))
                .filter(|v| v.len() == catalog.dim())
                .map_or(&[][..], Vec::as_slice)
        };
        // Findings below the threshold are kept while they count towards `coverage`.
        let mut raw: Vec<Finding> = Vec::new();
        let keys: Vec<WindowKey> = windows
            .iter()
            .enumerate()
            .map(|(i, win)| WindowKey::new(win, window_vector(i)))
            .collect();
        for (i, win) in windows.iter().enumerate() {
            if cancelled() {
                return Err(QueryError::Cancelled);
            }
            if win.notes.len() < options.min_notes || win.ngrams.is_empty() {
                continue;
            }
            let vector = window_vector(i);
            let bars = [win.unit.first_bar, win.unit.last_bar];
            let key = &keys[i];
            let remembered = memo.as_deref().and_then(|m| m.windows.get(key));
            let candidates = match remembered {
                Some(c) => c.clone(),
                None => {
                    let found = catalog.ranked(
                        vector,
                        &win.ngrams,
                        Ranker::Symbolic,
                        options.candidates,
                        exclude,
                    )?;
                    let explained: Vec<Candidate> = found
                        .into_iter()
                        .filter_map(|m| {
                            let explain = explainer.explain(&win.notes, bars, &m)?;
                            Some(Candidate::new(m, explain))
                        })
                        .collect();
                    let explained = std::sync::Arc::new(explained);
                    if let Some(memo) = memo.as_deref_mut() {
                        // Checks cancelled one after another (typing) add windows and never
                        // reach the end, where the memo keeps only this version's.
                        if memo.windows.len() > 2 * windows.len() + 64 {
                            memo.keep_only(&keys);
                        }
                        memo.windows.insert(key.clone(), explained.clone());
                    }
                    explained
                }
            };
            for c in candidates.iter() {
                let score = (1.0 - w) * c.agreement + w * c.reference.vector_score.max(0.0);
                if score < options.threshold && c.agreement < RELATED_AGREEMENT {
                    continue;
                }
                raw.push(Finding {
                    score,
                    agreement: c.agreement,
                    query: Place {
                        tune: win.tune,
                        title: win.title.clone(),
                        voice: win.voice_id.clone(),
                        bars,
                        start: source.line_col(win.unit.range.start),
                        end: source.line_col(win.unit.range.end),
                        range: win.unit.range,
                    },
                    reference: c.reference.clone(),
                    explain: c.explain.clone(),
                    also: Vec::new(),
                    coverage: 0.0,
                    bars_matched: 0,
                });
            }
        }
        if let Some(memo) = memo {
            memo.keep_only(&keys);
        }
        set_coverage(windows, &mut raw);
        raw.retain(|f| f.score >= options.threshold);
        Ok(select(raw))
    }
}

/// One candidate of a window, aligned, described from the reference to the user's music.
#[derive(Debug)]
struct Candidate {
    reference: Match,
    explain: Explanation,
    agreement: f32,
}

impl Candidate {
    fn new(reference: Match, mut explain: Explanation) -> Self {
        // A quote is described from the reference to the user's music: "up a 4th" means the
        // user moved the reference's passage up.
        let from_reference = -explain.transposition;
        let interval = describe_transposition(from_reference);
        explain.summary = explain.summary.replace(explain.interval, interval);
        explain.transposition = (from_reference + 5).rem_euclid(12) - 5;
        explain.interval = interval;
        Self {
            agreement: agreement(&explain),
            reference,
            explain,
        }
    }
}

/// What a window's candidates depend on besides the reference: its notes (pitch and length;
/// the n-grams and the alignment read nothing else), its bars (named in the explanation) and
/// its vector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WindowKey {
    notes: Vec<(i16, Ratio)>,
    bars: [u32; 2],
    vector: Vec<u32>,
}

impl WindowKey {
    fn new(win: &Window, vector: &[f32]) -> Self {
        Self {
            notes: win.notes.iter().map(|n| (n.pitch, n.duration)).collect(),
            bars: [win.unit.first_bar, win.unit.last_bar],
            vector: vector.iter().map(|v| v.to_bits()).collect(),
        }
    }
}

/// What checks of one document found per window, kept between its versions: an edit changes a
/// few windows, and the others need not be searched and aligned again (a 300-bar tune's 297
/// windows took ~0.85 s of a core per version). Valid while the reference outside the
/// document's own corpus is unchanged ([`Catalog::revision_outside`]); the caller uses one
/// memo per document and one `exclude` rule with it. Holds the windows of the last check.
#[derive(Debug)]
pub struct CheckMemo {
    /// The corpus the check excludes (the user's files), whose changes keep the memo.
    own_corpus: String,
    basis: Option<((u64, u64), usize)>,
    windows: HashMap<WindowKey, std::sync::Arc<Vec<Candidate>>>,
}

impl CheckMemo {
    /// A memo for checks that exclude `own_corpus`.
    pub fn new(own_corpus: &str) -> Self {
        Self {
            own_corpus: own_corpus.to_owned(),
            basis: None,
            windows: HashMap::new(),
        }
    }

    /// Forgets everything when the reference or the number of candidates changed.
    fn against(&mut self, revision: (u64, u64), candidates: usize) {
        let basis = Some((revision, candidates));
        if self.basis != basis {
            self.windows.clear();
            self.basis = basis;
        }
    }

    /// Keeps the windows of the version being checked, and nothing else.
    fn keep_only(&mut self, keys: &[WindowKey]) {
        let keep: std::collections::HashSet<&WindowKey> = keys.iter().collect();
        self.windows.retain(|k, _| keep.contains(k));
    }

    /// Windows remembered.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

/// Fills [`Finding::coverage`]: for each voice of each user tune and each reference tune, the
/// bars of the windows that match it at [`RELATED_AGREEMENT`], of the voice's bars.
fn set_coverage(windows: &[Window], raw: &mut [Finding]) {
    let mut last_bar: HashMap<(usize, &str), u32> = HashMap::new();
    for win in windows {
        let last = last_bar
            .entry((win.tune, win.voice_id.as_str()))
            .or_default();
        *last = (*last).max(win.unit.last_bar);
    }
    let key = |f: &Finding| {
        (
            f.query.tune,
            f.query.voice.clone(),
            f.reference.path.clone(),
            f.reference.tune,
        )
    };
    let mut matched: HashMap<_, Vec<bool>> = HashMap::new();
    for f in raw.iter().filter(|f| f.agreement >= RELATED_AGREEMENT) {
        let bars = last_bar
            .get(&(f.query.tune, f.query.voice.as_str()))
            .copied()
            .unwrap_or(f.query.bars[1]) as usize;
        let seen = matched
            .entry(key(f))
            .or_insert_with(|| vec![false; bars + 1]);
        for bar in f.query.bars[0]..=f.query.bars[1] {
            if let Some(b) = seen.get_mut(bar as usize) {
                *b = true;
            }
        }
    }
    for f in raw.iter_mut() {
        let (bars_matched, bars) = matched.get(&key(f)).map_or((0, 1), |seen| {
            // Bar numbers start at 1; slot 0 is never set.
            (seen.iter().filter(|&&b| b).count(), (seen.len() - 1).max(1))
        });
        f.bars_matched = bars_matched as u32;
        f.coverage = bars_matched as f32 / bars as f32;
    }
}

/// One finding per stretch of the user's music: the best window wins, overlapping windows are
/// dropped, and other reference tunes matched at exactly the same bars are listed with it.
fn select(mut raw: Vec<Finding>) -> Vec<Finding> {
    raw.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.query.range.start.cmp(&b.query.range.start))
            .then_with(|| a.reference.path.cmp(&b.reference.path))
            .then(a.reference.range.start.cmp(&b.reference.range.start))
    });
    let mut kept: Vec<Finding> = Vec::new();
    for f in raw {
        let overlapping = kept.iter_mut().find(|k| {
            k.query.tune == f.query.tune
                && k.query.voice == f.query.voice
                && k.query.bars[0] <= f.query.bars[1]
                && f.query.bars[0] <= k.query.bars[1]
        });
        match overlapping {
            None => kept.push(f),
            Some(k) => {
                let other_tune = (k.reference.path.as_str(), k.reference.tune)
                    != (&f.reference.path, f.reference.tune);
                let listed = k
                    .also
                    .iter()
                    .any(|s| s.path == f.reference.path && s.tune == f.reference.tune);
                if k.query.bars == f.query.bars && other_tune && !listed {
                    let r = &f.reference;
                    k.also.push(Source {
                        corpus: r.corpus.clone(),
                        collection: r.collection.clone(),
                        path: r.path.clone(),
                        tune: r.tune,
                        title: r.title.clone(),
                        score: f.score,
                        link: None,
                    });
                }
            }
        }
    }
    kept.sort_by(|a, b| {
        (a.query.tune, a.query.range.start).cmp(&(b.query.tune, b.query.range.start))
    });
    kept
}

#[cfg(test)]
mod memo_tests {
    use std::path::PathBuf;

    use super::*;
    use crate::job::record_source;
    use crate::query::shared_record;
    use crate::records::UnitSettings;
    use tunelens_models::abc::{parse, MusicView};

    const REEL: &str = "X:1\nT:Reference Reel\nM:4/4\nL:1/8\nK:D\n\
        |:d2fd adfd|e2ge bege|d2fd adfd|edcB A2Bc|\n\
        d2fd adfd|e2ge bege|afge fdec|d2d2 d4:|\n";
    const JIG: &str = "X:2\nT:Reference Jig\nM:6/8\nL:1/8\nK:G\n\
        |:GAB c2d|e2f g3|gfe dcB|AGF G3|\n\
        BAG AGE|DED D2B|cBA BAG|A3 G3:|\n";

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn put(catalog: &mut Catalog, corpus: &str, path: &std::path::Path, text: &str) {
        std::fs::write(path, text).expect("write");
        let source = SourceText::from_text(text.to_owned());
        let file = parse(&source);
        let (record, _) = record_source(
            &source,
            &file,
            None,
            path.display().to_string(),
            "m",
            MusicView::Reference,
            UnitSettings::default(),
        );
        catalog
            .upsert_file(corpus, shared_record(record), &mut |_| {
                Ok(Some(vec![1.0; 64]))
            })
            .expect("upsert");
    }

    fn run(
        catalog: &Catalog,
        user: &str,
        memo: Option<&mut CheckMemo>,
        explained: &mut usize,
    ) -> Vec<(f32, [u32; 2], String)> {
        let source = SourceText::from_text(user.to_owned());
        let file = parse(&source);
        let wins = windows(&source, &file, 4);
        let exclude = |m: &Match| m.corpus == "workspace";
        let cache = crate::FileCache::new(4);
        let mut explainer = Explainer::with_cache(&cache);
        let options = CheckOptions {
            threshold: 0.5,
            ..CheckOptions::default()
        };
        let found = Check {
            reference: Reference {
                catalog,
                exclude: &exclude,
            },
            options: &options,
            explainer: &mut explainer,
            memo,
            cancelled: &|| false,
        }
        .run(&source, &wins, None)
        .expect("check");
        // Files the explainer read: none when every window came from the memo.
        *explained = cache.len();
        found
            .into_iter()
            .map(|f| (f.score, f.query.bars, f.explain.summary))
            .collect()
    }

    #[test]
    fn a_memo_answers_as_a_fresh_check_and_forgets_when_the_reference_changes() {
        let dir = Dir(std::env::temp_dir().join(format!("tunelens-memo-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).expect("dir");
        let mut catalog = Catalog::new(Level::Passage);
        put(&mut catalog, "folk", &dir.0.join("reel.abc"), REEL);
        put(&mut catalog, "folk", &dir.0.join("jig.abc"), JIG);
        // The user's tune quotes the reel's first four bars, then goes its own way; it is in
        // the workspace corpus too, as an editor's file is.
        let user = "X:1\nT:Mine\nM:4/4\nL:1/8\nK:D\n\
            d2fd adfd|e2ge bege|d2fd adfd|edcB A2Bc|\n\
            F2AF GBAG|F2D2 E4|F2AF GBAG|A2A2 A4|\n";
        put(&mut catalog, "workspace", &dir.0.join("mine.abc"), user);

        let mut n = 0;
        let fresh = run(&catalog, user, None, &mut n);
        assert!(!fresh.is_empty(), "the quote is found");
        let mut memo = CheckMemo::new("workspace");
        assert_eq!(run(&catalog, user, Some(&mut memo), &mut n), fresh);
        let remembered = memo.len();
        assert!(remembered > 0);
        // Remembered: the same answer, and no reference file is read to explain it.
        assert_eq!(run(&catalog, user, Some(&mut memo), &mut n), fresh);
        assert_eq!(n, 0, "every window came from the memo");

        // The user edits a bar: only the windows over it are checked again, and the answer
        // is a fresh check's.
        let edited = user.replace("F2D2 E4", "F2D2 E2FG");
        put(&mut catalog, "workspace", &dir.0.join("mine.abc"), &edited);
        assert_eq!(
            run(&catalog, &edited, Some(&mut memo), &mut n),
            run(&catalog, &edited, None, &mut 0)
        );
        assert_eq!(
            memo.len(),
            remembered,
            "the edited windows replaced the old ones"
        );

        // A reference file changes: the memo starts again, and finds the new quote.
        let reel = REEL.replace("d2fd adfd|e2ge bege|d2fd", "F2AF GBAG|F2D2 E2FG|F2AF");
        put(&mut catalog, "folk", &dir.0.join("reel.abc"), &reel);
        let after = run(&catalog, &edited, Some(&mut memo), &mut n);
        assert!(n > 0, "the reference was read again");
        assert_eq!(after, run(&catalog, &edited, None, &mut 0));
        assert_ne!(after, fresh);
    }
}
