//! The answers, as pure functions of a snapshot, the store's vectors and a catalog: hover
//! texts, similar passages, label scores, lens titles, the genre field edit.

use tunelens_models::abc::notes::Note;
use tunelens_models::abc::{self, Level, PatchOptions, Patchilizer};
use tunelens_models::heads::Head;
use tunelens_protocol as proto;

use super::document::Snapshot;
use super::host::{AnalysisError, Result};
use super::uri;
use tunelens_index::compare;
use tunelens_index::labels::{from_head, zero_shot, LabelSet};
use tunelens_index::similar::{self, Explained, Place, Query, QueryContext};
use tunelens_index::{Explainer, FileCache, Match, Ranker, Refine, Source, Store, UnitRecord};

/// Results in a hover.
const HOVER_K: usize = 3;

fn vector_of(store: &Store, model: &str, unit: &UnitRecord) -> Result<Option<Vec<f32>>> {
    Ok(store.vector(model, &unit.key)?)
}

/// A match as the protocol carries it.
pub fn to_match(m: &Match, explanation: Option<String>) -> proto::Match {
    let pos = |lc: tunelens_index::records::LineColRecord| proto::Position {
        line: lc.line.saturating_sub(1),
        character: lc.col.saturating_sub(1),
    };
    proto::Match {
        uri: uri::from_path(std::path::Path::new(&m.path)),
        // Columns from the index count characters; they equal UTF-16 units except past an
        // astral character on the same line, which ABC music lines do not hold.
        range: proto::Range {
            start: pos(m.start),
            end: pos(m.end),
        },
        title: m.title.clone(),
        tune: m.tune,
        collection: m.collection.clone(),
        corpus: m.corpus.clone(),
        bars: m.bars,
        score: m.score,
        vector_score: m.vector_score,
        symbolic_score: m.symbolic_score,
        explanation,
        other_passages: None,
        sources: Vec::new(),
        link: None,
    }
}

/// A hit of the query pipeline as the protocol carries it: the match, why it matched, and for
/// a grouped list how many more of its tune matched and its other settings.
pub fn to_hit(h: &Explained) -> proto::Match {
    proto::Match {
        other_passages: h.other_passages,
        sources: h.sources.iter().map(to_source).collect(),
        link: h.link.clone(),
        ..to_match(&h.m, h.explain.as_ref().map(|e| e.summary.clone()))
    }
}

fn to_source(s: &Source) -> proto::MatchSource {
    proto::MatchSource {
        uri: uri::from_path(std::path::Path::new(&s.path)),
        title: s.title.clone(),
        tune: s.tune,
        corpus: s.corpus.clone(),
        collection: s.collection.clone(),
        score: s.score,
        link: s.link.clone(),
    }
}

/// A passage unit's notes and interval n-grams (none for a whole tune or a unit whose tune
/// is gone).
fn unit_notes(snapshot: &Snapshot, unit: &UnitRecord) -> (Vec<Note>, Vec<u32>) {
    if unit.level == Level::Tune {
        return (Vec::new(), Vec::new());
    }
    let Some(tune) = snapshot.file.tunes.iter().find(|t| t.index == unit.tune) else {
        return (Vec::new(), Vec::new());
    };
    let Some(voice) = tune.voices.iter().position(|v| *v.id == *unit.voice) else {
        return (Vec::new(), Vec::new());
    };
    similar::passage_notes(
        &snapshot.source,
        tune,
        voice,
        [unit.first_bar, unit.last_bar],
    )
}

/// An explainer for answers about `snapshot`: its own file is the snapshot's text (an
/// unsaved buffer), the others are read through `files`.
fn explainer<'a>(snapshot: &'a Snapshot, files: &'a FileCache, musicxml: bool) -> Explainer<'a> {
    let mut explainer = Explainer::with_cache(files).with_musicxml(musicxml);
    explainer.insert(snapshot.path.clone(), &snapshot.source, &snapshot.file);
    explainer
}

/// The catalog's best matches for `unit` of `snapshot` through the one query pipeline, never
/// the unit's own place: ranked hybrid (vector alone for a tune), refined as asked, each
/// explained through `explainer`.
fn similar_to(
    snapshot: &Snapshot,
    unit: &UnitRecord,
    vector: &[f32],
    ask: SimilarAsk,
    explainer: &mut Explainer,
) -> Result<Vec<Explained>> {
    let (notes, ngrams) = unit_notes(snapshot, unit);
    let query = Query {
        level: unit.level,
        vector,
        notes: &notes,
        ngrams: &ngrams,
        bars: [unit.first_bar, unit.last_bar],
        place: Some(Place {
            path: &snapshot.path,
            tune: unit.tune,
            range: unit.range.range(),
        }),
    };
    Ok(similar::similar(
        ask.ctx,
        &query,
        Ranker::Hybrid,
        ask.k,
        ask.how,
        explainer,
    )?)
}

/// What a similar-passages request asks, its filters resolved.
pub struct SimilarAsk<'a> {
    pub ctx: QueryContext<'a>,
    /// The place in the snapshot's text.
    pub offset: u32,
    pub level: proto::Level,
    pub k: usize,
    pub how: &'a Refine<'a>,
    /// Matched files, read between requests.
    pub files: &'a FileCache,
    /// Explain MusicXML matches too (a request someone made; a hover lists them unexplained
    /// rather than convert a score on the way).
    pub musicxml: bool,
}

/// The unit at the asked place and the units similar to it, filtered and grouped as asked;
/// `None` when there is no unit there or its vector is not stored yet.
fn similar_hits<'s>(
    snapshot: &'s Snapshot,
    ask: SimilarAsk,
    explainer: &mut Explainer,
) -> Result<Option<(&'s UnitRecord, Vec<Explained>)>> {
    let u = match ask.level {
        proto::Level::Passage => snapshot.passage_at(ask.offset).map(|(u, _)| u),
        proto::Level::Tune => snapshot
            .tune_at(ask.offset)
            .and_then(|t| snapshot.tune_unit(t.index)),
    };
    let Some(u) = u else { return Ok(None) };
    let unit = &snapshot.record.units[u];
    let Some(vector) = vector_of(ask.ctx.store, ask.ctx.model, unit)? else {
        return Ok(None);
    };
    let hits = similar_to(snapshot, unit, &vector, ask, explainer)?;
    Ok(Some((unit, hits)))
}

fn query_unit(snapshot: &Snapshot, unit: &UnitRecord) -> proto::QueryUnit {
    proto::QueryUnit {
        uri: snapshot.uri.clone(),
        range: snapshot.range(unit.range.range()),
        bars: [unit.first_bar, unit.last_bar],
    }
}

/// The units similar to the one asked about; `None` when there is no unit there or its
/// vector is not stored yet.
pub fn similar(snapshot: &Snapshot, ask: SimilarAsk) -> Result<Option<proto::SimilarResult>> {
    let mut explainer = explainer(snapshot, ask.files, ask.musicxml);
    let Some((unit, hits)) = similar_hits(snapshot, ask, &mut explainer)? else {
        return Ok(None);
    };
    Ok(Some(proto::SimilarResult {
        query: query_unit(snapshot, unit),
        matches: hits.iter().map(to_hit).collect(),
    }))
}

/// [`similar`]'s list as the compare page: the unit and its matches engraved, each matched
/// file read once for both the explanations and the engraving.
pub fn compare_page(snapshot: &Snapshot, ask: SimilarAsk) -> Result<Option<proto::CompareResult>> {
    let mut explainer = explainer(snapshot, ask.files, ask.musicxml);
    let Some((unit, hits)) = similar_hits(snapshot, ask, &mut explainer)? else {
        return Ok(None);
    };
    let Some(tune) = snapshot.file.tunes.iter().find(|t| t.index == unit.tune) else {
        return Ok(None);
    };
    let Some(voice) = tune.voices.iter().position(|v| *v.id == *unit.voice) else {
        return Ok(None);
    };
    let query = compare::QueryPassage {
        source: &snapshot.source,
        tune,
        voice,
        bars: [unit.first_bar, unit.last_bar],
        path: Some(&snapshot.path),
    };
    let Some(page) = compare::compare(&query, &hits, &mut explainer) else {
        return Ok(None);
    };
    Ok(Some(proto::CompareResult {
        query: query_unit(snapshot, unit),
        html: compare::page::html(&page),
        passages: page.passages.len() as u32,
    }))
}

fn place(m: &proto::Match) -> String {
    let path = uri::to_path(&m.uri).unwrap_or_default();
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    format!("{name}:{}", m.range.start.line + 1)
}

fn match_lines(out: &mut String, matches: &[proto::Match]) {
    for (i, m) in matches.iter().enumerate() {
        let title = m.title.as_deref().unwrap_or("(untitled)");
        let bars = m
            .bars
            .map_or_else(String::new, |[a, b]| format!(", bars {a}–{b}"));
        let page = m
            .link
            .as_ref()
            .map_or_else(String::new, |l| format!(" · [page]({l})"));
        out.push_str(&format!(
            "{}. **{title}**{bars} · [{}]({}){page} · {:.2}\n",
            i + 1,
            place(m),
            m.uri,
            m.score
        ));
        if let Some(e) = &m.explanation {
            out.push_str(&format!("   {e}\n"));
        }
    }
}

/// Hover on a bar: the facts of the bar and its window, then the nearest passages.
pub fn hover_passage(
    snapshot: &Snapshot,
    ctx: QueryContext,
    offset: u32,
    indexing: Option<&str>,
    files: &FileCache,
) -> Result<Option<proto::HoverResult>> {
    let Some((u, b)) = snapshot.passage_at(offset) else {
        return Ok(None);
    };
    let bar = &snapshot.record.bars[b];
    if !bar.range.range().contains(offset) {
        return Ok(None);
    }
    let unit = &snapshot.record.units[u];
    let bar_text = snapshot.source.slice(bar.range.range());
    let bar_patches = Patchilizer::new()
        .encode_ids(bar_text, PatchOptions::ALL)
        .len();
    let mut out =
        format!(
        "**Bar {}** (voice {}) · {} characters · {} patch{} · window bars {}–{}: {} patches\n\n",
        bar.number,
        if bar.voice.is_empty() { "1" } else { &bar.voice },
        bar_text.chars().count(),
        bar_patches,
        if bar_patches == 1 { "" } else { "es" },
        unit.first_bar,
        unit.last_bar,
        snapshot.patches[u].len(),
    );
    let ask = SimilarAsk {
        ctx,
        offset,
        level: proto::Level::Passage,
        k: HOVER_K,
        how: &Refine::default(),
        files,
        musicxml: false,
    };
    match similar(snapshot, ask)? {
        Some(result) if !result.matches.is_empty() => {
            out.push_str("Similar passages:\n\n");
            match_lines(&mut out, &result.matches);
            if let Some(note) = indexing {
                out.push_str(&format!("\n_{note}_\n"));
            }
        }
        Some(_) => out.push_str(indexing.unwrap_or("No similar passages indexed.")),
        None => out.push_str(indexing.unwrap_or("indexing…")),
    }
    Ok(Some(proto::HoverResult {
        contents: out,
        range: Some(snapshot.range(bar.range.range())),
    }))
}

/// Hover on a tune header: nearest tunes, then the two label sets' best labels.
/// `ctx` reads the tune catalog.
pub fn hover_tune(
    snapshot: &Snapshot,
    ctx: QueryContext,
    tune: usize,
    labels: [Option<Vec<proto::LabelScore>>; 2],
    indexing: Option<&str>,
    files: &FileCache,
) -> Result<Option<proto::HoverResult>> {
    let Some(t) = snapshot.file.tunes.iter().find(|t| t.index == tune) else {
        return Ok(None);
    };
    let mut out = format!(
        "**{}** · {} bars\n\n",
        t.title().unwrap_or("(untitled)"),
        t.voices.first().map_or(0, |v| v.bars.len())
    );
    for (name, scores) in ["genre", "rhythm"].iter().zip(&labels) {
        if let Some(scores) = scores {
            let top: Vec<String> = scores
                .iter()
                .take(3)
                .map(|s| format!("{} {:.2}", s.label, s.score))
                .collect();
            out.push_str(&format!("{name}: {}  \n", top.join(" · ")));
        }
    }
    let found = match snapshot.tune_unit(tune) {
        Some(u) => {
            let unit = &snapshot.record.units[u];
            match vector_of(ctx.store, ctx.model, unit)? {
                Some(v) => {
                    let ask = SimilarAsk {
                        ctx,
                        offset: unit.range.range().start,
                        level: proto::Level::Tune,
                        k: HOVER_K,
                        how: &Refine::default(),
                        files,
                        musicxml: false,
                    };
                    let mut explainer = explainer(snapshot, ask.files, ask.musicxml);
                    Some(similar_to(snapshot, unit, &v, ask, &mut explainer)?)
                }
                None => None,
            }
        }
        None => None,
    };
    match found {
        Some(matches) if !matches.is_empty() => {
            out.push_str("\nNearest tunes:\n\n");
            let matches: Vec<_> = matches.iter().map(to_hit).collect();
            match_lines(&mut out, &matches);
            if let Some(note) = indexing {
                out.push_str(&format!("\n_{note}_\n"));
            }
        }
        _ => out.push_str(&format!(
            "\n{}",
            indexing.unwrap_or("No similar tunes indexed.")
        )),
    }
    Ok(Some(proto::HoverResult {
        contents: out,
        range: Some(snapshot.range(t.range).start).map(|start| proto::Range {
            start,
            end: snapshot.lines.position(snapshot.text(), t.body_start),
        }),
    }))
}

/// What scores a tune's vector for a label set.
pub enum Scorer<'a> {
    /// The model's label head for the set.
    Head(&'a Head),
    /// Zero-shot: the set's labels and their prompts' vectors.
    ZeroShot(&'a LabelSet, &'a [Vec<f32>]),
}

/// Scores of tune `tune`, best first; `None` before its vector is stored.
pub fn label_scores(
    snapshot: &Snapshot,
    store: &Store,
    model: &str,
    tune: usize,
    scorer: Scorer,
) -> Result<Option<Vec<proto::LabelScore>>> {
    let Some(u) = snapshot.tune_unit(tune) else {
        return Ok(None);
    };
    let Some(v) = vector_of(store, model, &snapshot.record.units[u])? else {
        return Ok(None);
    };
    let scored = match scorer {
        Scorer::ZeroShot(set, vectors) => {
            if vectors.first().is_some_and(|l| l.len() != v.len()) {
                return Err(AnalysisError::Model(
                    "the model's text and music vectors differ in width".into(),
                ));
            }
            zero_shot(&set.labels, vectors, &v)
        }
        Scorer::Head(head) => {
            if v.len() != head.dim() {
                return Err(AnalysisError::Model(format!(
                    "the {} head reads {}-wide vectors, the model gives {}",
                    head.name,
                    head.dim(),
                    v.len()
                )));
            }
            from_head(head, &v)
        }
    };
    Ok(Some(
        scored
            .into_iter()
            .map(|s| proto::LabelScore {
                label: s.label,
                score: s.score,
            })
            .collect(),
    ))
}

/// "rhythm: jig 0.81 · reel 0.11", named after the label set scored (`rhythm` for the `R:`
/// field, `genre` for any other).
pub fn lens_title(
    set: &str,
    scores: Option<&[proto::LabelScore]>,
    indexing: Option<&str>,
) -> String {
    match scores {
        Some(s) => {
            let top: Vec<String> = s
                .iter()
                .take(2)
                .map(|s| format!("{} {:.2}", s.label, s.score))
                .collect();
            format!("{set}: {}", top.join(" · "))
        }
        None => format!("{set}: {}", indexing.unwrap_or("indexing…")),
    }
}

/// The edit setting header field `field` of `tune` to `value`: its value replaced when the
/// field is there, else a new line just before `K:` (which ABC 2.1 wants last in the header;
/// the editor plugins put it there too), or after the `T:` line (or the `X:` line) in a
/// header without `K:`.
pub fn field_edit(
    snapshot: &Snapshot,
    tune: &abc::Tune,
    field: char,
    value: &str,
) -> (proto::Range, String) {
    let text = snapshot.text();
    if let Some(f) = tune.header.iter().find(|f| f.key == field) {
        // The field's line, without its line ending.
        let start = f.range.start;
        let line_end = text[start as usize..]
            .find('\n')
            .map_or(text.len(), |i| start as usize + i);
        let end = if text[..line_end].ends_with('\r') {
            line_end - 1
        } else {
            line_end
        };
        return (
            snapshot.lines.range(text, start, end as u32),
            format!("{field}:{value}"),
        );
    }
    let key_line = tune
        .header
        .iter()
        .find(|f| f.key == 'K')
        .map(|k| k.range.start);
    let at = key_line.unwrap_or_else(|| {
        let after = tune
            .header
            .iter()
            .filter(|f| f.key == 'T')
            .chain(tune.header.iter().filter(|f| f.key == 'X'))
            .next()
            .map_or(tune.range.start, |f| f.range.end);
        // The start of the next line.
        text[after as usize..]
            .find('\n')
            .map_or(text.len(), |i| after as usize + i + 1) as u32
    });
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let p = snapshot.lines.position(text, at);
    (
        proto::Range { start: p, end: p },
        format!("{field}:{value}{eol}"),
    )
}
