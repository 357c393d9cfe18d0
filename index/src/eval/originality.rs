//! Where the originality check's threshold should be (`tunelens eval originality`). The tunes
//! are indexed as a reference corpus (by the caller), `count` of them are held out (seeded), and each gives two
//! kinds of cases:
//!
//! - a false-alarm case: the held-out tune, checked as `tunelens check` checks a file, against
//!   the rest of the corpus (the tune itself excluded). Its best finding score is kept twice:
//!   raw, with the other settings of the same tune (same normalised title) excluded, since
//!   those are real matches, not false alarms, and with settings under other titles excluded
//!   too (reference tunes whose matching passages cover most of the held-out tune,
//!   `Finding::is_setting`);
//! - three planted quotes: 4 bars of another random tune S, written into a new tune in S's
//!   `M:`/`L:`/`K:` between seeded random filler bars, as they are (exact), with exactly two
//!   notes moved a step (varied), and the whole tune up a perfect 4th (transposed). Its score is
//!   that of the best finding that points at S's bars.
//!
//! The check runs once per case at threshold 0, which reports at every threshold `t` exactly
//! the findings a run at `t` reports (findings are kept best first), so one pass gives the
//! detection and false-alarm rates over a sweep of thresholds.

use serde::Serialize;
use tunelens_models::abc::transpose::{self, Interval};
use tunelens_models::abc::{self, SourceText};

use super::{next, TuneFile};
use crate::group::normalise_title;
use crate::originality::{self, CheckOptions, Finding, Reference, Window};
use crate::{Catalog, Explainer, Match, QueryError};

/// Bars of a planted quote, and of the windows the corpus is indexed with.
const QUOTE_BARS: u32 = 4;
/// Filler bars before and after a planted quote: the quote is bars 5-8 of its tune.
const FILLER_BARS: u32 = 4;
/// Notes a varied quote has moved.
const VARIED_NOTES: usize = 2;
/// Why the cases could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PlantError {
    #[error("the corpus needs at least two tunes, it has {0}")]
    TooFewTunes(usize),
    #[error("no tune of the corpus has a {QUOTE_BARS}-bar window to quote")]
    NothingToQuote,
    #[error("no window of the corpus reads the same once planted")]
    NothingPlantable,
    #[error("no tune has a window of {0} notes to check")]
    NothingToCheck(usize),
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// The best scores of one held-out tune's cases (0 where no finding qualifies).
#[derive(Serialize)]
pub struct Case {
    /// The held-out tune, `path#index`.
    pub tune: String,
    pub title: Option<String>,
    /// Best finding against the rest of the corpus.
    pub best: f32,
    /// Best finding once the same tune's other settings (same normalised title) are excluded.
    pub best_other_tunes: f32,
    /// What that finding says, for reading the false alarms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_other_summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_other_reference: Option<String>,
    /// Reference tunes under other titles found to be settings of the held-out tune (their
    /// passages cover most of its bars, `Finding::is_setting`).
    pub settings: usize,
    /// Best finding once those settings are excluded too, and how much of the held-out tune
    /// its reference covers.
    pub best_unrelated: f32,
    pub best_unrelated_coverage: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_unrelated_summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_unrelated_reference: Option<String>,
    /// The quoted tune (`path#index`) and its bars.
    pub quoted: String,
    pub quoted_bars: [u32; 2],
    pub exact: f32,
    pub varied: f32,
    pub transposed: f32,
}

#[derive(Serialize, Clone, Copy)]
pub struct Detection {
    pub exact: f64,
    pub varied: f64,
    pub transposed: f64,
}

impl Detection {
    pub fn min(&self) -> f64 {
        self.exact.min(self.varied).min(self.transposed)
    }
}

/// The rates at one threshold.
#[derive(Serialize, Clone, Copy)]
pub struct Row {
    pub threshold: f32,
    pub detection: Detection,
    /// Share of held-out tunes with any finding at or above the threshold.
    pub false_alarms: f64,
    /// The same, settings of the same tune (same normalised title) not counted.
    pub false_alarms_other_tunes: f64,
    /// The same, settings under other titles (`Case::settings`) not counted either: the
    /// false-alarm rate the threshold is chosen by.
    pub false_alarms_unrelated: f64,
}

/// A tune of the corpus: its file (index into the parsed files) and its place there.
#[derive(Clone, Copy, PartialEq, Eq)]
struct TuneRef {
    file: usize,
    tune: usize,
}

/// The cases of up to `count` held-out tunes and how many quotes were drawn again.
pub struct Cases {
    pub cases: Vec<Case>,
    /// Quoted windows drawn again because they read otherwise once planted.
    pub quotes_redrawn: usize,
    /// Tunes in the corpus.
    pub tunes: usize,
}

/// Holds out up to `count` tunes of `parsed` (seeded), each checked against `catalog` (the
/// files indexed as one corpus) and given its three planted quotes; after each case,
/// `progress` is told how many cases are done of how many will be.
pub fn held_out_cases(
    parsed: &[TuneFile],
    catalog: &Catalog,
    options: &CheckOptions,
    count: usize,
    seed: u64,
    progress: &dyn Fn(usize, usize),
) -> Result<Cases, PlantError> {
    let all: Vec<TuneRef> = parsed
        .iter()
        .enumerate()
        .flat_map(|(file, p)| (0..p.file.tunes.len()).map(move |tune| TuneRef { file, tune }))
        .collect();
    if all.len() < 2 {
        return Err(PlantError::TooFewTunes(all.len()));
    }
    // The held-out tunes: the corpus in a seeded order, those with a window worth checking.
    let mut rng = seed.max(1);
    let mut order = all.clone();
    for i in (1..order.len()).rev() {
        order.swap(i, (next(&mut rng) % (i as u64 + 1)) as usize);
    }
    let wanted = count.min(all.len());
    progress(0, wanted);
    let mut explainer = Explainer::default();
    let mut cases = Vec::new();
    let mut redrawn = 0;
    for &held in &order {
        if cases.len() == wanted {
            break;
        }
        let windows = tune_windows(parsed, held, options.window);
        if !windows.iter().any(|w| checkable(w, options)) {
            continue;
        }
        // A window that reads otherwise once planted (an inline field or a tie across its
        // edge) would measure the harness, not the check: another is drawn.
        let mut plant = None;
        for _ in 0..100 {
            let Some(quote) = choose_quote(parsed, &all, held, options, &mut rng) else {
                return Err(PlantError::NothingToQuote);
            };
            let filler_seed = next(&mut rng);
            let exact = planted_tune(&quote, &quote.music, filler_seed);
            let pitches = planted_notes(&exact).map(|n| n.iter().map(|n| n.pitch).collect());
            if pitches.as_ref() == Some(&quote.pitches) {
                plant = Some(Plant {
                    quote,
                    filler_seed,
                    exact,
                });
                break;
            }
            redrawn += 1;
        }
        let plant = plant.ok_or(PlantError::NothingPlantable)?;
        let case = run_case(
            parsed,
            held,
            &windows,
            &plant,
            &mut Checker {
                catalog,
                options,
                explainer: &mut explainer,
            },
            &mut rng,
        )?;
        cases.push(case);
        progress(cases.len(), wanted);
    }

    if cases.is_empty() {
        return Err(PlantError::NothingToCheck(options.min_notes));
    }
    Ok(Cases {
        cases,
        quotes_redrawn: redrawn,
        tunes: all.len(),
    })
}

/// The rates over a sweep of thresholds, and the one chosen: detecting at least 0.95 of every
/// kind with the fewest false alarms (unrelated tunes); none when no threshold detects that
/// much.
pub fn sweep(cases: &[Case]) -> (Vec<Row>, Option<Row>) {
    // Coarse up to 0.85, then by hundredths where the default lives.
    let sweep: Vec<Row> = (10..=17)
        .map(|i| i as f32 * 0.05)
        .chain((86..=99).map(|i| i as f32 * 0.01))
        .map(|t| rates(cases, t))
        .collect();
    let chosen = sweep
        .iter()
        .filter(|r| r.detection.min() >= 0.95)
        .min_by(|a, b| {
            a.false_alarms_unrelated
                .total_cmp(&b.false_alarms_unrelated)
                .then(b.detection.min().total_cmp(&a.detection.min()))
                .then(a.threshold.total_cmp(&b.threshold))
        })
        .copied();
    (sweep, chosen)
}

fn tune_windows(parsed: &[TuneFile], t: TuneRef, window: u32) -> Vec<Window> {
    let p = &parsed[t.file];
    p.file.tunes.get(t.tune).map_or_else(Vec::new, |tune| {
        originality::tune_windows(&p.source, tune, window)
    })
}

fn checkable(w: &Window, options: &CheckOptions) -> bool {
    w.notes.len() >= options.min_notes && !w.ngrams.is_empty()
}

fn id(parsed: &[TuneFile], t: TuneRef) -> String {
    format!("{}#{}", parsed[t.file].path, t.tune)
}

/// A window of a tune to plant, in its tune's context.
struct Quote {
    tune: TuneRef,
    bars: [u32; 2],
    /// The window's music, one line of bars each closed by `|`.
    music: String,
    /// `M:`, `L:`, `K:` of the quoted tune.
    meter: Option<String>,
    length: Option<String>,
    key: Option<String>,
    /// Pitches of the window, to check the planted copy reads the same.
    pitches: Vec<i16>,
}

/// A random full 4-bar window (first voice, enough notes to be checked) of a random tune other
/// than `held`; `None` when a thousand draws find none.
fn choose_quote(
    parsed: &[TuneFile],
    all: &[TuneRef],
    held: TuneRef,
    options: &CheckOptions,
    rng: &mut u64,
) -> Option<Quote> {
    for _ in 0..1000 {
        let t = all[(next(rng) % all.len() as u64) as usize];
        if t == held {
            continue;
        }
        let tune = &parsed[t.file].file.tunes[t.tune];
        let windows: Vec<Window> = tune_windows(parsed, t, QUOTE_BARS)
            .into_iter()
            .filter(|w| {
                w.voice == 0
                    && w.unit.last_bar + 1 - w.unit.first_bar == QUOTE_BARS
                    && checkable(w, options)
            })
            .collect();
        if windows.is_empty() {
            continue;
        }
        let w = &windows[(next(rng) % windows.len() as u64) as usize];
        let music: String = w
            .unit
            .text
            .lines()
            .skip_while(|l| matches!(l.as_bytes(), [b'L' | b'M' | b'K', b':', ..]))
            .collect::<Vec<_>>()
            .join("");
        if music.trim().is_empty() {
            continue;
        }
        return Some(Quote {
            tune: t,
            bars: [w.unit.first_bar, w.unit.last_bar],
            music,
            meter: tune.field('M').map(str::to_owned),
            length: tune.field('L').map(str::to_owned),
            key: tune.field('K').map(str::to_owned),
            pitches: w.notes.iter().map(|n| n.pitch).collect(),
        });
    }
    None
}

/// A quote and the planted tune that holds it as it is.
struct Plant {
    quote: Quote,
    filler_seed: u64,
    exact: String,
}

/// The originality check at threshold 0 against the corpus, every case through one explainer.
struct Checker<'c, 'e> {
    catalog: &'c Catalog,
    options: &'c CheckOptions,
    explainer: &'c mut Explainer<'e>,
}

impl Checker<'_, '_> {
    fn check(
        &mut self,
        source: &SourceText,
        windows: &[Window],
        exclude: &(dyn Fn(&Match) -> bool + Sync),
    ) -> Result<Vec<Finding>, QueryError> {
        originality::check(
            source,
            windows,
            None,
            Reference {
                catalog: self.catalog,
                exclude,
            },
            self.options,
            self.explainer,
            &|| false,
        )
    }
}

fn run_case(
    parsed: &[TuneFile],
    held: TuneRef,
    windows: &[Window],
    plant: &Plant,
    checker: &mut Checker,
    rng: &mut u64,
) -> Result<Case, PlantError> {
    let p = &parsed[held.file];
    let tune = &p.file.tunes[held.tune];
    let own = p.path.clone();
    let title = tune.title().map(normalise_title).filter(|t| !t.is_empty());
    let itself = |m: &Match| m.path == own && m.tune == held.tune;
    let findings = checker.check(&p.source, windows, &itself)?;
    let best = findings.iter().map(|f| f.score).fold(0.0, f32::max);
    let same_tune = |m: &Match| {
        itself(m)
            || title
                .as_ref()
                .is_some_and(|t| m.title.as_deref().map(normalise_title).as_ref() == Some(t))
    };
    let others = checker.check(&p.source, windows, &same_tune)?;
    let top = others.iter().max_by(|a, b| a.score.total_cmp(&b.score));
    // Other settings under other titles: reference tunes that account for most of the held-out
    // tune's bars. Excluding one can let another's findings through, so until none is new.
    let mut settings: Vec<(String, usize)> = Vec::new();
    let mut unrelated = others.clone();
    for _ in 0..4 {
        let new: Vec<(String, usize)> = unrelated
            .iter()
            .filter(|f| f.is_setting())
            .map(|f| (f.reference.path.clone(), f.reference.tune))
            .filter(|r| !settings.contains(r))
            .collect();
        if new.is_empty() {
            break;
        }
        settings.extend(new);
        let related =
            |m: &Match| same_tune(m) || settings.iter().any(|(p, t)| *p == m.path && *t == m.tune);
        unrelated = checker.check(&p.source, windows, &related)?;
    }
    unrelated.retain(|f| !f.is_setting());
    let top_unrelated = unrelated.iter().max_by(|a, b| a.score.total_cmp(&b.score));

    let Plant {
        quote,
        filler_seed,
        exact,
    } = plant;
    let varied = varied_tune(quote, *filler_seed, rng);
    let transposed = transpose::transpose(exact, Interval::FOURTH_UP);
    let mut detect = |text: &str| -> Result<f32, PlantError> {
        let source = SourceText::from_text(text.to_owned());
        let file = abc::parse(&source);
        let windows = originality::windows(&source, &file, checker.options.window);
        let findings = checker.check(&source, &windows, &|_| false)?;
        Ok(findings
            .iter()
            .filter_map(|f| points_at(parsed, quote, f))
            .fold(0.0, f32::max))
    };
    let exact = detect(exact)?;
    let varied = match &varied {
        Some(text) => detect(text)?,
        None => 0.0,
    };
    let transposed = detect(&transposed)?;
    Ok(Case {
        tune: id(parsed, held),
        title: tune.title().map(str::to_owned),
        best,
        best_other_tunes: top.map_or(0.0, |f| f.score),
        best_other_summary: top.map(|f| f.explain.summary.clone()),
        best_other_reference: top.map(|f| format!("{}#{}", f.reference.path, f.reference.tune)),
        settings: settings.len(),
        best_unrelated: top_unrelated.map_or(0.0, |f| f.score),
        best_unrelated_coverage: top_unrelated.map_or(0.0, |f| f.coverage),
        best_unrelated_summary: top_unrelated.map(|f| f.explain.summary.clone()),
        best_unrelated_reference: top_unrelated
            .map(|f| format!("{}#{}", f.reference.path, f.reference.tune)),
        quoted: id(parsed, quote.tune),
        quoted_bars: quote.bars,
        exact,
        varied,
        transposed,
    })
}

/// The score of finding `f` when it points from the planted bars at the quoted bars, or at a
/// repeat of them elsewhere in the quoted tune (a strain played twice, written out twice).
fn points_at(parsed: &[TuneFile], quote: &Quote, f: &Finding) -> Option<f32> {
    let planted = [FILLER_BARS + 1, FILLER_BARS + QUOTE_BARS];
    let overlap = |a: [u32; 2], b: [u32; 2]| a[0] <= b[1] && b[0] <= a[1];
    if !overlap(f.query.bars, planted) {
        return None;
    }
    let p = &parsed[quote.tune.file];
    let path = p.path.clone();
    let r = &f.reference;
    if r.path == path && r.tune == quote.tune.tune {
        let bars = r.bars?;
        let repeat = || {
            let tune = &p.file.tunes[quote.tune.tune];
            let voices = abc::notes::tune_notes(&p.source, tune);
            voices.first().is_some_and(|v| {
                let notes = v.bars(bars[0].saturating_sub(1) as usize..bars[1] as usize);
                notes
                    .iter()
                    .map(|n| n.pitch)
                    .eq(quote.pitches.iter().copied())
            })
        };
        return (overlap(bars, quote.bars) || repeat()).then_some(f.score);
    }
    // Another setting matched as closely at the same bars: listed with the finding.
    f.also
        .iter()
        .find(|s| s.path == path && s.tune == quote.tune.tune)
        .map(|s| s.score)
}

/// A new tune in the quoted tune's meter, length and key: filler, the quote (`music`) as bars
/// 5-8, filler.
fn planted_tune(quote: &Quote, music: &str, filler_seed: u64) -> String {
    let mut text = String::from("X:1\nT:Planted quote\n");
    for (key, value) in [('M', &quote.meter), ('L', &quote.length)] {
        if let Some(v) = value {
            text.push_str(&format!("{key}:{v}\n"));
        }
    }
    text.push_str(&format!("K:{}\n", quote.key.as_deref().unwrap_or("C")));
    let per_bar = notes_per_bar(quote.meter.as_deref(), quote.length.as_deref());
    let mut rng = filler_seed.max(1);
    let mut step = 7 + (next(&mut rng) % 7) as i32;
    let mut filler = |text: &mut String| {
        for _ in 0..FILLER_BARS {
            for _ in 0..per_bar {
                // A random walk of steps up to a third, inside two octaves from `C`.
                let moves = [-2, -1, 1, 2];
                step = (step + moves[(next(&mut rng) % 4) as usize]).clamp(0, 13);
                let letter = char::from(b"CDEFGAB"[(step % 7) as usize]);
                text.push(if step >= 7 {
                    letter.to_ascii_lowercase()
                } else {
                    letter
                });
            }
            text.push('|');
        }
        text.push('\n');
    };
    filler(&mut text);
    text.push_str(music.trim());
    text.push('\n');
    filler(&mut text);
    text
}

/// The quote with exactly [`VARIED_NOTES`] notes moved a step (`transpose::vary` with the
/// first seed that moves that many); `None` when no seed of 200 does.
fn varied_tune(quote: &Quote, filler_seed: u64, rng: &mut u64) -> Option<String> {
    let fraction = VARIED_NOTES as f64 / quote.pitches.len().max(1) as f64;
    for _ in 0..200 {
        let music = transpose::vary(&quote.music, fraction, next(rng));
        let text = planted_tune(quote, &music, filler_seed);
        let Some(notes) = planted_notes(&text) else {
            continue;
        };
        let moved = notes
            .iter()
            .zip(&quote.pitches)
            .filter(|(n, &p)| n.pitch != p)
            .count();
        if notes.len() == quote.pitches.len() && moved == VARIED_NOTES {
            return Some(text);
        }
    }
    None
}

/// The notes of the planted bars of a planted tune.
fn planted_notes(text: &str) -> Option<Vec<abc::notes::Note>> {
    let source = SourceText::from_text(text.to_owned());
    let file = abc::parse(&source);
    let tune = file.tunes.first()?;
    let notes = abc::notes::voice_notes(&source, tune, 0);
    let first = FILLER_BARS as usize;
    Some(notes.bars(first..first + QUOTE_BARS as usize).to_vec())
}

/// Notes of the unit length in a bar of meter `M:` (`C` = 4/4, `C|` = 2/2, none or free = 4/4)
/// with unit `L:` (by default 1/16 below 3/4 and 1/8 from there, as ABC says).
fn notes_per_bar(meter: Option<&str>, length: Option<&str>) -> usize {
    let fraction = |s: &str| -> Option<f64> {
        let (a, b) = s.trim().split_once('/')?;
        let (a, b): (f64, f64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        (a > 0.0 && b > 0.0).then_some(a / b)
    };
    let meter = match meter.map(str::trim) {
        Some("C|") => 1.0,
        Some(m) => fraction(m).unwrap_or(1.0),
        None => 1.0,
    };
    let unit =
        length
            .and_then(fraction)
            .unwrap_or(if meter < 0.75 { 1.0 / 16.0 } else { 1.0 / 8.0 });
    ((meter / unit).round() as usize).clamp(1, 32)
}

/// Detection and false-alarm rates at `threshold`.
pub fn rates(cases: &[Case], threshold: f32) -> Row {
    let n = cases.len().max(1) as f64;
    let share =
        |f: &dyn Fn(&Case) -> f32| cases.iter().filter(|c| f(c) >= threshold).count() as f64 / n;
    Row {
        threshold: (threshold * 100.0).round() / 100.0,
        detection: Detection {
            exact: share(&|c| c.exact),
            varied: share(&|c| c.varied),
            transposed: share(&|c| c.transposed),
        },
        false_alarms: share(&|c| c.best),
        false_alarms_other_tunes: share(&|c| c.best_other_tunes),
        false_alarms_unrelated: share(&|c| c.best_unrelated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_per_bar_follows_meter_and_length() {
        assert_eq!(notes_per_bar(Some("6/8"), Some("1/8")), 6);
        assert_eq!(notes_per_bar(Some("C"), Some("1/8")), 8);
        assert_eq!(notes_per_bar(Some("C|"), None), 8);
        assert_eq!(notes_per_bar(Some("2/4"), None), 8);
        assert_eq!(notes_per_bar(Some("4/4"), Some("1/16")), 16);
        assert_eq!(notes_per_bar(Some("none"), Some("1/4")), 4);
    }
}
