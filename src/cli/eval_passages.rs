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
use tunelens_index::eval::passages::{
    chars_baseline, cut_windows, distinct, query_ngrams, score, shared_windows, PassageScores,
    Perturb, Window,
};
use tunelens_index::eval::{next, TuneFile};
use tunelens_index::vectors::Backend;
use tunelens_index::{Catalog, IndexJob, IndexOptions, Ranker, Store, UnitSettings, VectorStore};
use tunelens_models::abc::{self, Level, PatchOptions, Patchilizer};
use tunelens_models::encoders::{EmbeddingBackend, LongTunes, MusicBatch};

use super::db::StoreArgs;
use super::embed::ModelArgs;
use super::input;

/// The query sets of [`Perturb`], as flags.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PerturbArg {
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

impl PerturbArg {
    fn recipe(self) -> Perturb {
        match self {
            PerturbArg::None => Perturb::None,
            PerturbArg::Plain => Perturb::Plain,
            PerturbArg::Respell => Perturb::Respell,
            PerturbArg::Vary => Perturb::Vary,
            PerturbArg::Transpose => Perturb::Transpose,
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
    perturb: PerturbArg,
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
    /// Top-1 and top-10; `ambiguous`: queries whose window, note for note (in the canonical
    /// tonic view), is also a window of another tune, which no ranker can tell apart, and
    /// top-1 over the other queries.
    #[serde(flatten)]
    scores: PassageScores,
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
    let report = IndexJob {
        store: &store,
        backend: &backend,
        model: &clamp,
        model_id: &model_id,
        options: &options,
        progress: &|_| {},
        cancel: &AtomicBool::new(false),
    }
    .run(&files)?;
    for f in &report.failed {
        eprintln!("warning: {f}");
    }

    let tunes = read_tunes(&files)?;
    let window = args.window as usize;
    let mut queries = match &args.queries {
        Some(path) => read_queries(path, &args.tunes, &files)?,
        None => cut_windows(&tunes, window, args.count, args.seed),
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
        None => Some(shared_windows(&tunes, window, &queries)),
    };
    let perturb = args.perturb.recipe();
    let mut rng = args.seed.max(1);
    for q in &mut queries {
        q.abc = perturb.apply(&q.abc, next(&mut rng));
    }

    // For each query, the tunes in the order the ranker puts them.
    let (ranker_name, rankings) = if args.ranker == RankerArg::Chars {
        ("chars".to_owned(), chars_baseline(&tunes, window, &queries))
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
    let report = Report {
        queries: queries.len(),
        perturb,
        ranker: ranker_name,
        scores: score(&queries, &rankings, twins.as_deref()),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let perturb = perturb.name();
        let scores = &report.scores;
        writeln!(
            out,
            "passage → tune, {} queries, perturb {perturb}, ranker {}: top-1 {:.4}, top-10 {:.4}",
            report.queries, report.ranker, scores.top1, scores.top10
        )?;
        if let (Some(a), Some(t)) = (scores.ambiguous, scores.top1_unambiguous) {
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
        return input::expand_canonical(&[tunes.to_owned()]);
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

/// The tune files, read once for cutting windows, finding twins and the character baseline.
fn read_tunes(files: &[PathBuf]) -> anyhow::Result<Vec<TuneFile>> {
    files
        .iter()
        .map(|path| {
            let parsed = input::read(path, abc::DEFAULT_SIZE_LIMIT)?;
            Ok(TuneFile {
                path: path.display().to_string(),
                source: parsed.source,
                file: parsed.file,
            })
        })
        .collect()
}

/// Given queries; `source_id` names a tune by its line's `id` in the tunes JSONL.
fn read_queries(
    path: &std::path::Path,
    tunes: &std::path::Path,
    files: &[PathBuf],
) -> anyhow::Result<Vec<Window>> {
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
        out.push(Window {
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

fn embed(model: &dyn EmbeddingBackend, queries: &[Window]) -> anyhow::Result<Vec<Vec<f32>>> {
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
