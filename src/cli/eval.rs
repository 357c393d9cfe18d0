//! `tunelens eval`: how well a model does on labelled data in WikiMT's JSONL form (`title`,
//! `artist`, `genre`, `text`, `music`; `abc` is taken for `music`) or on a folder of tunes
//! (labels from a header field: `--label-field R`).
//!
//! - text → music retrieval: each text ranks all tunes; MRR and HR@1/10/100;
//! - zero-shot labels (a label field, `genre` by default): accuracy, macro-F1, confusion;
//! - linear probe: softmax regression on frozen tune vectors, k-fold: accuracy, macro-F1;
//! - baselines on the same rows: the majority class, the same probe on hashed
//!   bag-of-character-n-gram counts of the music text the model reads (what a model must beat
//!   to have learnt more than spelling), and for rhythm labels a rule that guesses from the
//!   meter alone.
//!
//! Metrics the data cannot support are left out with a note, never an error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde::Serialize;
use tunelens_models::abc::{self, Level, PatchOptions, Patchilizer, SourceText};
use tunelens_models::encoders::{EmbeddingBackend, LongTunes, MusicBatch, TextBatch};
use tunelens_models::heads::tune_type;

use tunelens_index::eval::metrics::{
    accuracy, argmax, confusion, macro_f1, majority_accuracy, rank_among, Retrieval,
};
use tunelens_index::eval::probe::{meter_rule, ngram_features, probe};
use tunelens_index::search::kernels::dot_f32;

use super::embed::ModelArgs;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    command: Option<EvalCommand>,
    /// A JSONL file of tunes (WikiMT form).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// The field holding each tune's label, for zero-shot and probe metrics.
    #[arg(long, default_value = "genre")]
    label_field: String,
    /// The labels to choose among (default: those found in the data).
    #[arg(long)]
    labels: Option<String>,
    /// The zero-shot prompt; `{label}` is replaced.
    #[arg(long, default_value = "This piece of music is {label}.")]
    template: String,
    /// More tunes (JSONL or a folder) to rank among in text → music retrieval, as distractors:
    /// their texts are not asked.
    #[arg(long)]
    candidates: Option<PathBuf>,
    /// Folds of the linear probe.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=20))]
    folds: u32,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum EvalCommand {
    /// Passage → tune retrieval with (perturbed) windows as queries.
    Passages(super::eval_passages::PassagesArgs),
    /// The originality check on held-out tunes and planted quotes, over a sweep of thresholds.
    Originality(super::eval_originality::OriginalityArgs),
}

/// One row of the data.
pub(super) struct Row {
    pub music: String,
    pub text: Option<String>,
    pub label: Option<String>,
}

#[derive(Serialize, Default)]
struct Report {
    data: String,
    tunes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    mrr: Option<f64>,
    #[serde(rename = "hr@1", skip_serializing_if = "Option::is_none")]
    hr1: Option<f64>,
    #[serde(rename = "hr@10", skip_serializing_if = "Option::is_none")]
    hr10: Option<f64>,
    #[serde(rename = "hr@100", skip_serializing_if = "Option::is_none")]
    hr100: Option<f64>,
    /// Tunes each text was ranked among (the rows with music, plus `--candidates`).
    #[serde(skip_serializing_if = "Option::is_none")]
    ranked_among: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    macro_f1: Option<f64>,
    /// The model's label head for the field, when it has one: its labels are the ones scored
    /// (rows with other labels are left out of every label metric).
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head_macro_f1: Option<f64>,
    /// The head's `confusion[true][predicted]`, in the order of `labels`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    head_confusion: Vec<Vec<usize>>,
    /// Rows scored by the label metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    labelled: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_macro_f1: Option<f64>,
    /// Always the most frequent label.
    #[serde(skip_serializing_if = "Option::is_none")]
    majority_accuracy: Option<f64>,
    /// The linear probe on character n-gram counts instead of tune vectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    ngram_probe_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ngram_probe_macro_f1: Option<f64>,
    /// Rhythm from `M:` alone: 6/8 jig, 9/8 slip jig, 3/4 waltz, anything else reel (rhythm
    /// labels only).
    #[serde(skip_serializing_if = "Option::is_none")]
    meter_rule_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meter_rule_macro_f1: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels: Vec<String>,
    /// `confusion[true][predicted]`, in the order of `labels`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    confusion: Vec<Vec<usize>>,
    notes: Vec<String>,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(EvalCommand::Passages(p)) => return super::eval_passages::run(p),
        Some(EvalCommand::Originality(o)) => return super::eval_originality::run(o),
        None => {}
    }
    let data = args.data.as_ref().context("--data is required")?;
    let rows = read_rows(data, &args.label_field)?;
    let clamp = args.model.load()?;
    let mut report = Report {
        data: data.display().to_string(),
        tunes: rows.len(),
        ..Report::default()
    };

    let texts = model_texts(&rows);
    let music = embed_music(&clamp, &texts)?;

    // Text → music retrieval, over the rows that have a text.
    let with_text: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].text.is_some())
        .collect();
    if with_text.is_empty() {
        report
            .notes
            .push("no `text` field: retrieval metrics left out".into());
    } else {
        let texts: Vec<String> = with_text
            .iter()
            .filter_map(|&i| rows[i].text.clone())
            .collect();
        let text_vectors = clamp.embed_text(&TextBatch { texts })?;
        let distractors = match &args.candidates {
            Some(c) => {
                let rows = read_rows(c, &args.label_field)?;
                embed_music(&clamp, &model_texts(&rows))?
            }
            None => Vec::new(),
        };
        report.ranked_among = Some(music.len() + distractors.len());
        let ranks: Vec<usize> = with_text
            .iter()
            .zip(&text_vectors)
            .map(|(&i, t)| rank_among(t, &music[i], music.iter().chain(&distractors)))
            .collect();
        if let Some(r) = Retrieval::of(&ranks) {
            (report.mrr, report.hr1, report.hr10, report.hr100) =
                (Some(r.mrr), Some(r.hr1), Some(r.hr10), Some(r.hr100));
        }
    }

    // Zero-shot labels and the linear probe, over the rows that have a label.
    let labelled: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].label.is_some())
        .collect();
    let heads = args.model.heads()?;
    let head = heads
        .iter()
        .find(|h| h.field.eq_ignore_ascii_case(&args.label_field) || h.name == args.label_field);
    let labels: Vec<String> = match (&args.labels, head) {
        (Some(list), _) => list.split(',').map(|l| l.trim().to_owned()).collect(),
        (None, Some(h)) => h.labels.clone(),
        (None, None) => {
            let mut l: Vec<String> = labelled
                .iter()
                .filter_map(|&i| rows[i].label.clone())
                .collect();
            l.sort();
            l.dedup();
            l
        }
    };
    if labels.len() < 2 || labels.iter().any(String::is_empty) {
        report.notes.push(format!(
            "fewer than two labels in `{}`: label metrics left out",
            args.label_field
        ));
    } else {
        let truth: Vec<(usize, usize)> = labelled
            .iter()
            .filter_map(|&i| {
                let l = rows[i].label.as_ref()?;
                labels.iter().position(|x| x == l).map(|c| (i, c))
            })
            .collect();
        let prompts = labels
            .iter()
            .map(|l| args.template.replace("{label}", l))
            .collect();
        let label_vectors = clamp.embed_text(&TextBatch { texts: prompts })?;
        let predicted: Vec<usize> = truth
            .iter()
            .map(|&(i, _)| argmax(label_vectors.iter().map(|l| dot_f32(l, &music[i]))))
            .collect();
        let gold: Vec<usize> = truth.iter().map(|&(_, c)| c).collect();
        report.labelled = Some(gold.len());
        if let Some(h) = head {
            // The head's own label order may differ from `labels` (given with --labels).
            let predicted: Vec<usize> = truth
                .iter()
                .map(|&(i, _)| {
                    let best = h.predict(&music[i]).into_iter().next();
                    best.and_then(|(l, _)| labels.iter().position(|x| *x == l))
                        .unwrap_or(usize::MAX)
                })
                .collect();
            let right = predicted.iter().zip(&gold).filter(|(p, g)| p == g).count();
            let m: Vec<(usize, usize)> = predicted
                .iter()
                .zip(&gold)
                .filter(|(p, _)| **p != usize::MAX)
                .map(|(&p, &g)| (g, p))
                .collect();
            let (g, p): (Vec<usize>, Vec<usize>) = m.into_iter().unzip();
            report.head = Some(h.name.clone());
            report.head_accuracy = Some(right as f64 / gold.len().max(1) as f64);
            let m = confusion(&g, &p, labels.len());
            report.head_macro_f1 = Some(macro_f1(&m));
            report.head_confusion = m;
        }
        let confusion = confusion(&gold, &predicted, labels.len());
        report.accuracy = Some(accuracy(&confusion));
        report.macro_f1 = Some(macro_f1(&confusion));
        report.confusion = confusion;
        let features: Vec<&[f32]> = truth.iter().map(|&(i, _)| music[i].as_slice()).collect();
        let vector_probe = probe(&features, &gold, labels.len(), args.folds as usize);
        report.probe_accuracy = Some(accuracy(&vector_probe));
        report.probe_macro_f1 = Some(macro_f1(&vector_probe));

        report.majority_accuracy = Some(majority_accuracy(&gold, labels.len()));
        let ngrams: Vec<Vec<f32>> = truth
            .iter()
            .map(|&(i, _)| ngram_features(&texts[i]))
            .collect();
        let features: Vec<&[f32]> = ngrams.iter().map(Vec::as_slice).collect();
        let ngram_probe = probe(&features, &gold, labels.len(), args.folds as usize);
        report.ngram_probe_accuracy = Some(accuracy(&ngram_probe));
        report.ngram_probe_macro_f1 = Some(macro_f1(&ngram_probe));
        if is_rhythm(&args.label_field) {
            // A guess outside the label list is a wrong answer; it has no column.
            let mut m = vec![vec![0; labels.len()]; labels.len()];
            let mut right = 0;
            for &(i, g) in &truth {
                let guess = meter_rule(&rows[i].music);
                if let Some(p) = labels.iter().position(|l| l == guess) {
                    m[g][p] += 1;
                    right += usize::from(p == g);
                }
            }
            report.meter_rule_accuracy = Some(right as f64 / truth.len().max(1) as f64);
            report.meter_rule_macro_f1 = Some(macro_f1(&m));
        }
        report.labels = labels;
    }
    print(args.json, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// The rows of a folder of tunes or a JSONL file, labels from `label_field`. Tune types
/// (`R`, `rhythm`) are read in one spelling ([`tune_type`]).
pub(super) fn read_rows(data: &std::path::Path, label_field: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = read_raw_rows(data, label_field)?;
    if is_rhythm(label_field) {
        for r in &mut rows {
            r.label = r.label.as_deref().map(tune_type);
        }
    }
    Ok(rows)
}

fn is_rhythm(label_field: &str) -> bool {
    matches!(label_field.to_ascii_lowercase().as_str(), "r" | "rhythm")
}

fn read_raw_rows(data: &std::path::Path, label_field: &str) -> anyhow::Result<Vec<Row>> {
    // A folder, or one score file (ABC or MusicXML); anything else is read as JSONL.
    let jsonl = data
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("json"));
    if data.is_dir() || !jsonl {
        return folder_rows(data, label_field);
    }
    let mut rows = Vec::new();
    for (place, v) in super::input::jsonl(data)? {
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let Some(music) = field("music").or_else(|| field("abc")) else {
            bail!("{place}: no `music` (or `abc`) field");
        };
        rows.push(Row {
            music,
            text: field("text").filter(|t| !t.trim().is_empty()),
            label: field(label_field),
        });
    }
    if rows.is_empty() {
        bail!("{}: no rows", data.display());
    }
    Ok(rows)
}

/// The tunes of a folder of ABC files: no texts, and labels from a header field when
/// `label_field` is a field letter (e.g. `R` for rhythm).
fn folder_rows(dir: &std::path::Path, label_field: &str) -> anyhow::Result<Vec<Row>> {
    let letter = match label_field.as_bytes() {
        [c] if c.is_ascii_alphabetic() => Some(char::from(*c)),
        _ => None,
    };
    let paths = super::input::expand(&[dir.to_owned()])?;
    let mut failed = 0;
    let mut rows = Vec::new();
    for parsed in super::input::readable(&paths, abc::DEFAULT_SIZE_LIMIT, &mut failed) {
        for tune in &parsed.file.tunes {
            // The label's own field line is hidden from the music, or a model could read
            // the answer (`R:jig`) off the input.
            let music = parsed.source.slice(tune.range);
            let music = match letter {
                Some(l) => music
                    .lines()
                    .filter(|line| {
                        let b = line.as_bytes();
                        !(b.len() > 1 && char::from(b[0]) == l && b[1] == b':')
                    })
                    .map(|line| format!("{line}\n"))
                    .collect(),
                None => music.to_owned(),
            };
            rows.push(Row {
                music,
                text: None,
                label: letter
                    .and_then(|l| tune.field(l))
                    .map(|v| v.trim().to_lowercase())
                    .filter(|v| !v.is_empty()),
            });
        }
    }
    if rows.is_empty() {
        bail!("{}: no tunes", dir.display());
    }
    Ok(rows)
}

/// The text of each row's tune as the model reads it (a row is one tune; a row without music
/// gives an empty text, an EOS-only patch list).
pub(super) fn model_texts(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let source = SourceText::from_text(r.music.clone());
            let file = abc::parse(&source);
            file.tunes
                .first()
                .map(|t| abc::units(&source, t, Level::Tune, 1, 1).remove(0).text)
                .unwrap_or_default()
        })
        .collect()
}

/// Each tune's whole-tune vector (segment mode past the patch limit).
pub(super) fn embed_music(
    model: &dyn EmbeddingBackend,
    texts: &[String],
) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut patchilizer = Patchilizer::with_view(model.music_view());
    let tunes = texts
        .iter()
        .map(|text| patchilizer.encode_ids(text, PatchOptions::ALL))
        .collect();
    Ok(model.embed_music(&MusicBatch {
        tunes,
        long_tunes: LongTunes::Segment,
    })?)
}

fn print(json: bool, r: &Report) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, r)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{}: {} tunes", r.data, r.tunes)?;
    let metrics = [
        ("text→music MRR", r.mrr),
        ("text→music HR@1", r.hr1),
        ("text→music HR@10", r.hr10),
        ("text→music HR@100", r.hr100),
        ("head accuracy", r.head_accuracy),
        ("head macro-F1", r.head_macro_f1),
        ("zero-shot accuracy", r.accuracy),
        ("zero-shot macro-F1", r.macro_f1),
        ("linear probe accuracy", r.probe_accuracy),
        ("linear probe macro-F1", r.probe_macro_f1),
        ("majority class", r.majority_accuracy),
        ("n-gram probe accuracy", r.ngram_probe_accuracy),
        ("n-gram probe macro-F1", r.ngram_probe_macro_f1),
        ("meter rule accuracy", r.meter_rule_accuracy),
        ("meter rule macro-F1", r.meter_rule_macro_f1),
    ];
    for (name, value) in metrics {
        if let Some(v) = value {
            writeln!(out, "  {name:<24} {v:.4}")?;
        }
    }
    for (what, m) in [("zero-shot", &r.confusion), ("head", &r.head_confusion)] {
        if m.is_empty() {
            continue;
        }
        writeln!(out, "  {what} confusion (rows: true, columns: predicted)")?;
        writeln!(
            out,
            "  {:>10} {}",
            "",
            r.labels
                .iter()
                .map(|l| format!("{:>8.8}", l))
                .collect::<Vec<_>>()
                .join("")
        )?;
        for (label, row) in r.labels.iter().zip(m) {
            let cells: String = row.iter().map(|n| format!("{n:>8}")).collect();
            writeln!(out, "  {label:>10.10} {cells}")?;
        }
    }
    for note in &r.notes {
        writeln!(out, "  note: {note}")?;
    }
    Ok(())
}
