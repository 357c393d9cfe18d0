//! `tunelens train --head NAME --data ... --out MODEL`: fits a label head on the frozen tune
//! vectors of the model in `MODEL` and saves it there (`MODEL/heads/NAME.json`), so that
//! `classify`, the daemon's code lens and `eval` use it. Seconds, not a training run: the
//! fast way to teach tunelens a composer's own labels.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;
use tunelens_models::heads::{FitOptions, Head};

use super::eval;
use tunelens_models::encoders::open_model;

/// What a head fit did.
#[derive(Serialize)]
struct Fitted {
    head: String,
    file: PathBuf,
    field: String,
    labels: Vec<String>,
    counts: Vec<usize>,
    /// Tunes whose label had too few examples to learn, left out.
    left_out: usize,
    held_out_accuracy: f64,
    elapsed_s: f64,
}

/// The field a head's labels come from when none is named: `R` for tune types, else the
/// head's own name (a JSONL key such as `genre`).
pub fn default_field(head: &str) -> String {
    match head {
        "rhythm" | "tune-type" | "type" => "R".into(),
        other => other.into(),
    }
}

pub fn fit(
    name: &str,
    field: &str,
    data: &[PathBuf],
    model: &Path,
    min_count: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    if !model.join("config.json").exists() {
        bail!(
            "--out {}: not a model folder (no config.json); a head is saved in the model whose \
             vectors it reads",
            model.display()
        );
    }
    if name.is_empty() || name.contains(['/', '\\', '.']) {
        bail!("--head {name:?}: give a plain name such as rhythm or genre");
    }
    let mut rows = Vec::new();
    for d in data {
        rows.extend(eval::read_rows(d, field)?);
    }
    let opened = open_model(model, "auto", "f32")?;
    // Labels with enough examples, most frequent first.
    let mut counts: Vec<(String, usize)> = Vec::new();
    for label in rows.iter().filter_map(|r| r.label.as_ref()) {
        match counts.iter_mut().find(|(l, _)| l == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label.clone(), 1)),
        }
    }
    counts.retain(|(_, n)| *n >= min_count);
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let labels: Vec<String> = counts.iter().map(|(l, _)| l.clone()).collect();
    if labels.len() < 2 {
        bail!(
            "fewer than two labels in `{field}` with at least {min_count} tunes each: nothing to \
             learn a head from"
        );
    }
    let kept: Vec<(usize, usize)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let l = r.label.as_ref()?;
            Some((i, labels.iter().position(|x| x == l)?))
        })
        .collect();
    let labelled = rows.iter().filter(|r| r.label.is_some()).count();
    let texts = eval::model_texts(&rows);
    let texts: Vec<String> = kept.iter().map(|&(i, _)| texts[i].clone()).collect();
    let vectors = eval::embed_music(&opened.clamp, &texts)?;
    let targets: Vec<usize> = kept.iter().map(|&(_, c)| c).collect();
    let mut head = Head::fit(
        name,
        field,
        labels,
        &vectors,
        &targets,
        FitOptions::default(),
    )?;
    head.data = data
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let file = head
        .save(model)
        .with_context(|| format!("saving the head into {}", model.display()))?;
    let fitted = Fitted {
        head: name.to_owned(),
        file,
        field: field.to_owned(),
        labels: head.labels.clone(),
        counts: head.counts.clone(),
        left_out: labelled - kept.len(),
        held_out_accuracy: head.held_out_accuracy,
        elapsed_s: t0.elapsed().as_secs_f64(),
    };
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &fitted)?;
        writeln!(out)?;
    } else {
        let labels: Vec<String> = fitted
            .labels
            .iter()
            .zip(&fitted.counts)
            .map(|(l, n)| format!("{l} ({n})"))
            .collect();
        writeln!(
            out,
            "head {} on {} tunes ({} left out: rarer labels): {}; held-out accuracy {:.3}; {:.1} s; \
             saved to {}",
            fitted.head,
            kept.len(),
            fitted.left_out,
            labels.join(", "),
            fitted.held_out_accuracy,
            fitted.elapsed_s,
            fitted.file.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
