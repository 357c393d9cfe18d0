//! `tunelens eval passages`: passage → tune retrieval. Windows of W bars are cut from the
//! tunes (or given as queries), optionally varied (~12% of notes moved a step) or moved to
//! another key, and searched against every passage of every tune; a query scores when its
//! source tune comes first (top-1) or among the first ten tunes (top-10).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use serde::Serialize;
use tunelens_index::symbolic::{passage_ngrams, SymbolicIndex};
use tunelens_index::vectors::Backend;
use tunelens_index::{
    index_files_to, Catalog, IndexOptions, Ranker, Store, UnitSettings, VectorStore,
};
use tunelens_models::abc::canonical::{render, MusicView};
use tunelens_models::abc::notes::Ratio;
use tunelens_models::abc::transpose::{self, Interval};
use tunelens_models::abc::{self, rewrite, Level, PatchOptions, Patchilizer, SourceText};
use tunelens_models::encoders::{EmbeddingBackend, LongTunes, MusicBatch};

use super::embed::ModelArgs;
use super::input;
use super::store::StoreArgs;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Perturb {
    /// The windows as they are.
    None,
    /// As a composer types them: chord symbols, annotations, grace notes and decorations
    /// removed.
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
    fn name(self) -> &'static str {
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

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RankerArg {
    Vector,
    Symbolic,
    Hybrid,
    /// A baseline: shared character 4-grams of the ABC music text (no model).
    Chars,
}

#[derive(clap::Args)]
pub struct PassagesArgs {
    /// The tunes: a folder of .abc files, or JSONL with `id` and `abc` per line.
    #[arg(long)]
    tunes: PathBuf,
    /// Given queries (JSONL: `abc`, `source_id`) instead of windows cut from the tunes.
    #[arg(long)]
    queries: Option<PathBuf>,
    /// How many windows to cut when no queries are given.
    #[arg(long, default_value_t = 500)]
    count: usize,
    #[arg(long, value_enum, default_value = "none")]
    perturb: Perturb,
    #[arg(long, value_enum, default_value = "hybrid")]
    ranker: RankerArg,
    /// Bars per window.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    window: u32,
    /// Seed of the window choice and perturbations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the index here (default: a temporary folder, removed after).
    #[arg(long)]
    db: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Where the passages' vectors are searched: the same numbers come from either store.
    #[command(flatten)]
    store: StoreArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The corpus the evaluated tunes are indexed into (on Milvus, emptied before each run on a
/// scratch index: the rows of an earlier run's scratch index would otherwise crowd the top k).
const CORPUS: &str = "eval";

#[derive(Serialize)]
struct Report {
    queries: usize,
    perturb: Perturb,
    ranker: String,
    top1: f64,
    top10: f64,
    /// Queries whose window, note for note (in the canonical tonic view), is also a window of
    /// another tune: no ranker can tell which tune it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    ambiguous: Option<usize>,
    /// Top-1 over the other queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    top1_unambiguous: Option<f64>,
}

/// A query window and the tune it came from (`path#index`).
struct Query {
    abc: String,
    source: String,
}

pub fn run(args: &PassagesArgs) -> anyhow::Result<ExitCode> {
    let scratch = ScratchDir::new()?;
    let files = tune_files(&args.tunes, scratch.path())?;
    let (clamp, model_id) = args.model.load_with_id()?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| scratch.path().join("index.sled"));
    let store = Store::open(&db, false)?;
    let backend = args.store.backend()?;
    // A scratch index's rows on the server are the last scratch run's: clear them. A kept
    // `--db` is reused, and its files already pushed are not pushed again, so its rows stay.
    if let (Backend::Milvus(milvus), None) = (&backend, &args.db) {
        if let Some(collection) = milvus.find(&model_id)? {
            collection.delete_corpus(CORPUS)?;
        }
    }
    let options = IndexOptions {
        corpus: CORPUS.into(),
        settings: UnitSettings {
            window: args.window,
            stride: 1,
        },
        max_bytes: abc::DEFAULT_SIZE_LIMIT,
        batch: 64,
        roots: Vec::new(),
        collections_under: None,
    };
    eprintln!("indexing {} file(s) ...", files.len());
    let report = index_files_to(
        &store,
        &backend,
        &clamp,
        &model_id,
        &files,
        &options,
        &|_| {},
        &AtomicBool::new(false),
    )?;
    for f in &report.failed {
        eprintln!("warning: {f}");
    }

    let mut queries = match &args.queries {
        Some(path) => read_queries(path, &args.tunes, &files)?,
        None => cut_windows(&files, args.window as usize, args.count, args.seed)?,
    };
    if queries.is_empty() {
        bail!(
            "no query windows: the tunes have fewer than {} bars",
            args.window
        );
    }
    // Before the queries are perturbed: which of them another tune also holds, note for note.
    let twins = match &args.queries {
        Some(_) => None,
        None => Some(shared_windows(&files, args.window as usize, &queries)?),
    };
    let mut rng = args.seed.max(1);
    for q in &mut queries {
        q.abc = args.perturb.apply(&q.abc, next(&mut rng));
    }

    // For each query, the tunes in the order the ranker puts them.
    let (ranker_name, rankings) = if args.ranker == RankerArg::Chars {
        (
            "chars".to_owned(),
            chars_baseline(&files, args.window as usize, &queries)?,
        )
    } else {
        let ranker = match args.ranker {
            RankerArg::Vector => Ranker::Vector,
            RankerArg::Symbolic => Ranker::Symbolic,
            _ => Ranker::Hybrid,
        };
        let catalog = Catalog::open(
            &store,
            &backend,
            &model_id,
            &[CORPUS.to_owned()],
            Level::Passage,
        )?;
        let vectors = embed(&clamp, &queries)?;
        let mut rankings = Vec::new();
        for (q, v) in queries.iter().zip(&vectors) {
            let grams = query_ngrams(&q.abc);
            // Enough passages to see ten distinct tunes in nearly every case.
            let matches = catalog.ranked(v, &grams, ranker, 100, &|_| false)?;
            rankings.push(distinct(
                matches.iter().map(|m| format!("{}#{}", m.path, m.tune)),
            ));
        }
        (format!("{ranker:?}").to_lowercase(), rankings)
    };
    let (mut top1, mut top10, mut top1_clear) = (0usize, 0usize, 0usize);
    for (i, (q, tunes)) in queries.iter().zip(&rankings).enumerate() {
        let rank = tunes.iter().position(|t| *t == q.source);
        top1 += usize::from(rank == Some(0));
        top10 += usize::from(rank.is_some_and(|r| r < 10));
        let twin = twins.as_ref().is_some_and(|t| t[i]);
        top1_clear += usize::from(rank == Some(0) && !twin);
    }
    let ambiguous = twins.as_ref().map(|t| t.iter().filter(|&&x| x).count());
    let n = queries.len() as f64;
    let report = Report {
        queries: queries.len(),
        perturb: args.perturb,
        ranker: ranker_name,
        top1: top1 as f64 / n,
        top10: top10 as f64 / n,
        ambiguous,
        top1_unambiguous: ambiguous.map(|a| top1_clear as f64 / (queries.len() - a).max(1) as f64),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let perturb = args.perturb.name();
        writeln!(
            out,
            "passage → tune, {} queries, perturb {perturb}, ranker {}: top-1 {:.4}, top-10 {:.4}",
            report.queries, report.ranker, report.top1, report.top10
        )?;
        if let (Some(a), Some(t)) = (report.ambiguous, report.top1_unambiguous) {
            writeln!(
                out,
                "  {a} queries are also, note for note, a window of another tune; top-1 of the \
                 others {t:.4}"
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The .abc files of a folder (canonical paths), or JSONL rows written out as one file each.
fn tune_files(tunes: &std::path::Path, scratch: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    if tunes.is_dir() {
        return input::expand(&[tunes.to_owned()])?
            .into_iter()
            .map(|p| std::fs::canonicalize(&p).with_context(|| p.display().to_string()))
            .collect();
    }
    let dir = scratch.join("tunes");
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    for (place, v) in input::jsonl(tunes)? {
        let abc = v["abc"]
            .as_str()
            .with_context(|| format!("{place}: no `abc`"))?;
        let path = dir.join(format!("{:06}.abc", files.len()));
        std::fs::write(&path, abc)?;
        files.push(std::fs::canonicalize(&path)?);
    }
    Ok(files)
}

/// Given queries; `source_id` names a tune by its line's `id` in the tunes JSONL.
fn read_queries(
    path: &std::path::Path,
    tunes: &std::path::Path,
    files: &[PathBuf],
) -> anyhow::Result<Vec<Query>> {
    if tunes.is_dir() {
        bail!("--queries needs --tunes as JSONL with an `id` per tune");
    }
    // id → the file the tune was written to (row order, see tune_files).
    let mut ids = HashMap::new();
    for (row, (_, v)) in input::jsonl(tunes)?.into_iter().enumerate() {
        ids.insert(id_text(&v["id"]), row);
    }
    let mut out = Vec::new();
    for (place, v) in input::jsonl(path)? {
        let abc = v["abc"]
            .as_str()
            .with_context(|| format!("{place}: no `abc`"))?;
        let id = id_text(&v["source_id"]);
        let file = ids
            .get(&id)
            .and_then(|&row| files.get(row))
            .with_context(|| format!("{place}: source_id {id} is no tune id"))?;
        out.push(Query {
            abc: abc.to_owned(),
            source: format!("{}#0", file.display()),
        });
    }
    Ok(out)
}

/// An id as written: a string as it is, a number (or anything else) as JSON.
fn id_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// For each query, whether a window of another tune has the same notes in the canonical tonic
/// view (the same melody, however written and in whatever key).
fn shared_windows(
    files: &[PathBuf],
    window: usize,
    queries: &[Query],
) -> anyhow::Result<Vec<bool>> {
    let view = MusicView::CanonicalTonic;
    let music = |abc: &str| render(abc, view).unwrap_or_default();
    let mut owners: HashMap<String, Vec<String>> = HashMap::new();
    for path in files {
        let parsed = input::read(path, abc::DEFAULT_SIZE_LIMIT)?;
        for tune in &parsed.file.tunes {
            let id = format!("{}#{}", path.display(), tune.index);
            for unit in abc::units(&parsed.source, tune, Level::Passage, window, 1) {
                let tunes = owners.entry(music(&unit.text)).or_default();
                if !tunes.contains(&id) {
                    tunes.push(id.clone());
                }
            }
        }
    }
    Ok(queries
        .iter()
        .map(|q| owners.get(&music(&q.abc)).is_some_and(|t| t.len() > 1))
        .collect())
}

/// `count` windows chosen at random (seeded) among all windows of all tunes.
fn cut_windows(
    files: &[PathBuf],
    window: usize,
    count: usize,
    seed: u64,
) -> anyhow::Result<Vec<Query>> {
    let mut all = Vec::new();
    for path in files {
        let parsed = input::read(path, abc::DEFAULT_SIZE_LIMIT)?;
        for tune in &parsed.file.tunes {
            for unit in abc::units(&parsed.source, tune, Level::Passage, window, 1) {
                if (unit.last_bar - unit.first_bar + 1) as usize == window {
                    all.push(Query {
                        abc: unit.text,
                        source: format!("{}#{}", path.display(), tune.index),
                    });
                }
            }
        }
    }
    let mut rng = seed.max(1);
    let mut chosen = Vec::new();
    while chosen.len() < count.min(all.len()) {
        let i = (next(&mut rng) % all.len() as u64) as usize;
        chosen.push(all.swap_remove(i));
    }
    Ok(chosen)
}

fn embed(model: &dyn EmbeddingBackend, queries: &[Query]) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut p = Patchilizer::with_view(model.music_view());
    let tunes = queries
        .iter()
        .map(|q| p.encode_ids(&q.abc, PatchOptions::ALL))
        .collect();
    Ok(model.embed_music(&MusicBatch {
        tunes,
        long_tunes: LongTunes::Segment,
    })?)
}

fn query_ngrams(abc_text: &str) -> Vec<u32> {
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
fn distinct(ids: impl Iterator<Item = String>) -> Vec<String> {
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
fn chars_baseline(
    files: &[PathBuf],
    window: usize,
    queries: &[Query],
) -> anyhow::Result<Vec<Vec<String>>> {
    let mut index = SymbolicIndex::default();
    let mut owners = Vec::new();
    for path in files {
        let parsed = input::read(path, abc::DEFAULT_SIZE_LIMIT)?;
        for tune in &parsed.file.tunes {
            for unit in abc::units(&parsed.source, tune, Level::Passage, window, 1) {
                index.push(&char_grams(&unit.text));
                owners.push(format!("{}#{}", path.display(), tune.index));
            }
        }
    }
    Ok(queries
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
        .collect())
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

/// xorshift64: reproducible choices without a crate for it.
pub(super) fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A temporary folder for the index and written-out tunes, removed when dropped.
pub(super) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(super) fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("tunelens-eval-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| path.display().to_string())?;
        Ok(Self(path))
    }

    pub(super) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
