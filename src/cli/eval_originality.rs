//! `tunelens eval originality`: where the originality check's threshold should be. The tunes
//! are indexed as one reference corpus, held-out tunes are checked against the rest and given
//! planted quotes (`tunelens_index::eval::originality` says how), and the detection and
//! false-alarm rates are printed over a sweep of thresholds.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tunelens_index::eval::originality::{held_out_cases, rates, sweep, Case, Cases, Row};
use tunelens_index::eval::TuneFile;
use tunelens_index::originality::{self, CheckOptions};
use tunelens_index::{index_files, Catalog, IndexOptions, Progress, Store, UnitSettings};
use tunelens_models::abc::{self, Level};

use super::embed::ModelArgs;
use super::eval_passages::ScratchDir;
use super::input;

/// The corpus name the tunes are indexed under.
const CORPUS: &str = "originality";

#[derive(clap::Args)]
pub struct OriginalityArgs {
    /// The reference tunes: folders of .abc files, or files (repeatable; together one corpus).
    #[arg(long, required = true)]
    tunes: Vec<PathBuf>,
    /// How many tunes to hold out (each gives a false-alarm case and three planted quotes).
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// Seed of the held-out tunes, the quoted tunes and windows, the filler and the variations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the index here, and reuse it on the next run (default: a temporary folder).
    #[arg(long)]
    db: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    model: String,
    files: usize,
    tunes: usize,
    held_out: usize,
    seed: u64,
    window: u32,
    min_notes: usize,
    /// Quoted windows drawn again because they read otherwise once planted.
    quotes_redrawn: usize,
    default_threshold: f32,
    at_default: Row,
    sweep: Vec<Row>,
    /// The threshold of the sweep that detects at least 0.95 of every kind with the fewest
    /// false alarms (other tunes); none when no threshold detects that much.
    chosen: Option<Row>,
    cases: Vec<Case>,
}

pub fn run(args: &OriginalityArgs) -> anyhow::Result<ExitCode> {
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let scratch = ScratchDir::new()?;
    let abc = |p: &PathBuf| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("abc"));
    let files = input::canonical(
        input::expand(&args.tunes)?
            .into_iter()
            .filter(abc)
            .collect(),
    )?;
    if files.is_empty() {
        bail!("no .abc files among the --tunes paths");
    }
    let (clamp, model_id) = args.model.load_with_id()?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| scratch.path().join("index.sled"));
    let store = Store::open(&db, false).with_context(|| db.display().to_string())?;
    let options = CheckOptions {
        threshold: 0.0,
        ..CheckOptions::default()
    };
    let index_options = IndexOptions {
        corpus: CORPUS.into(),
        settings: UnitSettings {
            window: options.window,
            stride: 1,
        },
        max_bytes: abc::DEFAULT_SIZE_LIMIT,
        batch: 64,
        roots: Vec::new(),
        collections_under: None,
    };
    let bar = progress_bar(files.len(), "files indexed");
    let report = index_files(
        &store,
        &clamp,
        &model_id,
        &files,
        &index_options,
        &|p: &Progress| bar.set_position(p.files_done as u64),
        &AtomicBool::new(false),
    )
    .context("indexing the reference tunes")?;
    bar.finish_and_clear();
    for f in &report.failed {
        eprintln!("warning: {f}");
    }
    let catalog = Catalog::load(&store, &model_id, &[CORPUS.to_owned()], Level::Passage)?;

    // The corpus's ABC warnings (thousands of unclosed slurs in O'Neill's) are not news here.
    let mut failed = 0;
    let mut parsed: Vec<TuneFile> = Vec::new();
    for path in &files {
        match input::read(path, abc::DEFAULT_SIZE_LIMIT) {
            Ok(p) => parsed.push(TuneFile {
                path: p.path.display().to_string(),
                source: p.source,
                file: p.file,
            }),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        }
    }
    let bar = progress_bar(0, "tunes held out");
    let Cases {
        cases,
        quotes_redrawn,
        tunes,
    } = held_out_cases(
        &parsed,
        &catalog,
        &options,
        args.count,
        args.seed,
        &|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    let (sweep, chosen) = sweep(&cases);
    let report = Report {
        model: model_id,
        files: parsed.len(),
        tunes,
        held_out: cases.len(),
        seed: args.seed,
        window: options.window,
        min_notes: options.min_notes,
        quotes_redrawn,
        default_threshold: originality::DEFAULT_THRESHOLD,
        at_default: rates(&cases, originality::DEFAULT_THRESHOLD),
        sweep,
        chosen,
        cases,
    };
    print(args.json, &report)?;
    Ok(input::exit_code(failed))
}

fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what}  ETA {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn print(json: bool, r: &Report) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, r)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} tunes in {} file(s), {} held out (seed {}), {}-bar windows of at least {} notes",
        r.tunes, r.files, r.held_out, r.seed, r.window, r.min_notes
    )?;
    writeln!(
        out,
        "threshold  exact  varied  transposed  false alarms  (other titles)  (unrelated)"
    )?;
    let line = |out: &mut std::io::StdoutLock, row: &Row, note: &str| {
        writeln!(
            out,
            "{:>9.2}  {:>5.3}  {:>6.3}  {:>10.3}  {:>12.3}  {:>14.3}  {:>11.3}{note}",
            row.threshold,
            row.detection.exact,
            row.detection.varied,
            row.detection.transposed,
            row.false_alarms,
            row.false_alarms_other_tunes,
            row.false_alarms_unrelated
        )
    };
    for row in &r.sweep {
        line(&mut out, row, "")?;
    }
    line(&mut out, &r.at_default, "  (default)")?;
    match &r.chosen {
        Some(row) => line(
            &mut out,
            row,
            "  (chosen: detection ≥ 0.95, fewest false alarms)",
        )?,
        None => writeln!(out, "no threshold detects 0.95 of every kind")?,
    }
    for c in r
        .cases
        .iter()
        .filter(|c| c.best_unrelated >= r.default_threshold)
    {
        writeln!(
            out,
            "  false alarm at the default: {} ({}): {:.3} {} [{}]",
            c.tune,
            c.title.as_deref().unwrap_or("(untitled)"),
            c.best_unrelated,
            c.best_unrelated_summary.as_deref().unwrap_or(""),
            c.best_unrelated_reference.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
