//! `tunelens check`: did I copy something? Lists the passages of the user's tunes that are too
//! close to a tune of a reference corpus, each with its explanation, and exits with 1 when
//! any is found (so scripts and CI can use it). `--syntax` prints the ABC layer's
//! diagnostics instead, as `file:line:col`, and exits with 1 when there are any.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tunelens_index::originality::{self, CheckOptions, Finding, Reference};
use tunelens_index::{Catalog, Explainer, Match};
use tunelens_models::abc::{self, Level, LineCol, PatchOptions, Patchilizer, DEFAULT_SIZE_LIMIT};
use tunelens_models::encoders::{EmbeddingBackend, LongTunes, MusicBatch};

use super::db::DbArgs;
use super::embed::ModelArgs;
use super::input;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// ABC files, or folders to search for .abc files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print the ABC diagnostics (syntax, bar lengths) instead of checking originality; needs
    /// no model or index.
    #[arg(long)]
    syntax: bool,
    /// Reference corpora to check against (repeatable; default: every indexed corpus).
    #[arg(long)]
    corpus: Vec<String>,
    /// Report passages whose notes agree at least this much (0..1) with a reference passage.
    #[arg(long, default_value_t = originality::DEFAULT_THRESHOLD)]
    threshold: f32,
    /// Bars per passage window (as the reference corpus was indexed).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    window: u32,
    /// Windows with fewer notes are not checked.
    #[arg(long, default_value_t = originality::DEFAULT_MIN_NOTES)]
    min_notes: usize,
    /// Weight of the music-vector cosine in the score (0 = notes only; raise it only with a
    /// trained model).
    #[arg(long, default_value_t = 0.0)]
    vector_weight: f32,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    db: DbArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FileFindings {
    path: String,
    findings: Vec<Finding>,
}

#[derive(Serialize)]
struct SyntaxItem {
    path: String,
    start: LineCol,
    end: LineCol,
    #[serde(flatten)]
    diagnostic: abc::Diagnostic,
}

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    if args.syntax {
        return syntax(args);
    }
    if !(0.0..=1.0).contains(&args.threshold) {
        anyhow::bail!("--threshold must be between 0 and 1");
    }
    let options = CheckOptions {
        threshold: args.threshold,
        window: args.window,
        min_notes: args.min_notes,
        vector_weight: args.vector_weight.clamp(0.0, 1.0),
        ..CheckOptions::default()
    };
    let paths = input::expand(&args.paths)?;
    let (clamp, model_id) = args.model.load_with_id()?;
    let store = args.db.open()?;
    let catalog = Catalog::load(&store, &model_id, &args.corpus, Level::Passage)?;
    let mut explainer = Explainer::default();
    let mut failed = 0;
    let mut results = Vec::new();
    for parsed in input::readable(&paths, DEFAULT_SIZE_LIMIT, &mut failed) {
        let windows = originality::windows(&parsed.source, &parsed.file, options.window);
        // Vectors only when they count: the symbolic check needs none.
        let vectors = if options.vector_weight > 0.0 && !windows.is_empty() {
            let mut p = Patchilizer::with_view(clamp.music_view());
            let tunes = windows
                .iter()
                .map(|w| p.encode_ids(&w.unit.text, PatchOptions::ALL))
                .collect();
            Some(clamp.embed_music(&MusicBatch {
                tunes,
                long_tunes: LongTunes::Segment,
            })?)
        } else {
            None
        };
        // The file itself may be indexed (a workspace corpus): it must not match itself.
        let own = std::fs::canonicalize(&parsed.path)
            .with_context(|| parsed.path.display().to_string())?
            .display()
            .to_string();
        let exclude = |m: &Match| m.path == own;
        let findings = originality::check(
            &parsed.source,
            &windows,
            vectors.as_deref(),
            Reference {
                catalog: &catalog,
                exclude: &exclude,
            },
            &options,
            &mut explainer,
            &|| false,
        )?;
        results.push(FileFindings {
            path: parsed.path.display().to_string(),
            findings,
        });
    }
    let found = results.iter().map(|r| r.findings.len()).sum::<usize>();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({
                "threshold": options.threshold,
                "model": model_id,
                "files": results,
                "findings": found,
            }),
        )?;
        writeln!(out)?;
    } else {
        for r in &results {
            for f in &r.findings {
                print_finding(&mut out, &r.path, f)?;
            }
        }
        if found == 0 {
            writeln!(
                out,
                "no passage reaches {:.2} against the reference corpus",
                options.threshold
            )?;
        }
    }
    Ok(if failed > 0 || found > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_finding(out: &mut impl Write, path: &str, f: &Finding) -> anyhow::Result<()> {
    let q = &f.query;
    let r = &f.reference;
    writeln!(
        out,
        "{path}:{}-{}: {} ({:.3}){}",
        q.start,
        q.end,
        f.explain.summary,
        f.score,
        f.setting_note()
            .map_or_else(String::new, |n| format!("; {n}"))
    )?;
    let collection = r
        .collection
        .as_deref()
        .map_or_else(String::new, |c| format!("/{c}"));
    writeln!(
        out,
        "    {}:{}:{}-{}:{} [{}{collection}]",
        r.path, r.start.line, r.start.col, r.end.line, r.end.col, r.corpus
    )?;
    for s in &f.also {
        writeln!(
            out,
            "    also {} (tune {}) in {}{}",
            s.title.as_deref().unwrap_or("(untitled)"),
            s.tune + 1,
            s.path,
            s.collection
                .as_deref()
                .map_or_else(String::new, |c| format!(" [{c}]"))
        )?;
    }
    Ok(())
}

/// `--syntax`: every diagnostic of every file, `file:line:col: severity: message [code]`.
fn syntax(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let paths = input::expand(&args.paths)?;
    let mut failed = 0;
    let mut found = 0;
    let mut items = Vec::new();
    let mut out = std::io::stdout().lock();
    for path in &paths {
        let parsed = match input::read(path, DEFAULT_SIZE_LIMIT) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
                continue;
            }
        };
        for d in abc::diagnostics::all(&parsed.source, &parsed.file) {
            found += 1;
            if args.json {
                items.push(SyntaxItem {
                    path: parsed.path.display().to_string(),
                    start: parsed.source.line_col(d.range.start),
                    end: parsed.source.line_col(d.range.end),
                    diagnostic: d,
                });
            } else {
                writeln!(out, "{}", input::format_diagnostic(&parsed, &d))?;
            }
        }
    }
    if args.json {
        serde_json::to_writer(&mut out, &serde_json::json!({ "diagnostics": items }))?;
        writeln!(out)?;
    }
    Ok(if failed > 0 || found > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
