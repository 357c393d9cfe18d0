//! `tunelens classify`: labels for each tune. A label set the model has a head for (`rhythm`,
//! `genre` on the default model) is answered by the head's calibrated probabilities; any other
//! list zero-shot, by comparing the tune's vector with the vectors of text prompts ("This piece
//! of music is Jazz.") in the shared space. Each line says which answered.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use tunelens_models::abc::{self, Level, LineCol, PatchOptions, Patchilizer, DEFAULT_SIZE_LIMIT};
use tunelens_models::encoders::{EmbeddingBackend, LongTunes, MusicBatch, TextBatch};

use tunelens_index::labels::{from_head, head_for, zero_shot, LabelSet, Scored, DEFAULT_TEMPLATE};

use super::embed::ModelArgs;
use super::input;

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
struct TuneLabels {
    file: String,
    tune: usize,
    title: Option<String>,
    start: LineCol,
    end: LineCol,
    /// `head` (the model's label head for the set) or `zero-shot` (text prompts).
    source: &'static str,
    labels: Vec<Scored>,
}

/// The labels and template to use, checked.
fn label_list(args: &ClassifyArgs) -> anyhow::Result<LabelSet> {
    let mut set = match &args.labels {
        Some(list) => LabelSet::new(
            list.split(',').map(str::to_owned).collect(),
            DEFAULT_TEMPLATE,
        )?,
        None => LabelSet::shipped(&args.label_set)?,
    };
    if let Some(t) = &args.template {
        set = LabelSet::new(set.labels, t)?;
    }
    Ok(set)
}

pub fn run(args: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let set = label_list(args)?;
    let clamp = args.model.load()?;
    let heads = args.model.heads()?;
    // A head answers for its own label set; a list or template of the user's goes to prompts.
    let head = (args.labels.is_none() && args.template.is_none())
        .then(|| head_for(&heads, &args.label_set))
        .flatten();
    let label_vectors = match head {
        Some(_) => Vec::new(),
        None => clamp.embed_text(&TextBatch {
            texts: set.prompts(),
        })?,
    };

    let mut patchilizer = Patchilizer::with_view(clamp.music_view());
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
            let mut scored = match head {
                Some(h) => from_head(h, &v),
                None => zero_shot(&set.labels, &label_vectors, &v),
            };
            scored.truncate(args.k as usize);
            let item = TuneLabels {
                file: parsed.path.display().to_string(),
                tune: tune.index,
                title: tune.title().map(str::to_owned),
                start: source.line_col(tune.range.start),
                end: source.line_col(tune.range.end),
                source: if head.is_some() { "head" } else { "zero-shot" },
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
                    "{}:{}  {}  {} ({})",
                    item.file,
                    item.start,
                    item.title.as_deref().unwrap_or("(untitled)"),
                    labels.join(", "),
                    item.source
                )?;
            }
        }
    }
    out.flush()?;
    Ok(input::exit_code(failed))
}
