//! `tunelens index`: embed every tune and passage of ABC files into the corpus index.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tunelens_index::{Backend, IndexJob, IndexOptions, Progress, Store, UnitSettings};
use tunelens_models::abc::DEFAULT_SIZE_LIMIT;
use tunelens_models::encoders::Clamp;

use super::db::DbArgs;
use super::embed::ModelArgs;
use super::input;

#[derive(clap::Args)]
pub struct IndexArgs {
    /// ABC files, or folders to search for .abc files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    db: DbArgs,
    /// The corpus these files belong to.
    #[arg(long, default_value = "workspace")]
    corpus: String,
    /// Bars per passage window.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    window: u32,
    /// Bars between the starts of two passage windows.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    stride: u32,
    /// Units per call to the model.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch: u32,
    /// Skip files larger than this many bytes.
    #[arg(long, default_value_t = DEFAULT_SIZE_LIMIT)]
    max_bytes: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &IndexArgs) -> anyhow::Result<ExitCode> {
    // Paths are stored canonical, so that a file is the same entry however it was named.
    let files = input::expand_canonical(&args.paths)?;
    let (clamp, model_id) = args.model.load_with_id()?;
    let store = args.db.open()?;
    let backend = args.db.store.backend()?;
    let roots: Vec<PathBuf> = args
        .paths
        .iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    // A reference corpus built from one folder has collections, its first folders, as the
    // daemon's corpora do (so `--collection` can pick them); the user's own files have none.
    let collections_under = match roots.as_slice() {
        [root] if args.corpus != "workspace" => Some(root.clone()),
        _ => None,
    };
    let options = IndexOptions {
        corpus: args.corpus.clone(),
        settings: UnitSettings {
            window: args.window,
            stride: args.stride,
        },
        max_bytes: args.max_bytes,
        batch: args.batch as usize,
        roots,
        collections_under,
    };
    run_job(
        &store, &backend, &clamp, &model_id, &files, &options, args.json,
    )
}

/// Runs an indexing job with a progress bar and Ctrl-C handling, and prints its report.
pub fn run_job(
    store: &Store,
    backend: &Backend,
    clamp: &Clamp,
    model_id: &str,
    files: &[PathBuf],
    options: &IndexOptions,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // Ctrl-C asks the job to stop after the batch in hand; what is done stays done. A second
    // Ctrl-C ends the process at once, which is safe too (see index::job).
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: finishing the batch in hand; run the same command to resume");
    })
    .context("installing the Ctrl-C handler")?;

    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files  {msg}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let report_progress = |p: &Progress| {
        let rate = p.embedded as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_position(p.files_done as u64);
        bar.set_message(format!(
            "{} embedded ({rate:.0}/s), {} cached, {} queued",
            p.embedded, p.cached, p.queued
        ));
    };
    let report = IndexJob {
        store,
        backend,
        model: clamp,
        model_id,
        options,
        progress: &report_progress,
        cancel: &cancel,
    }
    .run(files)?;
    bar.finish_and_clear();

    for failure in &report.failed {
        eprintln!("error: {failure}");
    }
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        println!(
            "{} [{}]: {} file(s) indexed, {} unchanged, {} removed, {} failed; {} unit(s) embedded, {} from cache{}",
            store.path().display(),
            options.corpus,
            report.files_indexed,
            report.files_unchanged,
            report.files_removed,
            report.failed.len(),
            report.progress.embedded,
            report.progress.cached,
            if report.cancelled { " (interrupted: run again to resume)" } else { "" }
        );
    }
    Ok(if report.cancelled {
        ExitCode::from(130)
    } else if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
