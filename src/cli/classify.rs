//! `tunelens classify`: zero-shot labels for each tune, by comparing its vector with the
//! vectors of text prompts ("This piece of music is Jazz.") in the shared space.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;
use tunelens_models::abc::{self, Level, LineCol, PatchOptions, Patchilizer, DEFAULT_SIZE_LIMIT};
use tunelens_models::encoders::{EmbeddingBackend, LongTunes, MusicBatch, TextBatch};

use tunelens_daemon::search::kernels::dot_f32;

use super::embed::ModelArgs;
use super::input;

/// Label sets shipped with tunelens: (name, prompt template, labels).
const LABEL_SETS: &[(&str, &str, &str)] = &[
    (
        "genre",
        "This piece of music is {label}.",
        include_str!("label_sets/genre.txt"),
    ),
    (
        "rhythm",
        "This is a {label}.",
        include_str!("label_sets/rhythm.txt"),
    ),
];

#[derive(clap::Args)]
pub struct ClassifyArgs {
    /// ABC files, or folders to search for .abc files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Comma-separated labels, e.g. "jig,reel,hornpipe" (instead of --label-set).
    #[arg(long, conflicts_with = "label_set")]
    labels: Option<String>,
    /// A shipped label set: genre or rhythm.
    #[arg(long, default_value = "genre")]
    label_set: String,
    /// The prompt for each label; `{label}` is replaced by it.
    #[arg(long)]
    template: Option<String>,
    /// How many labels to print per tune.
    #[arg(long, short, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    k: u32,
    /// Print one JSON object per tune per line.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Scored {
    label: String,
    /// Softmax over the labels of cosine × e, as the reference CLaMP's zero-shot code does.
    score: f32,
    cosine: f32,
}

#[derive(Serialize)]
struct TuneLabels {
    file: String,
    tune: usize,
    title: Option<String>,
    start: LineCol,
    end: LineCol,
    labels: Vec<Scored>,
}

/// The labels and template to use, checked.
fn label_list(args: &ClassifyArgs) -> anyhow::Result<(Vec<String>, String)> {
    let (labels, template): (Vec<String>, &str) = match &args.labels {
        Some(list) => (
            list.split(',').map(|l| l.trim().to_owned()).collect(),
            "This piece of music is {label}.",
        ),
        None => {
            let Some((_, template, text)) = LABEL_SETS
                .iter()
                .find(|(name, _, _)| *name == args.label_set)
            else {
                let names: Vec<&str> = LABEL_SETS.iter().map(|(n, _, _)| *n).collect();
                bail!(
                    "unknown label set {:?}; the shipped ones are: {}",
                    args.label_set,
                    names.join(", ")
                );
            };
            let labels = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect();
            (labels, template)
        }
    };
    if labels.len() < 2 || labels.iter().any(String::is_empty) {
        bail!("bad label list: give at least two non-empty labels, separated by commas");
    }
    let mut sorted = labels.clone();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0].eq_ignore_ascii_case(&w[1])) {
        bail!("bad label list: {:?} is given twice", w[0]);
    }
    let template = args.template.clone().unwrap_or_else(|| template.to_owned());
    if !template.contains("{label}") {
        bail!("the template must contain {{label}}: {template:?}");
    }
    Ok((labels, template))
}

pub fn run(args: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let (labels, template) = label_list(args)?;
    let clamp = args.model.load()?;
    let prompts: Vec<String> = labels
        .iter()
        .map(|l| template.replace("{label}", l))
        .collect();
    let label_vectors = clamp.embed_text(&TextBatch { texts: prompts })?;

    let mut patchilizer = Patchilizer::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = 0;
    let paths = input::expand(&args.paths)?;
    for parsed in input::readable(&paths, DEFAULT_SIZE_LIMIT, &mut failed) {
        let source = &parsed.source;
        let tunes = &parsed.file.tunes;
        let batch = MusicBatch {
            tunes: tunes
                .iter()
                .map(|t| {
                    let unit = &abc::units(source, t, Level::Tune, 1, 1)[0];
                    patchilizer.encode_ids(&unit.text, PatchOptions::ALL)
                })
                .collect(),
            long_tunes: LongTunes::Segment,
        };
        let vectors = if tunes.is_empty() {
            Vec::new()
        } else {
            clamp.embed_music(&batch)?
        };
        for (tune, v) in tunes.iter().zip(vectors) {
            let cosines: Vec<f32> = label_vectors.iter().map(|l| dot_f32(l, &v)).collect();
            let scores = softmax(&cosines, std::f32::consts::E);
            let mut scored: Vec<Scored> = labels
                .iter()
                .zip(cosines.iter().zip(scores))
                .map(|(label, (&cosine, score))| Scored {
                    label: label.clone(),
                    score,
                    cosine,
                })
                .collect();
            scored.sort_by(|a, b| b.score.total_cmp(&a.score));
            scored.truncate(args.k as usize);
            let item = TuneLabels {
                file: parsed.path.display().to_string(),
                tune: tune.index,
                title: tune.title().map(str::to_owned),
                start: source.line_col(tune.range.start),
                end: source.line_col(tune.range.end),
                labels: scored,
            };
            if args.json {
                serde_json::to_writer(&mut out, &item)?;
                writeln!(out)?;
            } else {
                let labels: Vec<String> = item
                    .labels
                    .iter()
                    .map(|s| format!("{} {:.2}", s.label, s.score))
                    .collect();
                writeln!(
                    out,
                    "{}:{}  {}  {}",
                    item.file,
                    item.start,
                    item.title.as_deref().unwrap_or("(untitled)"),
                    labels.join(", ")
                )?;
            }
        }
    }
    out.flush()?;
    Ok(input::exit_code(failed))
}

fn softmax(xs: &[f32], scale: f32) -> Vec<f32> {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = xs.iter().map(|x| ((x - max) * scale).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}
