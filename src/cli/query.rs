//! `tunelens search` (text → tunes or passages) and `tunelens similar` (a passage or tune →
//! the nearest ones elsewhere), over the corpus index.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde::Serialize;
use tunelens_index::compare;
use tunelens_index::labels::{head_for, LabelSet};
use tunelens_index::similar::{self, Explained, Place, Query, QueryContext};
use tunelens_index::{
    content_key, Catalog, Explainer, Filters, Grouping, Position, Ranker, Refine,
    RhythmPredictions, Store,
};
use tunelens_models::abc::notes::Note;
use tunelens_models::abc::{self, Level, PatchOptions, Patchilizer, SourceText, Unit};
use tunelens_models::encoders::{EmbeddingBackend, LongTunes, MusicBatch, TextBatch};

use super::db::DbArgs;
use super::embed::ModelArgs;
use super::input;

#[derive(Clone, Copy, clap::ValueEnum)]
enum LevelArg {
    Tune,
    Passage,
}

impl LevelArg {
    fn level(self) -> Level {
        match self {
            LevelArg::Tune => Level::Tune,
            LevelArg::Passage => Level::Passage,
        }
    }
}

/// What every query takes.
#[derive(clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    db: DbArgs,
    /// How many results.
    #[arg(long, short, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    k: u32,
    /// Search only these corpora (repeatable; default: all).
    #[arg(long)]
    corpus: Vec<String>,
    /// One result per tune (its best passage; settings in other collections listed with it),
    /// or every passage on its own.
    #[arg(long, value_enum, default_value = "tune")]
    group: GroupArg,
    /// Only tunes in this meter: 6/8, C (= 4/4), C| (= 2/2).
    #[arg(long)]
    meter: Option<String>,
    /// Only tunes in this key or mode: G, Dmix, "E minor", dorian.
    #[arg(long)]
    key: Option<String>,
    /// Only tunes of this type (jig, reel, ...): the tune's R:, else the type predicted from
    /// its music.
    #[arg(long)]
    rhythm: Option<String>,
    /// Only these collections (repeatable): the first folder under a corpus root.
    #[arg(long)]
    collection: Vec<String>,
    /// Passages anywhere in their tune, or only those that start it.
    #[arg(long, value_enum, default_value = "anywhere")]
    position: PositionArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GroupArg {
    Tune,
    None,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PositionArg {
    Anywhere,
    Start,
}

impl QueryArgs {
    /// The filters the flags ask for (the corpus is chosen when the catalog is opened).
    fn filters(&self) -> anyhow::Result<Filters> {
        let filters = Filters {
            corpus: Vec::new(),
            collection: self.collection.clone(),
            meter: self.meter.clone(),
            key: self.key.clone(),
            rhythm: self.rhythm.clone(),
            position: match self.position {
                PositionArg::Anywhere => Position::Anywhere,
                PositionArg::Start => Position::Start,
            },
        };
        filters.validate().context("--key")?;
        Ok(filters)
    }

    fn grouping(&self) -> Grouping {
        match self.group {
            GroupArg::Tune => Grouping::Tune,
            GroupArg::None => Grouping::None,
        }
    }
}

/// The filters of one query and (for `--rhythm`) the predicted tune types they need.
fn refinement(
    q: &QueryArgs,
    model: &dyn EmbeddingBackend,
    store: &Store,
    model_id: &str,
    catalog: &Catalog,
) -> anyhow::Result<(Filters, Option<RhythmPredictions>)> {
    let filters = q.filters()?;
    let rhythm = if filters.needs_rhythm() {
        Some(predict_rhythm(q, model, store, model_id, catalog)?)
    } else {
        None
    };
    Ok((filters, rhythm))
}

fn how<'a>(
    q: &QueryArgs,
    filters: &'a Filters,
    rhythm: &'a Option<RhythmPredictions>,
) -> Refine<'a> {
    Refine::new(filters, rhythm.as_ref(), q.grouping())
}

/// The type of every catalogued tune without `R:`, as `classify --label-set rhythm` would give
/// it: from the model's `rhythm` head, else zero-shot.
fn predict_rhythm(
    q: &QueryArgs,
    model: &dyn EmbeddingBackend,
    store: &Store,
    model_id: &str,
    catalog: &Catalog,
) -> anyhow::Result<RhythmPredictions> {
    let heads = q.model.heads()?;
    if let Some(head) = head_for(&heads, "rhythm") {
        let files = catalog.files().map(|(_, f)| f);
        return Ok(RhythmPredictions::predict(
            store,
            model_id,
            files,
            Some(head),
            &[],
        )?);
    }
    let set = LabelSet::shipped("rhythm")?;
    let vectors = model.embed_text(&TextBatch {
        texts: set.prompts(),
    })?;
    let labels: Vec<(String, Vec<f32>)> = set.labels.into_iter().zip(vectors).collect();
    let files = catalog.files().map(|(_, f)| f);
    Ok(RhythmPredictions::predict(
        store, model_id, files, None, &labels,
    )?)
}

#[derive(clap::Args)]
pub struct SearchArgs {
    /// A description, e.g. "a slow air in D minor".
    text: String,
    /// Find whole tunes or passages.
    #[arg(long, value_enum, default_value = "tune")]
    level: LevelArg,
    #[command(flatten)]
    query: QueryArgs,
}

#[derive(clap::Args)]
pub struct SimilarArgs {
    /// FILE:LINE[:COL], the place of the passage (or tune) to match; for a MusicXML file
    /// FILE:MEASURE[:PART] (the measure's number as the score writes it; part 1 by default).
    #[arg(required_unless_present = "abc", conflicts_with = "abc")]
    at: Option<String>,
    /// ABC music to match instead of a place in a file.
    #[arg(long)]
    abc: Option<String>,
    /// Match the passage at the place or the whole tune.
    #[arg(long, value_enum, default_value = "passage")]
    level: LevelArg,
    /// Bars per passage window (as indexed).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    window: u32,
    /// Rank passages by music vectors, shared interval n-grams (any key), or both.
    #[arg(long, value_enum, default_value = "hybrid")]
    ranker: RankerArg,
    /// Also write OUT.html: the passage and its matches engraved one above the other, the
    /// notes that differ in red (one file, no network needed to open it).
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
    #[command(flatten)]
    query: QueryArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RankerArg {
    Vector,
    Symbolic,
    Hybrid,
}

/// The longest query text taken: far more than any description, far less than a file.
const MAX_QUERY_CHARS: usize = 10_000;

#[derive(Serialize)]
struct Answer<'a, Q: Serialize> {
    query: Q,
    matches: &'a [Explained],
}

pub fn search(args: &SearchArgs) -> anyhow::Result<ExitCode> {
    if args.text.trim().is_empty() {
        bail!("the search text is empty");
    }
    if args.text.chars().count() > MAX_QUERY_CHARS {
        bail!("the search text is over {MAX_QUERY_CHARS} characters");
    }
    let q = &args.query;
    let (clamp, model_id) = q.model.load_with_id()?;
    let store = q.db.open()?;
    let backend = q.db.store.backend()?;
    let catalog =
        q.db.catalog(&store, &backend, &model_id, &q.corpus, args.level.level())?;
    let vector = clamp
        .embed_text(&TextBatch {
            texts: vec![args.text.clone()],
        })?
        .pop()
        .context("the model returned no vector")?;
    let (filters, rhythm) = refinement(q, &clamp, &store, &model_id, &catalog)?;
    let ctx = QueryContext::new(&store, &model_id, &catalog);
    let matches = similar::search(ctx, &vector, q.k as usize, &how(q, &filters, &rhythm))?;
    print(q.json, &serde_json::json!({ "text": args.text }), &matches)?;
    Ok(ExitCode::SUCCESS)
}

/// Where the query came from, as printed.
#[derive(Serialize)]
struct SimilarQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    title: Option<String>,
    level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    bars: Option<[u32; 2]>,
    /// For a MusicXML file: where the passage starts, e.g. "part 1 (Soprano), measure 12".
    #[serde(skip_serializing_if = "Option::is_none")]
    measure: Option<String>,
    text: String,
}

pub fn similar(args: &SimilarArgs) -> anyhow::Result<ExitCode> {
    let q = &args.query;
    let level = args.level.level();
    let window = args.window as usize;
    let mut query_measure = None;
    // The query unit, and (for a place in a file) what it must not match: itself.
    let (unit, notes, ngrams, title, path, tune_index, text) = match (&args.at, &args.abc) {
        (_, Some(abc_text)) => {
            if abc_text.chars().count() > MAX_QUERY_CHARS {
                bail!("--abc is over {MAX_QUERY_CHARS} characters");
            }
            let source = SourceText::from_text(abc_text.clone());
            let file = abc::parse(&source);
            let tune = file.tunes.first().context("--abc holds no music")?;
            let unit = abc::units(&source, tune, level, window, 1)
                .into_iter()
                .next()
                .context("--abc holds no bars")?;
            let (notes, ngrams) = unit_notes(&source, tune, &unit);
            let title = tune.title().map(str::to_owned);
            (unit, notes, ngrams, title, None, None, (source, file, 0))
        }
        (Some(at), None) => {
            let (path, line, col) = parse_place(at)?;
            let parsed = input::read(&path, abc::DEFAULT_SIZE_LIMIT)?;
            let (line, col) = match &parsed.musicxml {
                // FILE:MEASURE[:PART]: the measure's first bar, as a place in the ABC text.
                Some(c) => {
                    let (measure, part) = (line, col);
                    let bar = c
                        .find_measure(part, &measure.to_string())
                        .with_context(|| {
                            format!("{}: part {part} has no measure {measure}", path.display())
                        })?;
                    let lc = parsed.source.line_col(bar.range.start);
                    (lc.line, lc.col)
                }
                None => (line, col),
            };
            let (unit, tune) = unit_at(&parsed, line, col, level, window)?;
            query_measure = parsed
                .musicxml
                .as_ref()
                .map(|_| parsed.place(unit.range.start));
            let (notes, ngrams) = unit_notes(&parsed.source, &parsed.file.tunes[tune], &unit);
            let title = parsed.file.tunes[tune].title().map(str::to_owned);
            let canonical = std::fs::canonicalize(&path)
                .with_context(|| path.display().to_string())?
                .display()
                .to_string();
            let text = (parsed.source, parsed.file, tune);
            (
                unit,
                notes,
                ngrams,
                title,
                Some(canonical),
                Some(tune),
                text,
            )
        }
        (None, None) => bail!("give FILE:LINE[:COL] or --abc"),
    };

    let (clamp, model_id) = q.model.load_with_id()?;
    let store = q.db.open()?;
    let backend = q.db.store.backend()?;
    let catalog =
        q.db.catalog(&store, &backend, &model_id, &q.corpus, level)?;
    let vector = unit_vector(&clamp, &store, &model_id, &unit)?;
    let ranker = match args.ranker {
        RankerArg::Vector => Ranker::Vector,
        RankerArg::Symbolic => Ranker::Symbolic,
        RankerArg::Hybrid => Ranker::Hybrid,
    };
    let (filters, rhythm) = refinement(q, &clamp, &store, &model_id, &catalog)?;
    let ctx = QueryContext::new(&store, &model_id, &catalog);
    let query = Query {
        level,
        vector: &vector,
        notes: &notes,
        ngrams: &ngrams,
        bars: [unit.first_bar, unit.last_bar],
        place: path.as_deref().zip(tune_index).map(|(path, tune)| Place {
            path,
            tune,
            range: unit.range,
        }),
    };
    let mut explainer = Explainer::default();
    let explained = similar::similar(
        ctx,
        &query,
        ranker,
        q.k as usize,
        &how(q, &filters, &rhythm),
        &mut explainer,
    )?;
    if let Some(out) = &args.html {
        let (source, file, tune) = &text;
        let passage = compare::QueryPassage {
            source,
            tune: &file.tunes[*tune],
            voice: unit.voice,
            bars: [unit.first_bar, unit.last_bar],
            path: path.as_deref(),
        };
        let page = compare::compare(&passage, &explained, &mut explainer)
            .context("the passage has no bars to engrave")?;
        write_page(out, &compare::page::html(&page))?;
        eprintln!(
            "wrote {} ({} passages engraved)",
            out.display(),
            page.passages.len()
        );
    }
    let query = SimilarQuery {
        path,
        title,
        level,
        bars: (level != Level::Tune).then_some([unit.first_bar, unit.last_bar]),
        measure: query_measure,
        text: unit.text.clone(),
    };
    print(q.json, &query, &explained)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `html` to `out` through a temporary file beside it, so a page being read is never
/// half-written.
fn write_page(out: &Path, html: &str) -> anyhow::Result<()> {
    let tmp = out.with_extension("html.tmp");
    std::fs::write(&tmp, html).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))
}

/// The notes and interval n-grams of a passage unit (none for a whole tune).
fn unit_notes(source: &SourceText, tune: &abc::Tune, unit: &Unit) -> (Vec<Note>, Vec<u32>) {
    if unit.level == Level::Tune {
        return (Vec::new(), Vec::new());
    }
    similar::passage_notes(source, tune, unit.voice, [unit.first_bar, unit.last_bar])
}

/// `path:line[:col]`, taking the numbers from the right so paths may hold colons.
fn parse_place(at: &str) -> anyhow::Result<(PathBuf, u32, u32)> {
    let bad = || anyhow::anyhow!("{at}: expected FILE:LINE[:COL] (1-based)");
    let mut parts = at.rsplitn(3, ':');
    let last = parts.next().ok_or_else(bad)?;
    let middle = parts.next().ok_or_else(bad)?;
    let number = |s: &str| s.parse::<u32>().ok().filter(|&n| n >= 1);
    match (number(middle), number(last), parts.next()) {
        (Some(line), Some(col), Some(path)) => Ok((PathBuf::from(path), line, col)),
        (_, Some(line), _) => {
            let path = at.rsplit_once(':').map(|(p, _)| p).ok_or_else(bad)?;
            Ok((PathBuf::from(path), line, 1))
        }
        _ => Err(bad()),
    }
}

/// The unit of `level` at `line:col`: for a passage, the window that starts at the bar under
/// the cursor (or the last window holding it, near the end of a voice).
fn unit_at(
    parsed: &input::Parsed,
    line: u32,
    col: u32,
    level: Level,
    window: usize,
) -> anyhow::Result<(Unit, usize)> {
    let source = &parsed.source;
    let name = parsed.path.display();
    let lines = source.line_index();
    if line as usize > lines.len() {
        bail!("{name}:{line}: the file has {} lines", lines.len());
    }
    let start = lines.line_start(line) as usize;
    let text = source.text();
    let line_text = text[start..].split('\n').next().unwrap_or("");
    let col_bytes: usize = line_text
        .chars()
        .take(col as usize - 1)
        .map(char::len_utf8)
        .sum();
    let offset = (start + col_bytes) as u32;
    let tune = parsed
        .file
        .tunes
        .iter()
        .find(|t| t.range.start <= offset && offset <= t.range.end)
        .with_context(|| format!("{name}:{line}:{col}: not inside a tune"))?;
    let units = abc::units(source, tune, level, window, 1);
    if level == Level::Tune {
        let unit = units
            .into_iter()
            .next()
            .context("a tune always has a unit")?;
        return Ok((unit, tune.index));
    }
    // The bar under the cursor, or the first bar after it (a cursor in the header).
    let (voice, bar) = tune
        .voices
        .iter()
        .enumerate()
        .flat_map(|(v, voice)| voice.bars.iter().map(move |b| (v, b)))
        .filter(|(_, b)| offset < b.range.end)
        .min_by_key(|(_, b)| (!b.range.contains(offset), b.range.start))
        .with_context(|| format!("{name}:{line}:{col}: no bar here or after it in this tune"))?;
    let unit = units
        .into_iter()
        .filter(|u| u.voice == voice && u.first_bar <= bar.number && bar.number <= u.last_bar)
        .min_by_key(|u| u.first_bar.abs_diff(bar.number))
        .context("every bar is in a window")?;
    Ok((unit, tune.index))
}

/// The vector of a unit: from the index when its content is there, else from the model.
fn unit_vector(
    model: &dyn EmbeddingBackend,
    store: &Store,
    model_id: &str,
    unit: &Unit,
) -> anyhow::Result<Vec<f32>> {
    let patches =
        Patchilizer::with_view(model.music_view()).encode_ids(&unit.text, PatchOptions::ALL);
    if let Some(v) = store.vector(model_id, &content_key(&patches))? {
        return Ok(v);
    }
    model
        .embed_music(&MusicBatch {
            tunes: vec![patches],
            long_tunes: LongTunes::Segment,
        })?
        .pop()
        .context("the model returned no vector")
}

fn print<Q: Serialize>(json: bool, query: &Q, matches: &[Explained]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &Answer { query, matches })?;
        writeln!(out)?;
        return Ok(());
    }
    if matches.is_empty() {
        writeln!(out, "no matches")?;
    }
    for item in matches {
        let m = &item.m;
        let bars = m.bars.map_or_else(String::new, |[a, b]| {
            format!(", bars {a}-{b}, voice {}", m.voice)
        });
        // A MusicXML match is shown by its measures: its line:col are in converted text.
        let place = match &m.measures {
            Some([a, b]) if a == b => format!("{}: {a}", m.path),
            Some([a, b]) if a.part == b.part => {
                let part = a
                    .part_name
                    .as_ref()
                    .map_or_else(String::new, |n| format!(" ({n})"));
                format!(
                    "{}: part {}{part}, measures {}-{}",
                    m.path, a.part, a.measure, b.measure
                )
            }
            Some([a, b]) => format!("{}: {a} - {b}", m.path),
            None => format!(
                "{}:{}:{}-{}:{}",
                m.path, m.start.line, m.start.col, m.end.line, m.end.col
            ),
        };
        writeln!(
            out,
            "{:.3}  {place}  {}{bars}  [{}]",
            m.score,
            m.title.as_deref().unwrap_or("(untitled)"),
            m.corpus,
        )?;
        if let Some(link) = &item.link {
            writeln!(out, "       {link}")?;
        }
        if let Some(e) = &item.explain {
            writeln!(out, "       {}", e.summary)?;
        }
        if let Some(n @ 1..) = item.other_passages {
            let s = if n == 1 { "" } else { "s" };
            writeln!(out, "       and {n} other passage{s} of this tune")?;
        }
        for s in &item.sources {
            let collection = s
                .collection
                .as_deref()
                .map_or_else(String::new, |c| format!("/{c}"));
            writeln!(
                out,
                "       also {} (tune {}) in {} [{}{collection}] {:.3}",
                s.title.as_deref().unwrap_or("(untitled)"),
                s.tune + 1,
                s.path,
                s.corpus,
                s.score
            )?;
            if let Some(link) = &s.link {
                writeln!(out, "         {link}")?;
            }
        }
    }
    Ok(())
}
